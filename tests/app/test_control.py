"""The control channel's file protocol: atomic files, generations, liveness, waiting, watching."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import control
from app.control import (
    ABORT,
    LOAD,
    PREPARE,
    UNLOAD,
    Change,
    ControlChannel,
    Desired,
    Outcome,
    Watcher,
)
from app.stats import ModelStats, StatsRegistry


@pytest.fixture()
def children() -> Iterator[list[int]]:
    """Three live child processes of this test: they play gunicorn workers of master os.getpid()."""
    processes = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    yield [process.pid for process in processes]
    for process in processes:
        process.kill()
        process.wait()


def channel(directory: Path, pid: int) -> ControlChannel:
    return ControlChannel(directory, master=os.getpid(), pid=pid)


def test_write_json_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    small, large = {"n": 1}, {"n": 2, "padding": "x" * 1_000_000}
    control.write_json(path, small)
    seen: list[object] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            record = control.read_json(path)  # None would mean missing or half a file
            seen.append(None if record is None else record["n"])

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(100):
        control.write_json(path, large)
        control.write_json(path, small)
    stop.set()
    reader.join()
    assert seen and set(seen) <= {1, 2}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    control.write_json(path, {"n": 1})
    with pytest.raises(TypeError):
        control.write_json(path, {"n": object()})
    assert control.read_json(path) == {"n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]
    assert control.read_json(tmp_path / "missing.json") is None


def test_generations_only_grow_and_keep_the_last_action_per_model(tmp_path: Path) -> None:
    a, b = channel(tmp_path, 1), channel(tmp_path, 2)
    assert a.desired() == Desired()
    generations: list[int] = []

    def publish(ch: ControlChannel, name: str) -> None:
        for action in (UNLOAD, LOAD) * 25:
            generations.append(ch.publish(name, action))

    threads = [threading.Thread(target=publish, args=(ch, n)) for ch, n in ((a, "x"), (b, "y"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(generations) == list(range(1, 101))  # none lost, none repeated
    desired = b.desired()
    assert desired.generation == 100
    assert {name: c.action for name, c in desired.models.items()} == {"x": LOAD, "y": LOAD}
    assert max(c.generation for c in desired.models.values()) == 100


def test_changes_after_are_oldest_first_and_skip_what_was_applied() -> None:
    a, b, c = Change(LOAD, 9), Change(UNLOAD, 4, loaded=False), Change(UNLOAD, 7, loaded=False)
    desired = Desired(9, {"a": a, "b": b, "c": c})
    assert desired.changes_after(0) == [("b", b), ("c", c), ("a", a)]
    assert desired.changes_after(7) == [("a", a)]
    assert desired.changes_after(9) == []


def test_a_prepare_or_an_abort_keeps_whether_the_model_is_meant_to_serve(tmp_path: Path) -> None:
    ch = channel(tmp_path, 1)
    assert ch.desired().models == {}
    ch.publish("x", PREPARE)  # configured models serve from the start
    assert ch.desired().models["x"] == Change(PREPARE, 1, loaded=True)
    ch.publish("x", UNLOAD)
    ch.publish("x", PREPARE)
    assert ch.desired().models["x"] == Change(PREPARE, 3, loaded=False)
    ch.publish("x", ABORT)
    assert ch.desired().models["x"] == Change(ABORT, 4, loaded=False)  # still unloaded
    ch.publish("x", PREPARE)
    ch.publish("x", LOAD, prepared=5)
    assert ch.desired().models["x"] == Change(LOAD, 6, loaded=True, prepared=5)


def test_repository_changes_hold_one_lock_server_wide(tmp_path: Path) -> None:
    a, b = channel(tmp_path, 1), channel(tmp_path, 2)
    with a.exclusive(1) as held:
        assert held
        started = time.monotonic()
        with b.exclusive(0.1) as second:
            assert not second  # busy for longer than it wanted to wait
        assert time.monotonic() - started >= 0.1
    with b.exclusive(1) as held:  # free again once the first holder is done
        assert held


def test_files_of_another_master_are_ignored(tmp_path: Path) -> None:
    stale = ControlChannel(tmp_path, master=1, pid=5)
    stale.publish("x", UNLOAD)
    stale.request_stats()
    stale.acknowledge(1, {})
    ours = channel(tmp_path, 6)
    assert ours.desired() == Desired()
    assert ours.stats_token() == 0
    assert ours.ack(5) is None
    assert ours.publish("y", LOAD) == 1  # a reused folder starts over


def test_acknowledgements_round_trip(tmp_path: Path) -> None:
    worker = channel(tmp_path, 7)
    worker.acknowledge(3, {"x": Outcome(3, False, "weights are corrupt"), "y": Outcome(2, True)})
    ack = channel(tmp_path, 8).ack(7)
    assert ack is not None and ack.generation == 3
    assert ack.outcomes == {"x": Outcome(3, False, "weights are corrupt"), "y": Outcome(2, True)}


def test_peers_are_live_children_of_the_master_other_than_self(
    tmp_path: Path, children: list[int]
) -> None:
    me, peer, _ = children
    finished = subprocess.Popen(["true"])
    finished.wait()
    for pid in (me, peer, finished.pid, 1):  # pid 1 is alive but not a child of this master
        channel(tmp_path, pid).acknowledge(0, {})
    assert channel(tmp_path, me).peers() == [peer]
    channel(tmp_path, peer).leave()
    assert channel(tmp_path, me).peers() == []


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen(["sleep", "60"])
    assert control.process_alive(child.pid, os.getpid())
    os.kill(child.pid, signal.SIGKILL)
    try:
        for _ in range(200):  # dead but not yet reaped by its parent (this test)
            if not control.process_alive(child.pid, os.getpid()):
                break
            time.sleep(0.01)
        assert not control.process_alive(child.pid, os.getpid())
    finally:
        child.wait()
    assert not control.process_alive(child.pid, os.getpid())


def test_waiting_returns_when_every_peer_acknowledged(tmp_path: Path, children: list[int]) -> None:
    me, one, two = (channel(tmp_path, pid) for pid in children)
    for worker in (me, one, two):
        worker.acknowledge(0, {})
    generation = me.publish("x", UNLOAD)
    threading.Timer(0.05, one.acknowledge, (generation, {})).start()
    threading.Timer(0.1, two.acknowledge, (generation + 1, {})).start()  # later is fine too
    acks, missing = me.wait_for_acks(generation, timeout=30)
    assert missing == [] and sorted(acks) == sorted([one.pid, two.pid])


def test_waiting_times_out_naming_who_did_not_follow(tmp_path: Path, children: list[int]) -> None:
    me, follower, laggard = (channel(tmp_path, pid) for pid in children)
    for worker in (me, follower, laggard):
        worker.acknowledge(0, {})
    generation = me.publish("x", UNLOAD)
    follower.acknowledge(generation, {"x": Outcome(generation, True)})
    acks, missing = me.wait_for_acks(generation, timeout=0.1)
    assert list(acks) == [follower.pid] and missing == [laggard.pid]


def test_dead_workers_are_not_waited_for(tmp_path: Path, children: list[int]) -> None:
    me = channel(tmp_path, children[0])
    dead = subprocess.Popen(["true"])
    dead.wait()
    channel(tmp_path, dead.pid).acknowledge(0, {})
    generation = me.publish("x", UNLOAD)
    assert me.wait_for_acks(generation, timeout=30) == ({}, [])


def test_statistics_answers_must_be_for_this_request_or_a_later_one(
    tmp_path: Path, children: list[int]
) -> None:
    me, peer, _ = (channel(tmp_path, pid) for pid in children)
    for worker in (me, peer):
        worker.acknowledge(0, {})
    peer.answer_stats(me.request_stats(), [{"old": True}])
    token = me.request_stats()
    assert me.wait_for_stats(token, timeout=0.05) == [peer.pid]  # an answer to an older one
    peer.answer_stats(peer.stats_token(), [{"new": True}])
    assert me.wait_for_stats(token, timeout=30) == []


def test_retiring_moves_a_dead_workers_counters_into_the_retired_totals(tmp_path: Path) -> None:
    registry = StatsRegistry()
    registry.record_success("m", "1", 2, 100, 40)
    record = registry.snapshot("m", "1").to_record()
    me, first, second = (channel(tmp_path, pid) for pid in (1, 2, 3))
    for worker in (me, first, second):
        worker.answer_stats(0, [record])
    first.acknowledge(0, {})
    ControlChannel(tmp_path, master=1, pid=4).answer_stats(0, [record])  # another server's
    assert me.gather_stats() == [[], [record], [record]]  # the others, not its own
    control.retire(tmp_path, os.getpid(), first.pid)
    control.retire(tmp_path, os.getpid(), second.pid)
    control.retire(tmp_path, os.getpid(), 99)  # killed before it wrote anything: nothing to add
    [retired] = me.gather_stats()
    assert [ModelStats.from_record(r).success.count for r in retired] == [2]
    assert me.ack(first.pid) is None  # and its files are gone
    assert sorted(p.name for p in tmp_path.glob("stats-*")) == ["stats-1.json", "stats-4.json"]


def test_a_retirement_is_never_seen_twice_or_missed(tmp_path: Path) -> None:
    """Readers and the master's `retire` take turns under the folder's lock."""
    registry = StatsRegistry()
    registry.record_success("m", "1", 1, 10, 5)
    record = registry.snapshot("m", "1").to_record()
    reader = channel(tmp_path, 1)
    pids = range(100, 300)
    for pid in pids:
        channel(tmp_path, pid).answer_stats(0, [record])
    seen: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            gathered = reader.gather_stats()
            seen.append(sum(r["execution_count"] for records in gathered for r in records))

    thread = threading.Thread(target=read)
    thread.start()
    for pid in pids:
        control.retire(tmp_path, os.getpid(), pid)
    stop.set()
    thread.join()
    assert seen and set(seen) == {len(pids)}


def test_the_watcher_calls_back_when_the_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "watched.json"
    calls: list[int] = []
    watcher = Watcher(path, lambda: calls.append(1))
    watcher.poll()  # the first look always calls back (the file may have changed before it)
    watcher.poll()
    control.write_json(path, {"n": 1})
    watcher.poll()
    watcher.poll()
    assert len(calls) == 2
    for _ in range(control.FORCED_EVERY):  # and now and then anyway (inode and mtime reuse)
        watcher.poll()
    assert len(calls) == 3


def test_the_watcher_thread_keeps_going_after_a_failing_callback(tmp_path: Path) -> None:
    path = tmp_path / "watched.json"
    called = threading.Event()
    failures = iter([True])

    def on_change() -> None:
        if next(failures, False):
            raise RuntimeError("first call fails")
        called.set()

    watcher = Watcher(path, on_change, interval=0.001)
    watcher.start()
    control.write_json(path, {"n": 1})
    try:
        assert called.wait(30)
    finally:
        watcher.stop()
