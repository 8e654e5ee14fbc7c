"""The per-model call pool: slots, the bounded queue, deadlines and abandoned calls."""

from __future__ import annotations

import threading
import time

import pytest

from app import deadlines
from app.errors import DeadlineExceeded, InvalidInput, ModelOverloaded
from app.gate import Gate

WAIT = 10.0  # generous: the box is shared


def _until(condition, seconds: float = WAIT) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_without_deadline_the_call_runs_here() -> None:
    gate = Gate("m", "1", max_concurrency=2, max_queue=0)
    assert gate.call(threading.get_ident, None, "m") == threading.get_ident()
    assert not gate.full


def test_a_hung_call_is_abandoned_at_its_deadline_and_keeps_its_slot() -> None:
    gate = Gate("m", "1", max_concurrency=1, max_queue=4)
    release = threading.Event()
    with pytest.raises(DeadlineExceeded, match="deadline exceeded"):
        gate.call(release.wait, time.monotonic() + 0.05, "model 'm'")
    assert gate.full and gate.abandoned == 1
    release.set()
    _until(lambda: not gate.full)
    assert gate.abandoned == 0
    assert gate.call(lambda: 7, time.monotonic() + WAIT, "m") == 7


def test_past_max_queue_requests_are_refused_at_once() -> None:
    gate = Gate("m", "1", max_concurrency=1, max_queue=1)
    release = threading.Event()
    holder = threading.Thread(target=gate.call, args=(release.wait, None, "m"))
    holder.start()
    _until(lambda: gate.full)
    waiter = threading.Thread(target=gate.call, args=(lambda: None, None, "m"))
    waiter.start()
    _until(lambda: gate._waiting == 1)
    started = time.monotonic()
    with pytest.raises(ModelOverloaded) as refused:
        gate.call(lambda: None, None, "model 'm'")
    assert refused.value.http_status == 503 and refused.value.retry_after >= 1
    assert time.monotonic() - started < WAIT
    release.set()
    holder.join(WAIT)
    waiter.join(WAIT)
    assert not gate.full


def test_a_queued_request_times_out_while_waiting() -> None:
    gate = Gate("m", "1", max_concurrency=1, max_queue=8)
    release = threading.Event()
    holder = threading.Thread(target=gate.call, args=(release.wait, None, "m"))
    holder.start()
    _until(lambda: gate.full)
    with pytest.raises(DeadlineExceeded, match="waiting for a free call slot"):
        gate.call(lambda: None, time.monotonic() + 0.05, "m")
    release.set()
    holder.join(WAIT)


def test_errors_of_the_call_reach_the_caller_and_free_the_slot() -> None:
    gate = Gate("m", "1", max_concurrency=1, max_queue=0)

    def fail() -> None:
        raise RuntimeError("boom")

    for deadline in (None, time.monotonic() + WAIT):
        with pytest.raises(RuntimeError, match="boom"):
            gate.call(fail, deadline, "m")
        assert not gate.full


def test_client_deadlines_in_milliseconds() -> None:
    assert deadlines.from_milliseconds(None) is None
    assert deadlines.from_milliseconds("0") is None  # Triton's "no timeout"
    soon = deadlines.from_milliseconds("250")
    assert soon is not None and 0 < soon - time.monotonic() <= 0.25
    for bad in ("soon", "-1", "nan", "inf"):
        with pytest.raises(InvalidInput, match="X-Request-Timeout"):
            deadlines.from_milliseconds(bad)
    assert deadlines.earliest(None, 3.0, 2.0) == 2.0
    assert deadlines.earliest(None, None) is None


def test_deadlines_too_far_away_are_none() -> None:
    assert deadlines.earliest(deadlines.from_milliseconds("1e300")) is None
    gate = Gate("m", "1", max_concurrency=1, max_queue=0)
    assert gate.call(lambda: 1, deadlines.earliest(time.monotonic() + 1e12), "m") == 1


def test_a_call_with_a_deadline_runs_on_a_pool_thread_and_answers_there() -> None:
    gate = Gate("handed-off", "1", max_concurrency=2, max_queue=0)
    here = threading.get_ident()
    assert gate.call(threading.get_ident, time.monotonic() + WAIT, "m") != here
    with pytest.raises(InvalidInput, match="bad rows"):
        gate.call(
            lambda: (_ for _ in ()).throw(InvalidInput("bad rows")), time.monotonic() + WAIT, "m"
        )
    assert gate.call(lambda: None, time.monotonic() + WAIT, "m") is None
    assert not gate.full and gate.abandoned == 0
    for _ in range(200):  # one after another: the one thread is idle again every time
        gate.call(lambda: None, time.monotonic() + WAIT, "m")
    pool = [t for t in threading.enumerate() if t.name == "modelport-call:handed-off:1"]
    assert len(pool) == 1
    gate.close()
    pool[0].join(WAIT)
    assert not pool[0].is_alive()
