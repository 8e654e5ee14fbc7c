"""Exact TreeSHAP for scikit-learn's tree models, with no background data.

`DecisionTree*`, `RandomForest*`, `ExtraTrees*`, `GradientBoosting*` and `HistGradientBoosting*`
(classifiers and regressors) are read into `treeshap.Tree` arrays once, when the explainer is
built: the splits, and as cover the training weight that reached each node (`tree_.
weighted_n_node_samples`, or the `count` of a histogram predictor's nodes), as xgboost and
lightgbm use their own covers. Each tree's values are scaled into the raw output the ensemble
adds up, so attributions plus base value equal that output for every row:

- decision tree, random forest and extra trees classifiers: `probabilities` (the trees' mean),
  one target per class;
- their regressors: `predictions` (the trees' mean), one target;
- gradient boosting classifiers (both kinds): `decision_function`, the log-odds before the link,
  one target per class (one for a binary classifier);
- gradient boosting regressors: `predictions`, or `margin` before a log link (poisson, gamma).

A model that does not fit (several outputs, categorical splits, a non-constant `init`, input
preprocessing) gets no tree explainer, and the usual background-based choice applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.errors import InvalidInput
from app.explain.base import ATTRIBUTIONS, BASE_VALUES, Explainer, attribution_specs, feature_rows
from app.explain.treeshap import Tree, leaf_paths, shap_values
from app.model import Model
from app.types import TensorSpec

PROBABILITIES = "probabilities"
PREDICTIONS = "predictions"
DECISION_FUNCTION = "decision_function"
MARGIN = "margin"


class SKLearnTreeExplainer(Explainer):
    """Path-dependent TreeSHAP over the trees of one scikit-learn estimator."""

    method = "tree_shap"

    def __init__(
        self,
        trees: Sequence[Tree],
        base: np.ndarray,
        features: int,
        explained_output: str,
        float32_splits: bool,
    ) -> None:
        self.trees = list(trees)  # as read from the estimator (tests check them by brute force)
        self.paths = leaf_paths(self.trees)  # every leaf's path, read once per model
        self.base = base + self.paths.expected_value()  # [targets]
        self.features = features
        self.explained_output = explained_output
        # scikit-learn's own trees compare float32 features against float64 thresholds.
        self.float32_splits = float32_splits

    def outputs(self) -> list[TensorSpec]:
        """`attributions` and `base_values` for every target of the explained output."""
        return attribution_specs(len(self.base), self.features)

    def explain(
        self, model: Model, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> Mapping[str, np.ndarray]:
        """Attributions `[batch, targets, features]` summed over the trees; the base value of
        every row is the ensemble's expected raw output.

        Raises `InvalidInput` for rows whose width is not the model's feature count.
        """
        rows = feature_rows(inputs)
        if rows.shape[1] != self.features:
            raise InvalidInput(
                f"explain: rows have {rows.shape[1]} features; the model takes {self.features}"
            )
        if self.float32_splits:
            rows = rows.astype(np.float32).astype(np.float64)
        phi = shap_values(self.paths, rows)
        return {
            ATTRIBUTIONS: np.ascontiguousarray(phi.transpose(0, 2, 1)),
            BASE_VALUES: np.ascontiguousarray(
                np.broadcast_to(self.base, (len(rows), len(self.base)))
            ),
        }


def sklearn_tree_explainer(estimator: Any) -> SKLearnTreeExplainer | None:
    """A TreeSHAP explainer for a fitted scikit-learn tree model; None for any other estimator,
    and for a tree model this module cannot read exactly (see the module docstring)."""
    try:
        from sklearn import ensemble, tree
    except ImportError:
        return None
    if isinstance(
        estimator, ensemble.HistGradientBoostingClassifier | ensemble.HistGradientBoostingRegressor
    ):
        return _hist_gradient_boosting(estimator)
    if isinstance(
        estimator, ensemble.GradientBoostingClassifier | ensemble.GradientBoostingRegressor
    ):
        return _gradient_boosting(estimator)
    forests = (
        ensemble.RandomForestClassifier,
        ensemble.RandomForestRegressor,
        ensemble.ExtraTreesClassifier,
        ensemble.ExtraTreesRegressor,
    )
    if isinstance(estimator, forests):
        members = list(estimator.estimators_)
    elif isinstance(estimator, tree.DecisionTreeClassifier | tree.DecisionTreeRegressor):
        members = [estimator]
    else:
        return None
    if getattr(estimator, "n_outputs_", 1) != 1:
        return None
    classifier = hasattr(estimator, "classes_")
    trees = [_sklearn_tree(member.tree_, 1.0 / len(members), classifier) for member in members]
    targets = trees[0].value.shape[1]
    return SKLearnTreeExplainer(
        trees,
        np.zeros(targets),
        int(estimator.n_features_in_),
        PROBABILITIES if classifier else PREDICTIONS,
        float32_splits=True,
    )


def _sklearn_tree(
    fitted: Any, scale: float, classifier: bool, target: int | None = None, targets: int = 1
) -> Tree:
    """A `Tree` from a fitted `sklearn.tree._tree.Tree`.

    A classification tree's value is its class fractions, normalised per node as `predict_proba`
    does. A regression tree inside a boosting ensemble adds to column `target` of `targets`.
    """
    value = np.asarray(fitted.value, dtype=np.float64)[:, 0, :]  # [nodes, classes or 1]
    if classifier:
        totals = value.sum(axis=1, keepdims=True)
        value = value / np.where(totals > 0, totals, 1.0)
    if target is not None:
        column = np.zeros((len(value), targets))
        column[:, target] = value[:, 0]
        value = column
    missing = getattr(fitted, "missing_go_to_left", None)
    nodes = len(value)
    return Tree(
        left=np.asarray(fitted.children_left, dtype=np.int64),
        right=np.asarray(fitted.children_right, dtype=np.int64),
        feature=np.asarray(fitted.feature, dtype=np.int64),
        threshold=np.asarray(fitted.threshold, dtype=np.float64),
        missing_left=np.zeros(nodes, bool) if missing is None else np.asarray(missing, bool),
        cover=np.asarray(fitted.weighted_n_node_samples, dtype=np.float64),
        value=value * scale,
    )


def _gradient_boosting(estimator: Any) -> SKLearnTreeExplainer | None:
    """`decision_function` (classifiers) or `predict` (regressors: every loss is the identity):
    the constant `init_` raw prediction plus `learning_rate` times each stage's trees."""
    init = estimator.init_
    if not (init == "zero" or type(init).__name__ in ("DummyClassifier", "DummyRegressor")):
        return None  # an init estimator that depends on x would hide in the base value
    features = int(estimator.n_features_in_)
    base = np.asarray(estimator._raw_predict_init(np.zeros((1, features), np.float32)), np.float64)
    stages = estimator.estimators_  # [n_estimators, targets] of DecisionTreeRegressor
    targets = stages.shape[1]
    trees = [
        _sklearn_tree(stages[i, k].tree_, estimator.learning_rate, False, k, targets)
        for i in range(stages.shape[0])
        for k in range(targets)
    ]
    classifier = hasattr(estimator, "classes_")
    output = DECISION_FUNCTION if classifier else PREDICTIONS
    return SKLearnTreeExplainer(trees, base[0], features, output, float32_splits=True)


def _hist_gradient_boosting(estimator: Any) -> SKLearnTreeExplainer | None:
    """The baseline plus every predictor's leaf values (already shrunk by the learning rate)."""
    if getattr(estimator, "_preprocessor", None) is not None:
        return None  # categorical columns are encoded before the trees see them
    predictors = estimator._predictors  # [iterations][targets] of TreePredictor
    if any(p.nodes["is_categorical"].any() for stage in predictors for p in stage):
        return None
    targets = len(predictors[0]) if predictors else 1
    trees = [
        _histogram_tree(p.nodes, k, targets) for stage in predictors for k, p in enumerate(stage)
    ]
    base = np.asarray(estimator._baseline_prediction, np.float64).reshape(-1)
    if hasattr(estimator, "classes_"):
        output = DECISION_FUNCTION
    else:
        output = MARGIN if estimator.loss in ("poisson", "gamma") else PREDICTIONS
    return SKLearnTreeExplainer(
        trees, base, int(estimator.n_features_in_), output, float32_splits=False
    )


def _histogram_tree(nodes: np.ndarray, target: int, targets: int) -> Tree:
    """A `Tree` from a `TreePredictor`'s node records (leaves hold the shrunk values)."""
    leaves = nodes["is_leaf"].astype(bool)
    value = np.zeros((len(nodes), targets))
    value[:, target] = np.where(leaves, nodes["value"], 0.0)
    return Tree(
        left=np.where(leaves, -1, nodes["left"].astype(np.int64)),
        right=np.where(leaves, -1, nodes["right"].astype(np.int64)),
        feature=nodes["feature_idx"].astype(np.int64),
        threshold=nodes["num_threshold"].astype(np.float64),
        missing_left=nodes["missing_go_to_left"].astype(bool),
        cover=nodes["count"].astype(np.float64),
        value=value,
    )
