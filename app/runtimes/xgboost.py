"""XGBoost boosters saved as JSON or UBJSON (`Booster.save_model`)."""

from __future__ import annotations

import json
from collections.abc import Collection

import numpy as np
import xgboost

from app.runtimes.classifier import PREDICTIONS, classifier_result
from app.runtimes.tabular import TabularModel

# Objectives whose booster answers one probability per class (softmax: the class index instead).
_MULTICLASS = ("multi:softprob", "multi:softmax")
_BINARY = "binary:logistic"


class XGBoostModel(TabularModel):
    """A booster whose objective decides whether it answers like a classifier or a regressor."""

    platform = "xgboost_json"

    def load(self) -> None:
        """Load the booster and read the objective and class count from its saved config."""
        self.booster = xgboost.Booster(model_file=str(self.uri))
        # One thread per prediction unless told otherwise: the server scales with processes.
        self.booster.set_param({"nthread": int(self.parameters.get("nthread", 1))})
        learner = json.loads(self.booster.save_config())["learner"]
        self.objective: str = learner["objective"]["name"]
        n_classes = int(learner["learner_model_param"].get("num_class", "0"))
        if self.objective in _MULTICLASS:
            self.classes: np.ndarray | None = np.arange(n_classes, dtype=np.int64)
        elif self.objective == _BINARY:
            self.classes = np.arange(2, dtype=np.int64)
        else:
            self.classes = None
        self.declare(self.booster.num_features(), self.classes)
        names = self.booster.feature_names
        self.features = [str(name) for name in names] if names else None

    def predict_rows(self, rows: np.ndarray, names: Collection[str]) -> dict[str, np.ndarray]:
        """One `inplace_predict` call (no DMatrix), shaped into what `names` asks for."""
        if self.classes is None:
            return {PREDICTIONS: self._run(rows, "value").astype(np.float32)}
        return classifier_result(self.classes, self._probabilities(rows), names)

    def _probabilities(self, rows: np.ndarray) -> np.ndarray:
        """Class probabilities, one column per class, whatever the classification objective."""
        if self.objective == _BINARY:
            positive = self._run(rows, "value").reshape(-1)
            return np.column_stack((1.0 - positive, positive))
        if self.objective == "multi:softmax":
            # softmax answers the winning index only; the raw margins still give probabilities.
            margins = self._run(rows, "margin").astype(np.float64)
            margins = np.exp(margins - margins.max(axis=1, keepdims=True))
            probabilities: np.ndarray = margins / margins.sum(axis=1, keepdims=True)
            return probabilities
        return self._run(rows, "value").reshape(len(rows), -1)

    def _run(self, rows: np.ndarray, predict_type: str) -> np.ndarray:
        # Feature names, when the booster has them, are metadata here; numpy rows carry none.
        return np.asarray(
            self.booster.inplace_predict(rows, predict_type=predict_type, validate_features=False)
        )
