"""The base of the built-in runtimes over one `[-1, n]` numeric input (sklearn, xgboost, lightgbm).

It holds what they would otherwise each repeat: the metadata of a classifier or a regressor,
`predict` as `predict_outputs` of the default outputs, and the rows of the request (the one
matrix input, or the per-feature inputs a config entry declares, stacked). A request
with no rows is answered here without calling the library: a `[0, n]` tensor is a valid OIP
request, and scikit-learn raises on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import Any

import numpy as np

from app.codec.datatypes import dtype_from_datatype
from app.model import Model
from app.runtimes.classifier import PREDICTIONS, classifier_outputs, regressor_outputs
from app.runtimes.columns import is_columnar, stack_columns
from app.types import TensorSpec


class TabularModel(Model, ABC):
    """Rows of features in, `predictions` (and `probabilities` for classifiers) out."""

    def declare(self, n_features: int | None, classes: np.ndarray | None) -> None:
        """Set the metadata: input `input-0` FP32 `[-1, n_features]`, outputs by kind."""
        self.inputs = [TensorSpec("input-0", "FP32", (-1, int(n_features) if n_features else -1))]
        if classes is not None:
            self.outputs = classifier_outputs(classes, len(classes))
        else:
            self.outputs = regressor_outputs()
        self.default_outputs = [PREDICTIONS]

    def predict(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Predictions for the rows of the first input."""
        return self.predict_outputs(inputs, parameters, (PREDICTIONS,))

    def predict_outputs(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any], names: Collection[str]
    ) -> dict[str, np.ndarray]:
        """The outputs in `names` for the rows of the first input."""
        if not names:
            return {}
        if is_columnar(self.inputs):  # inputs declared one per feature (app.runtimes.columns)
            rows = stack_columns(self.name, self.inputs, inputs)
        else:
            rows = np.asarray(next(iter(inputs.values())))
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        if rows.shape[0] == 0:
            return self._empty(names)
        return self.predict_rows(rows, names)

    @abstractmethod
    def predict_rows(self, rows: np.ndarray, names: Collection[str]) -> dict[str, np.ndarray]:
        """The library call on at least one row; runtimes implement it."""

    def _empty(self, names: Collection[str]) -> dict[str, np.ndarray]:
        specs = {spec.name: spec for spec in self.outputs}
        return {
            name: np.empty(
                tuple(max(dim, 0) for dim in specs[name].shape),
                dtype=dtype_from_datatype(specs[name].datatype),
            )
            for name in names
            if name in specs
        }
