"""What every built-in classifier answers: `predictions` always, `probabilities` on request."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from app.codec.datatypes import datatype_from_dtype
from app.types import TensorSpec

PREDICTIONS = "predictions"
PROBABILITIES = "probabilities"


def classifier_outputs(classes: np.ndarray, n_classes: int) -> list[TensorSpec]:
    """Output metadata of a classifier whose labels are `classes`."""
    label_type = datatype_from_dtype(np.asarray(classes).dtype)
    if label_type in ("INT8", "INT16", "INT32", "UINT8", "UINT16", "UINT32", "UINT64"):
        label_type = "INT64"
    return [
        TensorSpec(PREDICTIONS, label_type, (-1,)),
        TensorSpec(PROBABILITIES, "FP32", (-1, n_classes)),
    ]


def regressor_outputs() -> list[TensorSpec]:
    """Output metadata of a single-target regressor."""
    return [TensorSpec(PREDICTIONS, "FP32", (-1,))]


def classifier_result(
    classes: np.ndarray, probabilities: np.ndarray, names: Collection[str]
) -> dict[str, np.ndarray]:
    """What `names` asks of a classifier that computed class probabilities (boosters)."""
    result: dict[str, np.ndarray] = {}
    if PREDICTIONS in names:
        result[PREDICTIONS] = labels_from_probabilities(classes, probabilities)
    if PROBABILITIES in names:
        result[PROBABILITIES] = probabilities.astype(np.float32)
    return result


def labels_from_probabilities(classes: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """The most probable class of each row."""
    labels: np.ndarray = np.asarray(classes)[np.argmax(probabilities, axis=1)]
    return labels
