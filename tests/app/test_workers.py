"""Server-wide repository changes and statistics, with several workers played in one process.

Each worker is a `SharedWorkers` with its own manager and counters; its pid is a live child of
this test (so the channel counts it as a worker of master os.getpid()). The real thing, with
gunicorn, is in tests/e2e/test_workers_e2e.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.control import ControlChannel
from app.errors import ModelNotFound, ModelUnavailable, WorkersUnresponsive
from app.manager import ModelManager
from app.stats import StatsRegistry
from app.workers import SharedWorkers
from config.settings import ModelSettings, Settings

ECHO = "examples.echo:EchoModel"
BROKEN = "tests.models:BrokenLoadModel"


def settings(**classes: str) -> Settings:
    return Settings(
        models=tuple(
            ModelSettings(name=name, runtime="python", class_path=cls)
            for name, cls in classes.items()
        )
    )


class Cluster:
    """Workers sharing one folder; each has a live child process's pid as its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []
        self.workers: list[SharedWorkers] = []

    def worker(self, timeout: float = 30.0, start: bool = True, **classes: str) -> SharedWorkers:
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
    assert late.channel.ack(late.channel.pid).generation == 3  # type: ignore[union-attr]  # it joined


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
    with pytest.raises(ModelUnavailable) as info:
        good.load("m")
    message = str(info.value)
    assert "weights are corrupt" in message and f"worker {bad.channel.pid}" in message
    assert not isinstance(info.value, WorkersUnresponsive)
    assert ready(good) and not ready(bad)


def test_a_load_that_fails_everywhere_keeps_its_message(cluster: Cluster) -> None:
    a, b = cluster.worker(m=BROKEN), cluster.worker(m=BROKEN)
    with pytest.raises(ModelUnavailable) as info:
        a.load("m")
    pids = ", ".join(str(pid) for pid in sorted([a.channel.pid, b.channel.pid]))
    assert str(info.value) == (
        f"model 'm' version '1' failed to load: OSError: weights are corrupt (in workers {pids})"
    )


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


def test_statistics_name_a_worker_that_does_not_answer(cluster: Cluster) -> None:
    stuck = cluster.worker(start=False)
    stuck.sync(starting=True)
    a = cluster.worker(timeout=0.1)
    with pytest.raises(WorkersUnresponsive, match=f"worker {stuck.channel.pid} did not send"):
        a.statistics([("m", "1")])
