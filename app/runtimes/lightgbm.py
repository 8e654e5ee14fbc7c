"""LightGBM boosters saved as text (`Booster.save_model`)."""

from __future__ import annotations

import re
from collections.abc import Collection

import lightgbm
import numpy as np

from app.runtimes.classifier import PREDICTIONS, classifier_result
from app.runtimes.tabular import TabularModel

# Names LightGBM invents when trained on arrays; they say nothing a client could use.
_AUTO_FEATURE = re.compile(r"Column_\d+")
_MULTICLASS = ("multiclass", "multiclassova")


class LightGBMModel(TabularModel):
    """A booster whose objective decides whether it answers like a classifier or a regressor."""

    platform = "lightgbm_text"

    def load(self) -> None:
        """Load the booster and read its objective, class count and feature names."""
        self.booster = lightgbm.Booster(model_file=str(self.uri))
        # One thread per prediction unless told otherwise: the server scales with processes.
        self.num_threads = int(self.parameters.get("num_threads", 1))
        self.objective = self._objective()
        if self.objective in _MULTICLASS:
            n_classes = self.booster.num_model_per_iteration()
            self.classes: np.ndarray | None = np.arange(n_classes, dtype=np.int64)
        elif self.objective == "binary":
            self.classes = np.arange(2, dtype=np.int64)
        else:
            self.classes = None
        self.declare(self.booster.num_feature(), self.classes)
        names = [str(name) for name in self.booster.feature_name()]
        auto = all(_AUTO_FEATURE.fullmatch(name) for name in names)
        self.features = None if auto else names

    def _objective(self) -> str:
        """The canonical objective name ("multiclass", "binary", "regression", ...).

        The model's own dump spells it canonically ("multiclass num_class:3"), while the saved
        training parameters may hold an alias ("softmax"); one iteration is enough to read it.
        """
        objective = self.booster.dump_model(num_iteration=1).get("objective")
        if not objective:
            objective = self.booster.params.get("objective", "regression")
        return str(objective).split()[0]

    def predict_rows(self, rows: np.ndarray, names: Collection[str]) -> dict[str, np.ndarray]:
        """One booster call, shaped into what `names` asks for."""
        values = np.asarray(self.booster.predict(rows, num_threads=self.num_threads))
        if self.classes is None:
            return {PREDICTIONS: values.astype(np.float32)}
        if len(self.classes) == 2 and values.ndim == 1:
            values = np.column_stack((1.0 - values, values))
        elif self.objective == "multiclassova":
            # One-vs-all scores are independent sigmoids; scale them into a distribution.
            values = values / values.sum(axis=1, keepdims=True)
        return classifier_result(self.classes, values, names)
