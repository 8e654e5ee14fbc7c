"""CatBoost models saved in CatBoost's own format (`.cbm`, `model.save_model`)."""

from __future__ import annotations

from collections.abc import Collection

import catboost
import numpy as np

from app.runtimes.classifier import PREDICTIONS, classifier_result
from app.runtimes.tabular import TabularModel

# Losses whose raw score is a log: predictions are its exponent (CatBoost's own "Exponent").
_EXPONENT = ("Poisson", "Tweedie")


class CatBoostModel(TabularModel):
    """A CatBoost model whose class labels decide whether it answers like a classifier."""

    platform = "catboost_cbm"

    def load(self) -> None:
        """Load the model and read its loss, class labels and feature names.

        Raises TypeError for a model with categorical or text features: the server hands it
        rows of numbers.
        """
        self.booster = catboost.CatBoost()
        self.booster.load_model(str(self.uri))
        # One thread per prediction unless told otherwise: the server scales with processes.
        self.thread_count = int(self.parameters.get("thread_count", 1))
        special = [
            *self.booster.get_cat_feature_indices(),
            *self.booster.get_text_feature_indices(),
        ]
        if special:
            raise TypeError(
                f"feature {special[0]} is categorical or text; Modelport's CatBoost runtime "
                "takes numeric features only"
            )
        self.loss = str(self.booster.get_all_params().get("loss_function", ""))
        labels = np.asarray(self.booster.classes_)
        self.classes: np.ndarray | None = labels if len(labels) else None
        names = [str(name) for name in self.booster.feature_names_ or []]
        self.declare(len(names) or None, self.classes)
        # CatBoost names the features of a model trained on arrays "0", "1", ...: no names.
        self.features = None if names == [str(i) for i in range(len(names))] else names

    def predict_rows(self, rows: np.ndarray, names: Collection[str]) -> dict[str, np.ndarray]:
        """One CatBoost call, shaped into what `names` asks for."""
        if self.classes is None:
            kind = "Exponent" if self.loss.split(":")[0] in _EXPONENT else "RawFormulaVal"
            return {PREDICTIONS: self._run(rows, kind).astype(np.float32)}
        probabilities = self._run(rows, "Probability").reshape(len(rows), -1)
        if self.loss.startswith("MultiClassOneVsAll"):
            # One-vs-all scores are independent sigmoids; scale them into a distribution.
            probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
        return classifier_result(self.classes, probabilities, names)

    def _run(self, rows: np.ndarray, prediction_type: str) -> np.ndarray:
        return np.asarray(
            self.booster.predict(
                rows, prediction_type=prediction_type, thread_count=self.thread_count
            )
        )
