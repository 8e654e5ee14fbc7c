"""scikit-learn estimators saved with joblib or pickle."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import joblib
import numpy as np

from app.model import Model
from app.runtimes.classifier import (
    PREDICTIONS,
    PROBABILITIES,
    classifier_outputs,
    regressor_outputs,
)
from app.runtimes.linear import linear_predict
from app.types import TensorSpec


class SKLearnModel(Model):
    """A fitted estimator: `predict`, and `predict_proba` when asked for `probabilities`."""

    platform = "sklearn_joblib"

    def load(self) -> None:
        """Unpickle the estimator and read its metadata from the fitted attributes."""
        self.estimator = joblib.load(self.uri)
        # Linear classifiers answer `predictions` without sklearn's per-call validation.
        self._predict = linear_predict(self.estimator) or self.estimator.predict
        n_features = getattr(self.estimator, "n_features_in_", None)
        shape = (-1, int(n_features)) if n_features else (-1, -1)
        self.inputs = [TensorSpec("input-0", "FP32", shape)]
        names = getattr(self.estimator, "feature_names_in_", None)
        self.features = [str(n) for n in names] if names is not None else None
        classes = getattr(self.estimator, "classes_", None)
        if classes is not None and hasattr(self.estimator, "predict_proba"):
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
        """Call only the estimator methods whose outputs were asked for."""
        rows = next(iter(inputs.values()))
        result: dict[str, np.ndarray] = {}
        if PREDICTIONS in names:
            result[PREDICTIONS] = np.asarray(self._predict(rows))
        if PROBABILITIES in names:
            result[PROBABILITIES] = np.asarray(self.estimator.predict_proba(rows), dtype=np.float32)
        return result
