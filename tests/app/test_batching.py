"""Dynamic batching: concurrent requests share model calls; failures stay their own."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.batching import Batcher
from app.types import InferRequest, Tensor
from blueprints.factory import create_app


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
    sizes: list[int] = []
    batcher = Batcher(model, max_batch_size=64, delay_ms=1000, on_batch=sizes.append)
    result = batcher.predict({"x": np.ones((rows, 1))}, {}, ("y",))
    assert result["y"].shape == (rows, 1) and model.calls == [rows]
    assert sizes == [rows]  # its own execution still counts in the batch-size metric


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


def _collectors(name: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == name]


def test_close_answers_queued_requests_then_ends_the_collector() -> None:
    release, entered = threading.Event(), threading.Event()
    calls: list[int] = []

    def gated(inputs: dict[str, np.ndarray], parameters: dict, names: Collection[str]) -> dict:
        entered.set()
        release.wait(30)
        calls.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2}

    name = "modelport-batcher:test-close"
    batcher = Batcher(gated, max_batch_size=2, delay_ms=0, name=name)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(batcher.predict, {"x": np.ones((1, 1))}, {}, ("y",))
        assert entered.wait(30)  # the collector is inside the model with the first request
        queued = [
            pool.submit(batcher.predict, {"x": np.full((1, 1), i)}, {}, ("y",)) for i in (2, 3)
        ]
        while batcher._queue.qsize() < 2:  # both wait in the queue behind the first
            threading.Event().wait(0.01)
        batcher.close()
        release.set()
        results = [future.result(30)["y"].tolist() for future in (first, *queued)]
    assert results == [[[2.0]], [[4.0]], [[6.0]]]
    for thread in _collectors(name):
        thread.join(30)
    assert _collectors(name) == []
    # A request that still holds the batcher after close runs unbatched, never hangs.
    assert batcher.predict({"x": np.ones((1, 1))}, {}, ("y",))["y"].tolist() == [[2.0]]
    assert sum(calls) == 4 and _collectors(name) == []


def test_unload_and_reload_end_the_old_batcher_and_free_the_old_model(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(
        "server: {grpc: {port: 0}, omi: {port: 0}}\n"
        "models:\n"
        "  - {name: cycled, runtime: python, class: 'tests.models:SlowModel',\n"
        "     max_batch_size: 8, batch_delay_ms: 1, parameters: {delay_ms: 0}}\n"
    )
    plane = create_app(config, {"TESTING": True}).extensions["modelport"].dataplane

    def infer() -> None:
        tensor = Tensor("x", "FP32", np.ones(1, dtype=np.float32))
        response = plane.infer(InferRequest("cycled", None, "", [tensor]))
        assert response.outputs[0].data.tolist() == [1.0]

    def collectors() -> list[threading.Thread]:
        return _collectors("modelport-batcher:cycled:1")

    infer()
    assert len(collectors()) == 1
    old: list[weakref.ref] = []
    for cycle in range(4):
        old.append(weakref.ref(plane.model("cycled")))
        if cycle % 2:
            plane.unload_model("cycled")
        plane.load_model("cycled")  # a reload when it was still loaded
        infer()
    deadline = time.monotonic() + 30
    while len(collectors()) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(collectors()) == 1
    gc.collect()
    assert [ref() for ref in old] == [None] * len(old)
