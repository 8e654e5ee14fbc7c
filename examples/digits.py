"""A user model for the `python` runtime: the digits classifier, with a Chassis `process` too.

Configured as `class: examples.digits:DigitsModel` with `uri: ../models/digits.joblib` (written by
`python -m examples.train`). It shows what a user class declares itself, since the `python`
runtime cannot read metadata from an arbitrary file.
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Mapping
from typing import Any

import joblib
import numpy as np

from app.explain.background import load_background
from app.model import Model
from app.types import TensorSpec

N_FEATURES = 64  # 8x8 pixels, grey levels 0..16
N_CLASSES = 10
_NPY_MAGIC = b"\x93NUMPY"


class DigitsModel(Model):
    """Handwritten digit classifier: `predictions` by default, `probabilities` on request.

    It also shows a model's own `explain`, which the server uses instead of its explainers.
    """

    def load(self) -> None:
        """Load the estimator and declare the tensors it answers with."""
        if self.uri is None:
            raise ValueError(f"model '{self.name}' needs a uri (the digits.joblib file)")
        self.estimator = joblib.load(self.uri)
        self.inputs = [TensorSpec("input-0", "FP32", (-1, N_FEATURES))]
        self.outputs = [
            TensorSpec("predictions", "INT64", (-1,)),
            TensorSpec("probabilities", "FP32", (-1, N_CLASSES)),
        ]
        self.default_outputs = ["predictions"]
        # What `explain` answers, declared so the model metadata lists it.
        self.explain_outputs = [
            TensorSpec("attributions", "FP64", (-1, N_CLASSES, N_FEATURES)),
            TensorSpec("base_values", "FP64", (-1, N_CLASSES)),
        ]
        self.explained_output = "decision_function"
        background = self.settings.explain.background
        # The baseline a digit is compared with: the configured background's mean image, or a
        # blank image, which is what "no ink" means for this model.
        self.baseline = (
            load_background(background, N_FEATURES).mean(axis=0)
            if background is not None
            else np.zeros(N_FEATURES)
        )

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Both outputs for the rows of the single input."""
        return self.predict_outputs(inputs, parameters, ("predictions", "probabilities"))

    def predict_outputs(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any], names: Collection[str]
    ) -> dict[str, np.ndarray]:
        """Skip `predict_proba` when only labels were asked for."""
        rows = np.asarray(next(iter(inputs.values())), dtype=np.float32)
        result: dict[str, np.ndarray] = {}
        if "predictions" in names:
            result["predictions"] = np.asarray(self.estimator.predict(rows), dtype=np.int64)
        if "probabilities" in names:
            result["probabilities"] = np.asarray(
                self.estimator.predict_proba(rows), dtype=np.float32
            )
        return result

    def explain(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Exact attributions of each class's log-odds score, pixel by pixel.

        A user model's own `explain` wins over the server's explainers. This one knows its
        estimator is linear, so `coef * (pixel - baseline)` plus `coef · baseline + intercept`
        is exactly its `decision_function`, with no sampling.
        """
        rows = np.asarray(next(iter(inputs.values())), dtype=np.float64)
        coef = np.asarray(self.estimator.coef_, dtype=np.float64)  # [classes, pixels]
        attributions = coef[np.newaxis, :, :] * (rows - self.baseline)[:, np.newaxis, :]
        base = coef @ self.baseline + np.asarray(self.estimator.intercept_, dtype=np.float64)
        return {
            "attributions": attributions,
            "base_values": np.repeat(base[np.newaxis, :], len(rows), axis=0),
        }

    def process(self, item: Mapping[str, bytes]) -> dict[str, bytes]:
        """Answer one OMI (Chassis) item: `input` holds JSON numbers or `.npy` bytes.

        Raises ValueError with a message the OMI client can show when the item is unusable.
        """
        if "input" not in item:
            raise ValueError(f"item has no 'input' key (got {sorted(item)})")
        rows = _rows(item["input"])
        outputs = self.predict_outputs({"input-0": rows}, {}, ("predictions", "probabilities"))
        body = {
            "predictions": outputs["predictions"].tolist(),
            "probabilities": outputs["probabilities"].tolist(),
        }
        return {"results.json": json.dumps(body).encode("utf-8")}


def _rows(data: bytes) -> np.ndarray:
    """Rows of 64 pixel values from `.npy` or JSON bytes (one row or a list of rows)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"'input' must be bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        if data.startswith(_NPY_MAGIC):
            values = np.load(io.BytesIO(data), allow_pickle=False)
        else:
            values = np.asarray(json.loads(data), dtype=np.float32)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(f"'input' is neither JSON numbers nor a .npy array: {exc}") from None
    if values.dtype.kind not in "biuf":
        raise ValueError(f"'input' must hold numbers, got {values.dtype}")
    if values.ndim == 1:
        values = values.reshape(1, -1)
    if values.ndim != 2 or values.shape[1] != N_FEATURES or values.shape[0] == 0:
        raise ValueError(
            f"'input' must be {N_FEATURES} numbers or rows of {N_FEATURES}, got shape "
            f"{list(values.shape)}"
        )
    return values.astype(np.float32)
