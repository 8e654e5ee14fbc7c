"""The data plane counts every request that reached a model exactly once, as success or failure."""

from __future__ import annotations

import numpy as np
import pytest

from app.dataplane import DataPlane
from app.errors import ModelFailed
from app.manager import ModelManager
from app.types import InferRequest, Tensor
from config.settings import ModelSettings, Settings


def _plane() -> DataPlane:
    model = ModelSettings(
        name="m", version="1", runtime="python", class_path="tests.models:UnsendableOutputModel"
    )  # type: ignore[call-arg]  # test-only kwargs
    manager = ModelManager(Settings(models=(model,)))
    manager.load_all()
    return DataPlane(manager, "test", "0")


def _request(value: float) -> InferRequest:
    return InferRequest(
        model_name="m",
        model_version=None,
        id="r",
        inputs=[Tensor("x", "FP32", np.array([value], dtype=np.float32))],
    )


def test_an_output_that_cannot_be_sent_is_a_failure_in_the_statistics() -> None:
    plane = _plane()
    assert plane.infer(_request(1.0)).outputs[0].data.tolist() == [1]
    with pytest.raises(ModelFailed, match="output 'y' cannot be sent"):
        plane.infer(_request(-1.0))
    stats = plane.stats.snapshot("m", "1")
    assert (stats.success.count, stats.fail.count) == (1, 1)
