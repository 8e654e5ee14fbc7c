"""Exact TreeSHAP for gradient-boosted trees, from the libraries' own contribution outputs.

The three libraries (xgboost, lightgbm, CatBoost) compute path-dependent TreeSHAP in C++ from the
cover statistics stored in the trees, so no background data is needed, and the attributions plus
the bias add up to the raw score (the margin before the link function) exactly, up to float32
rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from app.explain.base import Explainer, attribution_specs, feature_rows, split_bias
from app.model import Model
from app.types import TensorSpec

if TYPE_CHECKING:  # the runtimes import optional libraries; only their models reach here
    from app.runtimes.catboost import CatBoostModel
    from app.runtimes.lightgbm import LightGBMModel
    from app.runtimes.xgboost import XGBoostModel

#: The raw score that TreeSHAP attributions add up to: log-odds for a binary classifier,
#: per-class scores before softmax for a multiclass one, the prediction for a regressor.
MARGIN = "margin"


class XGBoostExplainer(Explainer):
    """`Booster.predict(pred_contribs=True)`: one target per output group."""

    method = "tree_shap"
    explained_output = MARGIN

    def __init__(self, model: XGBoostModel) -> None:
        # The booster, not the model: see `Explainer` on why the model is never kept.
        self.booster = model.booster
        classes = model.classes
        self.targets = len(classes) if classes is not None and len(classes) > 2 else 1
        self.features = int(self.booster.num_features())

    def outputs(self) -> list[TensorSpec]:
        """`attributions` and `base_values` for every output group of the booster."""
        return attribution_specs(self.targets, self.features)

    def explain(
        self, model: Model, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> Mapping[str, np.ndarray]:
        """Contributions `[batch, groups, features + 1]` (strict shape) split into the two."""
        import xgboost

        rows = feature_rows(inputs)
        # One thread per call, as the model's own predictions: the server scales with processes.
        matrix = xgboost.DMatrix(rows, nthread=1)
        contributions = self.booster.predict(
            matrix, pred_contribs=True, strict_shape=True, validate_features=False
        )
        return split_bias(np.asarray(contributions))


class LightGBMExplainer(Explainer):
    """`Booster.predict(pred_contrib=True)`: one block of `features + 1` columns per class."""

    method = "tree_shap"
    explained_output = MARGIN

    def __init__(self, model: LightGBMModel) -> None:
        self.booster = model.booster
        self.num_threads = model.num_threads
        self.targets = int(self.booster.num_model_per_iteration())
        self.features = int(self.booster.num_feature())

    def outputs(self) -> list[TensorSpec]:
        """`attributions` and `base_values` for every model of an iteration (class)."""
        return attribution_specs(self.targets, self.features)

    def explain(
        self, model: Model, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> Mapping[str, np.ndarray]:
        """Contributions reshaped from lightgbm's flat class blocks, then split."""
        rows = feature_rows(inputs)
        flat = np.asarray(
            self.booster.predict(rows, pred_contrib=True, num_threads=self.num_threads)
        )
        return split_bias(flat.reshape(len(rows), self.targets, -1))


class CatBoostExplainer(Explainer):
    """CatBoost's `ShapValues`: `[batch, classes, features + 1]` for a multiclass model,
    `[batch, features + 1]` (one target) otherwise."""

    method = "tree_shap"
    explained_output = MARGIN

    def __init__(self, model: CatBoostModel) -> None:
        self.booster = model.booster
        self.thread_count = model.thread_count
        classes = model.classes
        self.targets = len(classes) if classes is not None and len(classes) > 2 else 1
        self.features = len(self.booster.feature_names_ or [])

    def outputs(self) -> list[TensorSpec]:
        """`attributions` and `base_values` for every class of a multiclass model (else one)."""
        return attribution_specs(self.targets, self.features)

    def explain(
        self, model: Model, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> Mapping[str, np.ndarray]:
        """Shapley values from CatBoost's own TreeSHAP, split into the two tensors."""
        import catboost

        rows = feature_rows(inputs)
        values = self.booster.get_feature_importance(
            data=catboost.Pool(rows), type="ShapValues", thread_count=self.thread_count
        )
        return split_bias(np.asarray(values).reshape(len(rows), self.targets, -1))
