"""A user model that sums rows, so a large-tensor test can check the answer cheaply."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.model import Model
from app.types import TensorSpec


class SumModel(Model):
    """Row sums of a float32 matrix of any size."""

    def load(self) -> None:
        """Declare the one input and the one output; there are no weights."""
        self.inputs = [TensorSpec("input-0", "FP32", (-1, -1))]
        self.outputs = [TensorSpec("sum", "FP32", (-1,))]

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Sum in float64, so long rows do not lose precision, then answer float32."""
        rows = np.asarray(next(iter(inputs.values())))
        return {"sum": rows.sum(axis=-1, dtype=np.float64).astype(np.float32)}
