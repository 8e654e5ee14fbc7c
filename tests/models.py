"""Purpose-built test models, in one module (not scattered through long test files)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.model import Model
from app.types import TensorSpec


class FailingModel(Model):
    """Raises while predicting when its input holds a negative number; echoes otherwise."""

    def load(self) -> None:
        """Declare one FP32 input and output."""
        self.inputs = [TensorSpec("x", "FP32", (-1,))]
        self.outputs = [TensorSpec("y", "FP32", (-1,))]

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Fail on demand, so one test can see a 500 followed by a success."""
        x = inputs["x"]
        if (x < 0).any():
            raise RuntimeError("negative values are not allowed")
        return {"y": x}


class UnsendableOutputModel(Model):
    """Answers an output its declared datatype cannot hold when the input is negative."""

    def load(self) -> None:
        """Declare one FP32 input and one INT32 output."""
        self.inputs = [TensorSpec("x", "FP32", (-1,))]
        self.outputs = [TensorSpec("y", "INT32", (-1,))]

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Strings for negative inputs: the data plane cannot send them as INT32."""
        x = inputs["x"]
        return {"y": np.array(["not a number"] * len(x)) if (x < 0).any() else x.astype(int)}


class BrokenLoadModel(Model):
    """A model whose load always raises: the server must keep serving the others."""

    def load(self) -> None:
        """Fail, the way a corrupt weight file would."""
        raise OSError("weights are corrupt")


class PidModel(Model):
    """Answers the pid of the worker that served each row, so a test sees which worker answered."""

    def load(self) -> None:
        """Declare one FP32 input and an INT64 `pid` output."""
        self.inputs = [TensorSpec("x", "FP32", (-1,))]
        self.outputs = [TensorSpec("pid", "INT64", (-1,))]

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """This process's pid, once per row."""
        return {"pid": np.full(len(inputs["x"]), os.getpid(), dtype=np.int64)}


class MarkedBrokenModel(PidModel):
    """Fails to load in a worker whose pid names a file in `parameters.marks`: a load that fails
    in some workers only. Answers its pid and when it was loaded, so a test sees which load
    serves."""

    def load(self) -> None:
        """Fail like a corrupt weight file where marked; otherwise a `PidModel` with `loaded`."""
        if (Path(self.parameters["marks"]) / str(os.getpid())).exists():
            raise OSError(f"weights are corrupt in {os.getpid()}")
        super().load()
        self.outputs.append(TensorSpec("loaded", "INT64", (-1,)))
        self.loaded = time.time_ns()

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """The pid, and the time this instance was loaded (ns), once per row."""
        rows = len(inputs["x"])
        return {**super().predict(inputs, parameters), "loaded": np.full(rows, self.loaded)}


class SlowModel(Model):
    """Sleeps `parameters.delay_ms` (default 50 ms) per call; counts concurrent calls."""

    active = 0
    peak = 0
    _lock = threading.Lock()

    def load(self) -> None:
        """Declare one FP32 input and output."""
        self.inputs = [TensorSpec("x", "FP32", (-1,))]
        self.outputs = [TensorSpec("y", "FP32", (-1,))]

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Echo after a delay."""
        cls = type(self)
        with cls._lock:
            cls.active += 1
            cls.peak = max(cls.peak, cls.active)
        try:
            time.sleep(
                float(parameters.get("delay_ms", self.parameters.get("delay_ms", 50))) / 1000
            )
        finally:
            with cls._lock:
                cls.active -= 1
        return {"y": inputs["x"]}


class MultiInputModel(Model):
    """Two named inputs of different datatypes: names must match exactly."""

    def load(self) -> None:
        """Declare `a` (FP32 [-1, 2]) and `b` (INT32 [-1]); outputs their sums per row."""
        self.inputs = [TensorSpec("a", "FP32", (-1, 2)), TensorSpec("b", "INT32", (-1,))]
        self.outputs = [TensorSpec("total", "FP64", (-1,))]

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Row sums of `a` plus `b`."""
        return {"total": inputs["a"].sum(axis=1, dtype=np.float64) + inputs["b"]}


class ParametersModel(Model):
    """Returns the request parameters it was given, as one JSON BYTES element."""

    def load(self) -> None:
        """Accept any input."""
        self.outputs = [TensorSpec("parameters", "BYTES", (1,))]

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Echo the parameters so a test can see they passed through."""
        import orjson

        return {
            "parameters": np.array(
                [orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS)], dtype=object
            )
        }


class DecisiveModel(Model):
    """Twelve features, one of which (`parameters.decisive`, default 7) decides the class.

    The others only nudge the score, so a model-agnostic explanation must rank the decisive
    feature first. `parameters.delay_ms` slows every call, for the explanation time limit.
    """

    FEATURES = 12

    def load(self) -> None:
        """Declare one FP32 input of twelve features, a label and two class probabilities."""
        self.decisive = int(self.parameters.get("decisive", 7))
        self.delay = float(self.parameters.get("delay_ms", 0)) / 1000
        self.inputs = [TensorSpec("x", "FP32", (-1, self.FEATURES))]
        self.outputs = [
            TensorSpec("predictions", "INT64", (-1,)),
            TensorSpec("probabilities", "FP32", (-1, 2)),
        ]
        self.default_outputs = ["predictions"]

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """A steep step in the decisive feature plus a gentle slope in all the others."""
        if self.delay:
            time.sleep(self.delay)
        x = np.asarray(inputs["x"], dtype=np.float64)
        score = 6.0 * np.tanh(2.0 * x[:, self.decisive]) + 0.1 * (
            x.sum(axis=1) - x[:, self.decisive]
        )
        positive = 1.0 / (1.0 + np.exp(-score))
        probabilities = np.column_stack((1.0 - positive, positive)).astype(np.float32)
        return {"predictions": probabilities.argmax(axis=1), "probabilities": probabilities}


class SlowPidModel(PidModel):
    """A `PidModel` that takes `parameters.delay_ms` (default 100 ms) per call, so that a test
    killing a worker finds requests in flight on it."""

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Sleep, then the pid of this worker once per row."""
        time.sleep(float(self.parameters.get("delay_ms", 100)) / 1000)
        return super().predict(inputs, parameters)
