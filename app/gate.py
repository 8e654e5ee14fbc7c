"""Each model's bounded call pool: concurrency, a bounded queue, and deadlines (issue 15).

A model gets at most `max_concurrency` calls at once in a worker. A request that finds them all
taken waits, unless `max_queue` requests already do: then it is refused at once (503 with
`Retry-After`) rather than left to wait without bound. A request with a deadline (the model's
`timeout_ms`, or the client's) runs its call on one of the pool's threads and stops waiting for
it at the deadline (504): a call that hangs keeps its slot, and its thread, until it returns,
but not the worker thread that serves requests, which goes on to the next one. The pool is
bounded, so hung calls cannot pile up: once every slot is held, the model reports itself
overloaded (not ready) and new requests queue, then time out or are refused.

A request without any deadline calls the model on its own thread: no hand-off on the hot path.
One with a deadline (every call of a gRPC client that sets a timeout, as the bench's does) is
handed off through a C queue (`queue.SimpleQueue`) and answered through a held lock the pool's
thread releases: `queue.Queue` and `concurrent.futures.Future` wait on pure-Python conditions,
and the round trip cost 40 us against 20 us this way (one core, a call that returns at once).
Under gunicorn's gevent worker, threading is monkey-patched and the pool's threads are greenlets.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from app import metrics
from app.errors import DeadlineExceeded, ModelOverloaded

T = TypeVar("T")


class Gate:
    """The call pool of one model version in one worker."""

    def __init__(self, name: str, version: str, max_concurrency: int, max_queue: int) -> None:
        self.name = name
        self.version = version
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._running = 0  # calls holding a slot, abandoned ones included
        self._waiting = 0  # requests waiting for a slot
        self._abandoned = 0  # calls whose request gave up at its deadline, still running
        self._threads = _Threads(f"modelport-call:{name}:{version}")

    @property
    def full(self) -> bool:
        """Every slot is held: a new request would have to wait (readiness says overloaded)."""
        return self._running >= self.max_concurrency

    @property
    def abandoned(self) -> int:
        """Calls still running whose requests were answered 504."""
        return self._abandoned

    def call(self, function: Callable[[], T], deadline: float | None, what: str) -> T:
        """`function()` in one of this model's slots, answered by `deadline` (monotonic s).

        Raises `ModelOverloaded` when the queue is full, `DeadlineExceeded` when the deadline
        passes while waiting for a slot or for the call, and whatever `function` raises.
        """
        self._acquire(deadline, what)
        if deadline is None:
            try:
                return function()
            finally:
                self._release()
        return self._call_by(function, deadline, what)

    def _acquire(self, deadline: float | None, what: str) -> None:
        with self._lock:
            if self._running < self.max_concurrency:
                self._running += 1
                return
            if self._waiting >= self.max_queue:
                raise ModelOverloaded(
                    f"{what} is overloaded: {self._running} calls running and "
                    f"{self._waiting} waiting (max_queue {self.max_queue}); try again later"
                )
            self._waiting += 1
            try:
                while self._running >= self.max_concurrency:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise DeadlineExceeded(
                            f"{what}: deadline exceeded while waiting for a free call slot"
                        )
                    self._free.wait(remaining)
                self._running += 1
            finally:
                self._waiting -= 1

    def _release(self) -> None:
        with self._lock:
            self._running -= 1
            self._free.notify()

    def _call_by(self, function: Callable[[], T], deadline: float, what: str) -> T:
        state = _CallState()

        def run() -> T:
            try:
                return function()
            finally:
                self._finished(state)

        outcome = self._threads.submit(run)
        if outcome.wait(deadline - time.monotonic()):
            return outcome.result()
        if self._abandon(state):
            raise DeadlineExceeded(f"{what}: deadline exceeded") from None
        outcome.wait(None)  # it finished as we gave up: answer it after all
        return outcome.result()

    def _abandon(self, state: _CallState) -> bool:
        """Mark the call abandoned unless it has just finished; True when it was abandoned."""
        with self._lock:
            if state.finished:
                return False
            state.abandoned = True
            self._abandoned += 1
        metrics.observe_abandoned(self.name, self.version, self._abandoned)
        return True

    def _finished(self, state: _CallState) -> None:
        with self._lock:
            state.finished = True
            self._running -= 1
            self._free.notify()
            if not state.abandoned:
                return
            self._abandoned -= 1
            abandoned = self._abandoned
        metrics.observe_abandoned(self.name, self.version, abandoned)

    def close(self) -> None:
        """Let the pool's idle threads end (the model was retired); busy ones end after."""
        self._threads.close()


class _CallState:
    """Whether one call has returned, and whether its request stopped waiting for it."""

    __slots__ = ("abandoned", "finished")

    def __init__(self) -> None:
        self.abandoned = False
        self.finished = False


class _Outcome(Generic[T]):
    """What one handed-off call returned or raised, and a lock held until it is there."""

    __slots__ = ("_error", "_ready", "_value")

    def __init__(self) -> None:
        self._ready = threading.Lock()
        self._ready.acquire()
        self._value: T | None = None
        self._error: BaseException | None = None

    def settle(self, value: T | None, error: BaseException | None) -> None:
        """Called once, by the pool's thread."""
        self._value, self._error = value, error
        self._ready.release()

    def wait(self, seconds: float | None) -> bool:
        """Whether the call has finished, waiting at most `seconds` (None: until it has)."""
        if seconds is None:
            return self._ready.acquire()
        return self._ready.acquire(timeout=max(seconds, 0.0))

    def result(self) -> T:
        """The call's return value, or its exception raised here, in the caller's thread."""
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # settled: a T


class _Threads:
    """Daemon threads that run submitted calls, made as needed and kept while idle.

    Not a `ThreadPoolExecutor`: its threads are joined when the interpreter exits, so one hung
    model call would keep a stopping worker alive until gunicorn kills it. The gate never has
    more calls out than slots, so this never holds more than `max_concurrency` threads.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: queue.SimpleQueue[tuple[Callable[[], object], _Outcome[object]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._idle = 0
        self._count = 0

    def submit(self, function: Callable[[], T]) -> _Outcome[T]:
        """Run `function` on an idle thread, or a new one; the outcome says when it is done."""
        outcome: _Outcome[T] = _Outcome()
        with self._lock:
            spawn = self._idle == 0
            if spawn:
                self._count += 1
            else:
                self._idle -= 1
        self._tasks.put((function, outcome))  # type: ignore[arg-type]  # T is erased in the queue
        if spawn:
            threading.Thread(target=self._serve, name=self._name, daemon=True).start()
        return outcome

    def _serve(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            function, outcome = task
            del task
            value: object = None
            error: BaseException | None = None
            try:
                value = function()
            except BaseException as exc:  # the caller re-raises it where it waits
                error = exc
            del function
            # Idle before the caller hears back: a caller that submits again at once finds
            # this thread, instead of making one more (the pool stays within the slots).
            with self._lock:
                self._idle += 1
            outcome.settle(value, error)
            del outcome, value, error  # hold no request's data while idle

    def close(self) -> None:
        """Tell every thread to end once it is idle."""
        with self._lock:
            count = self._count
        for _ in range(count):
            self._tasks.put(None)
