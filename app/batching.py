"""Dynamic batching: concurrent requests to one model, in one worker, share one model call.

A batcher per model runs a collector (a thread, or a greenlet under gevent's patching) started on
the first request, never at import or in the factory. It takes the first waiting request, gathers
compatible ones until `max_batch_size` rows or `batch_delay_ms` have passed, calls the model once
on the concatenated rows and hands each request its slice. A failed batch is re-run request by
request, so a request that fails only fails itself.

A batcher lives as long as its model version serves: `close()` (the data plane calls it when the
manager retires the model) answers what is queued, then ends the collector, which is what lets an
unloaded or reloaded model be freed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Predict = Callable[[dict[str, np.ndarray], dict[str, Any], Collection[str]], dict[str, np.ndarray]]


@dataclass(slots=True)
class _Item:
    inputs: dict[str, np.ndarray]
    parameters: dict[str, Any]
    names: tuple[str, ...]
    rows: int
    key: tuple[Any, ...]
    future: Future[dict[str, np.ndarray]] = field(default_factory=Future)


def _key(
    inputs: dict[str, np.ndarray], parameters: dict[str, Any], names: tuple[str, ...]
) -> tuple[Any, ...]:
    """Requests batch together only when everything but the row count matches."""
    tensors = tuple((n, a.dtype.str, a.shape[1:]) for n, a in sorted(inputs.items()))
    return (tensors, names, repr(sorted(parameters.items())))


class Batcher:
    """Joins concurrent calls of one model into batches of at most `max_batch_size` rows.

    `name` names the collector thread, so a stack dump or py-spy shows whose batcher it is.
    """

    def __init__(
        self,
        predict: Predict,
        max_batch_size: int,
        delay_ms: float,
        on_batch: Callable[[int], None] | None = None,
        name: str = "modelport-batcher",
    ) -> None:
        self._predict = predict
        self._max_rows = max_batch_size
        self._delay = delay_ms / 1000.0
        self._on_batch = on_batch or (lambda rows: None)
        self._name = name
        # None is close()'s marker: nothing is put after it, so it is the last thing collected.
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._held: list[_Item] = []  # taken from the queue but not fitting the last batch
        self._lock = threading.Lock()  # orders queue puts before close()'s marker
        self._closed = False
        self._drained = False  # the collector took the marker: only `_held` is left
        self._collector: threading.Thread | None = None

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any], names: Collection[str]
    ) -> dict[str, np.ndarray]:
        """Run one request in the next batch; return its own outputs, or raise its own error."""
        rows = _rows(inputs)
        if rows is None or rows >= self._max_rows:
            # Nothing to gain, or not batchable: one execution of its own, counted like one.
            result = self._predict(inputs, parameters, names)
            self._on_batch(batch_size(inputs))
            return result
        names = tuple(names)
        item = _Item(inputs, parameters, names, rows, _key(inputs, parameters, names))
        with self._lock:
            closed = self._closed
            if not closed:
                if self._collector is None:
                    self._collector = threading.Thread(
                        target=self._collect, name=self._name, daemon=True
                    )
                    self._collector.start()
                self._queue.put(item)
        if closed:  # a request that looked the batcher up just before its model was retired
            self._run_alone(item)
        return item.future.result()

    def close(self) -> None:
        """Stop batching: queued requests are still answered, then the collector ends.

        Returns at once; calls that come later run unbatched. Idempotent.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._collector is not None:
                self._queue.put(None)

    def _next(self, timeout: float | None) -> _Item | None:
        """The next request (held ones first); None when none came within `timeout`, or when
        the batcher is closed and nothing is left."""
        if self._held:
            return self._held.pop(0)
        if self._drained:
            return None
        try:
            item = self._queue.get(timeout=timeout) if timeout != 0 else self._queue.get_nowait()
        except queue.Empty:
            return None
        if item is None:
            self._drained = True
        return item

    def _collect(self) -> None:
        while True:
            first = self._next(None)
            if first is None:  # closed, and every queued request has been answered
                return
            batch, rows = [first], first.rows
            deadline = time.monotonic() + self._delay
            skipped: list[_Item] = []
            while rows < self._max_rows:
                item = self._next(max(deadline - time.monotonic(), 0.0))
                if item is None:
                    break
                if item.key == first.key and rows + item.rows <= self._max_rows:
                    batch.append(item)
                    rows += item.rows
                else:
                    skipped.append(item)
            self._held = skipped + self._held
            self._run(batch, rows)

    def _run(self, batch: list[_Item], rows: int) -> None:
        if len(batch) == 1:
            self._run_alone(batch[0])
            return
        first = batch[0]
        try:
            joined = {n: np.concatenate([i.inputs[n] for i in batch]) for n in first.inputs}
            outputs = self._predict(joined, first.parameters, first.names)
            slices = _split(outputs, [i.rows for i in batch], rows)
        except Exception:
            # Someone's rows broke the batch: run each alone so only that request fails.
            for item in batch:
                self._run_alone(item)
            return
        self._on_batch(rows)
        for item, result in zip(batch, slices, strict=True):
            item.future.set_result(result)

    def _run_alone(self, item: _Item) -> None:
        try:
            result = self._predict(item.inputs, item.parameters, item.names)
        except BaseException as exc:  # delivered to the waiting request, which re-raises it
            item.future.set_exception(exc)
        else:
            self._on_batch(item.rows)
            item.future.set_result(result)


def batch_size(inputs: Mapping[str, np.ndarray]) -> int:
    """The rows one execution counts in statistics and metrics: the first input's first
    dimension, or 1 for a scalar (or no) input."""
    first = next(iter(inputs.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 1


def _rows(inputs: dict[str, np.ndarray]) -> int | None:
    """The shared batch dimension of the inputs, or None when they have none in common."""
    counts = {a.shape[0] if a.ndim else None for a in inputs.values()}
    if len(counts) != 1:
        return None
    (count,) = counts
    return count if count else None


def _split(
    outputs: dict[str, np.ndarray], sizes: list[int], rows: int
) -> list[dict[str, np.ndarray]]:
    """Cut every output along its first axis, back into each request's rows."""
    arrays = {name: np.asarray(value) for name, value in outputs.items()}
    if any(a.ndim == 0 or a.shape[0] != rows for a in arrays.values()):
        raise ValueError("an output is not batched along the first axis")
    bounds = np.cumsum(sizes)[:-1]
    pieces = {name: np.split(a, bounds) for name, a in arrays.items()}
    return [{name: pieces[name][i] for name in arrays} for i in range(len(sizes))]
