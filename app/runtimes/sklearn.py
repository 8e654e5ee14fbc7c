"""scikit-learn estimators saved with joblib or pickle."""

from __future__ import annotations

from collections.abc import Callable, Collection

import joblib
import numpy as np

from app.runtimes.classifier import (
    PREDICTIONS,
    PROBABILITIES,
)
from app.runtimes.linear import linear_predict, logistic_predict_proba
from app.runtimes.tabular import TabularModel


class SKLearnModel(TabularModel):
    """A fitted estimator: `predict`, and `predict_proba` when asked for `probabilities`."""

    platform = "sklearn_joblib"

    def load(self) -> None:
        """Unpickle the estimator and read its metadata from the fitted attributes."""
        self.estimator = joblib.load(self.uri)
        # Linear classifiers answer `predictions` without sklearn's per-call validation.
        self._predict = linear_predict(self.estimator) or self.estimator.predict
        # `declare` leaves `probabilities` out when the estimator has no predict_proba,
        # so predict_rows only calls this when it exists.
        proba: Callable[[np.ndarray], np.ndarray] | None = getattr(
            self.estimator, "predict_proba", None
        )
        if proba is not None:
            proba = logistic_predict_proba(self.estimator) or proba
        self._predict_proba = proba
        classes = getattr(self.estimator, "classes_", None) if proba is not None else None
        self.declare(getattr(self.estimator, "n_features_in_", None), classes)
        names = getattr(self.estimator, "feature_names_in_", None)
        self.features = [str(n) for n in names] if names is not None else None

    def predict_rows(self, rows: np.ndarray, names: Collection[str]) -> dict[str, np.ndarray]:
        """Call only the estimator methods whose outputs were asked for."""
        result: dict[str, np.ndarray] = {}
        if PREDICTIONS in names:
            result[PREDICTIONS] = np.asarray(self._predict(rows))
        if PROBABILITIES in names and self._predict_proba is not None:
            result[PROBABILITIES] = np.asarray(self._predict_proba(rows), dtype=np.float32)
        return result
