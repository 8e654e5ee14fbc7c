"""Dynamic batching: concurrent requests share model calls; failures stay their own."""

from __future__ import annotations

import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from app.batching import Batcher


class Recorder:
    """A model double: doubles `x`, raises on negative rows, records the batch sizes it saw."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def __call__(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any], names: Collection[str]
    ) -> dict[str, np.ndarray]:
        x = inputs["x"]
        with self.lock:
            self.calls.append(len(x))
        if (x < 0).any():
            raise ValueError("negative row")
        return {"y": x * 2}


def run_concurrently(batcher: Batcher, arrays: list[np.ndarray]) -> list[Any]:
    def one(array: np.ndarray) -> Any:
        try:
            return batcher.predict({"x": array}, {}, ("y",))["y"]
        except ValueError as exc:
            return exc

    barrier = threading.Barrier(len(arrays))

    def synchronised(array: np.ndarray) -> Any:
        barrier.wait()
        return one(array)

    with ThreadPoolExecutor(len(arrays)) as pool:
        return list(pool.map(synchronised, arrays))


def test_concurrent_requests_share_calls_and_get_their_own_rows() -> None:
    model = Recorder()
    sizes: list[int] = []
    batcher = Batcher(model, max_batch_size=64, delay_ms=50, on_batch=sizes.append)
    arrays = [np.full((1, 3), i, dtype=np.float32) for i in range(16)]
    results = run_concurrently(batcher, arrays)
    for array, result in zip(arrays, results, strict=True):
        np.testing.assert_array_equal(result, array * 2)
    assert len(model.calls) < 16 and sum(model.calls) == 16
    assert sum(sizes) == 16


def test_a_failing_request_fails_alone() -> None:
    model = Recorder()
    batcher = Batcher(model, max_batch_size=64, delay_ms=50)
    arrays = [np.full((1, 2), i, dtype=np.float32) for i in range(8)]
    arrays[3] = -arrays[3] - 1
    results = run_concurrently(batcher, arrays)
    assert isinstance(results[3], ValueError)
    for index, result in enumerate(results):
        if index != 3:
            np.testing.assert_array_equal(result, arrays[index] * 2)


def test_batches_never_exceed_the_maximum_and_shapes_do_not_mix() -> None:
    model = Recorder()
    batcher = Batcher(model, max_batch_size=4, delay_ms=50)
    arrays = [np.ones((1, 2 + i % 2), dtype=np.float32) for i in range(12)]
    results = run_concurrently(batcher, arrays)
    assert all(r.shape == a.shape for r, a in zip(results, arrays, strict=True))
    assert max(model.calls) <= 4 and sum(model.calls) == 12


@pytest.mark.parametrize("rows", [64, 100])
def test_a_request_as_large_as_a_batch_runs_directly(rows: int) -> None:
    model = Recorder()
    batcher = Batcher(model, max_batch_size=64, delay_ms=1000)
    result = batcher.predict({"x": np.ones((rows, 1))}, {}, ("y",))
    assert result["y"].shape == (rows, 1) and model.calls == [rows]


def test_outputs_that_are_not_batched_fall_back_to_single_calls() -> None:
    calls: list[int] = []

    def summary(inputs: dict[str, np.ndarray], parameters: dict, names: Collection[str]) -> dict:
        calls.append(len(inputs["x"]))
        return {"total": np.array(inputs["x"].sum())}

    batcher = Batcher(summary, max_batch_size=64, delay_ms=50)
    arrays = [np.full((1,), i, dtype=np.float64) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda a: batcher.predict({"x": a}, {}, ("total",)), arrays))
    assert [float(r["total"]) for r in results] == [0.0, 1.0, 2.0, 3.0]
