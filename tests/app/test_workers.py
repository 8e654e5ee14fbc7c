"""Server-wide repository changes and statistics, with several workers played in one process.

Each worker is a `SharedWorkers` with its own manager and counters; its pid is a live child of
this test (so the channel counts it as a worker of master os.getpid()). The real thing, with
gunicorn, is in tests/e2e/test_workers_e2e.py.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import control
from app.control import ControlChannel
from app.errors import ModelNotFound, ModelUnavailable, WorkersUnresponsive
from app.manager import ModelManager
from app.stats import StatsRegistry
from app.workers import SharedWorkers
from config.settings import ModelSettings, Settings

ECHO = "examples.echo:EchoModel"
BROKEN = "tests.models:BrokenLoadModel"


def settings(**models: str | ModelSettings) -> Settings:
    """Python models by class path, or as given (renamed to their keyword)."""
    return Settings(
        models=tuple(
            ModelSettings(name=name, runtime="python", class_path=model)
            if isinstance(model, str)
            else dataclasses.replace(model, name=name)
            for name, model in models.items()
        )
    )


def marked(marks: Path) -> ModelSettings:
    """A model that loads unless this process's pid names a file in `marks`."""
    marks.mkdir(exist_ok=True)
    return ModelSettings(
        name="",
        class_path="tests.models:MarkedBrokenModel",
        parameters={"marks": str(marks)},
    )


class Cluster:
    """Workers sharing one folder; each has a live child process's pid as its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []
        self.workers: list[SharedWorkers] = []

    def worker(
        self, timeout: float = 30.0, start: bool = True, **classes: str | ModelSettings
    ) -> SharedWorkers:
        process = subprocess.Popen(["sleep", "120"])
        self.processes.append(process)
        manager = ModelManager(settings(**(classes or {"m": ECHO, "n": ECHO})))
        manager.load_all()
        channel = ControlChannel(self.directory, master=os.getpid(), pid=process.pid)
        worker = SharedWorkers(
            manager,
            StatsRegistry(),
            channel,
            timeout=timeout,
            stats_timeout=timeout,
            interval=0.005,
        )
        if start:
            worker.start()
            self.workers.append(worker)
        return worker

    def kill(self, pid: int) -> None:
        """End the process playing worker `pid` (again is fine)."""
        process = next(p for p in self.processes if p.pid == pid)
        process.kill()
        process.wait()

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        for process in self.processes:
            process.kill()
            process.wait()


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path)
    yield running
    running.close()


def ready(worker: SharedWorkers, name: str = "m") -> bool:
    return worker.manager.entry(name).ready


def test_an_unload_is_answered_once_every_worker_applied_it(cluster: Cluster) -> None:
    a, b, c = cluster.worker(), cluster.worker(), cluster.worker()
    a.unload("m")
    assert not ready(a) and not ready(b) and not ready(c)
    assert b.manager.entry("m").reason == "unloaded"
    assert ready(a, "n") and ready(b, "n")  # only the model asked for
    c.load("m")
    assert ready(a) and ready(b) and ready(c)


def test_a_worker_that_starts_later_applies_the_current_state(cluster: Cluster) -> None:
    a = cluster.worker()
    a.unload("m")
    a.unload("n")
    a.load("n")
    late = cluster.worker()  # a replaced worker, or one started by a HUP
    assert not ready(late) and ready(late, "n")
    # It joined: two unloads, and a load (prepare, then commit).
    assert late.channel.ack(late.channel.pid).generation == 4  # type: ignore[union-attr]  # it joined


def test_changes_from_two_workers_end_in_the_same_state_everywhere(cluster: Cluster) -> None:
    a, b = cluster.worker(), cluster.worker()
    for _ in range(5):
        a.unload("m")
        b.load("m")
        b.unload("n")
        a.load("n")
    a.unload("m")
    assert [ready(w) for w in (a, b)] == [False, False]
    assert [ready(w, "n") for w in (a, b)] == [True, True]


def test_unknown_models_are_refused_before_anything_is_published(cluster: Cluster) -> None:
    a = cluster.worker()
    with pytest.raises(ModelNotFound, match="model 'nope' not found"):
        a.load("nope")
    with pytest.raises(ModelNotFound):
        a.unload("nope")
    assert a.channel.desired().generation == 0


def test_a_load_that_fails_in_another_worker_is_reported_with_its_pid(cluster: Cluster) -> None:
    good = cluster.worker(m=ECHO)
    bad = cluster.worker(m=BROKEN)  # the same model fails in this worker only
    serving = good.manager.get("m")
    with pytest.raises(ModelUnavailable) as info:
        good.load("m")
    assert str(info.value) == (
        "model 'm' version '1' failed to load: OSError: weights are corrupt "
        f"(in worker {bad.channel.pid}); the load was rolled back in every worker"
    )
    assert info.value.details == {"failed_workers": [bad.channel.pid]}
    assert not isinstance(info.value, WorkersUnresponsive)
    assert good.manager.get("m") is serving and not ready(bad)  # each as it was


def test_a_load_that_fails_in_one_worker_is_rolled_back_in_all(
    cluster: Cluster, tmp_path: Path
) -> None:
    good, bad = (
        cluster.worker(m=marked(tmp_path / "good")),
        cluster.worker(m=marked(tmp_path / "bad")),
    )
    before = {worker: worker.manager.get("m") for worker in (good, bad)}
    (tmp_path / "bad" / str(os.getpid())).touch()  # its weights break after it started
    for asker in (good, bad):
        with pytest.raises(ModelUnavailable, match="rolled back in every worker"):
            asker.load("m")
        # Both keep serving what they served: not the new load, nor nothing.
        assert {worker: worker.manager.get("m") for worker in (good, bad)} == before
        assert not good._pending and not bad._pending  # what loaded aside is dropped

    good.unload("m")
    with pytest.raises(ModelUnavailable):
        good.load("m")
    assert not ready(good) and not ready(bad)  # nobody serves the new load either
    assert good.manager.entry("m").reason == bad.manager.entry("m").reason == "unloaded"
    late = cluster.worker(m=marked(tmp_path / "late"))  # follows the unload, not the abort
    assert not ready(late)

    (tmp_path / "bad" / str(os.getpid())).unlink()
    bad.load("m")
    assert all(ready(worker) for worker in (good, bad, late))
    assert good.manager.get("m") is not before[good]


def test_a_load_that_fails_everywhere_keeps_its_message(cluster: Cluster) -> None:
    a, b = cluster.worker(m=BROKEN), cluster.worker(m=BROKEN)
    with pytest.raises(ModelUnavailable) as info:
        a.load("m")
    pids = ", ".join(str(pid) for pid in sorted([a.channel.pid, b.channel.pid]))
    assert str(info.value) == (
        f"model 'm' version '1' failed to load: OSError: weights are corrupt (in workers {pids})"
        "; the load was rolled back in every worker"
    )


def test_a_worker_that_misses_the_preparation_loads_at_the_commit(cluster: Cluster) -> None:
    a = cluster.worker()
    gone = a.manager.get("m")
    prepared = a.channel.publish("m", "prepare")
    a.sync()
    a._pending.clear()  # as if it had joined after the PREPARE
    a.channel.publish("m", "load", prepared=prepared)
    a.sync()
    assert ready(a) and a.manager.get("m") is not gone


def test_one_repository_change_at_a_time(cluster: Cluster) -> None:
    a = cluster.worker(timeout=0.2)
    with a.channel.exclusive(1) as held:  # another worker's change, under way
        assert held
        with pytest.raises(WorkersUnresponsive, match="another repository change took over"):
            a.load("m")
    assert a.channel.desired().generation == 0  # nothing was published


def test_a_worker_that_does_not_follow_is_named_after_the_timeout(cluster: Cluster) -> None:
    stuck = cluster.worker(start=False)
    stuck.sync(starting=True)  # it joined, but its watchers never run
    a = cluster.worker(timeout=0.2)
    with pytest.raises(WorkersUnresponsive) as info:
        a.unload("m")
    assert str(info.value) == (f"worker {stuck.channel.pid} did not unload model 'm' within 0.2 s")
    assert info.value.http_status == 503 and info.value.grpc_code == "UNAVAILABLE"
    assert not ready(a)  # applied where it could be


def test_a_dead_worker_is_not_waited_for(cluster: Cluster) -> None:
    gone = cluster.worker(start=False)
    gone.sync(starting=True)
    cluster.processes[-1].kill()
    cluster.processes[-1].wait()
    a = cluster.worker(timeout=30)
    a.unload("m")  # answers at once: the dead worker's file is ignored
    assert not ready(a)


def test_statistics_are_the_sum_over_workers(cluster: Cluster) -> None:
    a, b, c = cluster.worker(), cluster.worker(), cluster.worker()
    for worker, requests in ((a, 3), (b, 5), (c, 0)):
        for _ in range(requests):
            worker.stats.record_success("m", "1", 2, 1000, 400)
    b.stats.record_failure("m", "1", 50)
    for worker in (a, b, c):
        [stats] = worker.statistics([("m", "1")])
        assert stats.success.count == 8 and stats.inference_count == 16
        assert stats.success.ns == 8000 and stats.fail.count == 1
        assert stats.batches[2].count == 8
    n, m = a.statistics([("n", "1"), ("m", "1")])
    assert (n.name, n.success.count, m.success.count) == ("n", 0, 8)


def test_counts_of_exited_workers_stay_in_the_totals(cluster: Cluster) -> None:
    survivor, stopped = cluster.worker(), cluster.worker()
    killed = cluster.worker(start=False)  # its watchers are played by hand
    killed.sync(starting=True)
    for worker, requests in ((survivor, 1), (stopped, 2), (killed, 4)):
        for _ in range(requests):
            worker.stats.record_success("m", "1", 1, 100, 40)
    killed.answer_stats()  # what its stats watcher does at least every FORCED_SECONDS
    killed.stats.record_success("m", "1", 1, 100, 40)  # after its last write: lost to a SIGKILL
    cluster.kill(killed.channel.pid)
    stopped.close()  # a graceful exit (HUP, SIGTERM) writes the counters a last time
    cluster.workers.remove(stopped)
    for worker in (stopped, killed):
        assert survivor.statistics([("m", "1")])[0].success.count == 7  # exited, not yet reaped
        cluster.kill(worker.channel.pid)
        control.retire(survivor.channel.directory, os.getpid(), worker.channel.pid)  # child_exit
        assert survivor.statistics([("m", "1")])[0].success.count == 7
    newcomer = cluster.worker()  # a replacement starts from zero, the totals do not
    newcomer.stats.record_success("m", "1", 1, 100, 40)
    assert [s.success.count for s in newcomer.statistics([("m", "1")])] == [8]


def test_statistics_name_a_worker_that_does_not_answer(cluster: Cluster) -> None:
    stuck = cluster.worker(start=False)
    stuck.sync(starting=True)
    a = cluster.worker(timeout=0.1)
    with pytest.raises(WorkersUnresponsive, match=f"worker {stuck.channel.pid} did not send"):
        a.statistics([("m", "1")])
