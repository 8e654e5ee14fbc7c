"""A model whose every call costs a fixed 5 ms, however many rows it gets: what batching is for.

The cost stands for one device or native call that serves one caller at a time (a GPU kernel, a
library holding its own lock): calls are serialized by a lock and sleep without holding the GIL,
so the server can parse other requests meanwhile. Without batching it serves at most
1000 / `cost_ms` requests a second whatever the concurrency; with batching each call answers a
whole batch.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from app.model import Model
from app.types import TensorSpec


class FixedCostModel(Model):
    """Echoes `x` ([-1, 4] FP32) after `parameters.cost_ms` (default 5) per call."""

    def load(self) -> None:
        """Declare the input and output; read the cost."""
        self.inputs = [TensorSpec("x", "FP32", (-1, 4))]
        self.outputs = [TensorSpec("y", "FP32", (-1, 4))]
        self._cost = float(self.parameters.get("cost_ms", 5.0)) / 1000.0
        self._device = threading.Lock()

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """One call at a time, each `cost_ms` long."""
        with self._device:
            time.sleep(self._cost)
        return {"y": inputs["x"]}
