"""Tabular models whose inputs are declared one per feature (MLflow's columnar signature).

A config entry may declare `inputs: [{name: sepal_length, datatype: FP32, shape: [-1]}, ...]`
for a model that takes one matrix (scikit-learn, xgboost, lightgbm, a one-input ONNX graph).
Its requests then carry one tensor per feature (v2 tensors) or rows keyed by those names
(`infer_dict`); the binding checks each tensor against its declaration, and the runtime stacks
them here, in the declared order, into the matrix the model was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from app.errors import InvalidInput
from app.types import TensorSpec


def is_columnar(specs: Sequence[TensorSpec]) -> bool:
    """Whether declared inputs are features to stack: several, or one that is a column (`[-1]`)."""
    return len(specs) > 1 or (len(specs) == 1 and len(specs[0].shape) == 1)


def stack_columns(
    model: str, specs: Sequence[TensorSpec], inputs: Mapping[str, np.ndarray]
) -> np.ndarray:
    """The `[rows, features]` matrix of per-feature inputs, columns in the declared order.

    Each input is a column (`[rows]` or `[rows, k]`, which adds k columns). Raises
    `InvalidInput` for a missing input, or inputs whose row counts differ.
    """
    columns = checked_columns(model, specs, inputs)
    rows = len(columns[0])
    return np.hstack([column.reshape(rows, -1) for column in columns])


def checked_columns(
    model: str, specs: Sequence[TensorSpec], inputs: Mapping[str, np.ndarray]
) -> list[np.ndarray]:
    """The per-feature inputs in the declared order, each with the same number of rows.

    Raises `InvalidInput` for a missing input, or inputs whose row counts differ.
    """
    missing = [spec.name for spec in specs if spec.name not in inputs]
    if missing:
        raise InvalidInput(f"model '{model}': input '{missing[0]}' is missing")
    columns = [np.asarray(inputs[spec.name]) for spec in specs]
    rows = len(columns[0]) if columns[0].ndim else 1
    for spec, column in zip(specs, columns, strict=True):
        if column.ndim == 0 or len(column) != rows:
            count = len(column) if column.ndim else 1
            raise InvalidInput(
                f"model '{model}': input '{spec.name}' has {count} rows, "
                f"'{specs[0].name}' has {rows}: every feature needs one value per row"
            )
    return columns
