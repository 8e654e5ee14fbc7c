"""Our path-dependent TreeSHAP: exact against brute force, additive on every scikit-learn family.

The brute force is the definition: the tree's path-dependent conditional expectation of every
coalition (Lundberg et al. 2018, Algorithm 1), combined with the Shapley weights over all
coalitions. It shares no code with `app.explain.treeshap`.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn import ensemble, linear_model, tree
from sklearn.datasets import load_diabetes, load_iris
from sklearn.pipeline import make_pipeline

from app.errors import NotImplementedByModel
from app.explain import require_explainer, treeshap
from app.explain.sklearn_trees import sklearn_tree_explainer
from app.explain.treeshap import Tree, leaf_paths, shap_values
from app.manager import instantiate
from config.settings import ModelSettings

RAW_TOLERANCE = 1e-5
IRIS_X, IRIS_Y = load_iris(return_X_y=True)
IRIS_X = IRIS_X.astype(np.float32)
DIABETES_X, DIABETES_Y = load_diabetes(return_X_y=True)
DIABETES_X = DIABETES_X.astype(np.float32)


def _expectation(model: Tree, row: np.ndarray, coalition: set[int], node: int = 0) -> np.ndarray:
    """Algorithm 1: follow the row on features in the coalition, else both ways by cover."""
    if model.left[node] < 0:
        return model.value[node]
    feature = int(model.feature[node])
    left, right = int(model.left[node]), int(model.right[node])
    if feature in coalition:
        value = row[feature]
        goes_left = (
            bool(model.missing_left[node]) if np.isnan(value) else (value <= model.threshold[node])
        )
        return _expectation(model, row, coalition, left if goes_left else right)
    share = model.cover[left] / model.cover[node]
    return share * _expectation(model, row, coalition, left) + (1 - share) * _expectation(
        model, row, coalition, right
    )


def _brute_force(model: Tree, row: np.ndarray) -> np.ndarray:
    """Shapley values `[features, targets]` by enumerating every coalition."""
    n = len(row)
    phi = np.zeros((n, model.value.shape[1]))
    for feature in range(n):
        others = [f for f in range(n) if f != feature]
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for coalition in itertools.combinations(others, size):
                with_it = _expectation(model, row, {*coalition, feature})
                phi[feature] += weight * (with_it - _expectation(model, row, set(coalition)))
    return phi


def _random_tree(seed: int) -> tuple[Tree, np.ndarray]:
    """A deep tree on few features (so features repeat along paths), with missing values."""
    rng = np.random.default_rng(seed)
    features = int(rng.integers(2, 6))
    x = rng.normal(size=(300, features)).astype(np.float32)
    y = np.sin(3 * x[:, 0]) + x[:, -1] * x[:, 0] + rng.normal(scale=0.1, size=300)
    x[rng.random(x.shape) < 0.1] = np.nan  # scikit-learn learns where missing values go
    weights = rng.integers(1, 4, size=300)  # covers that are weights, not counts
    fitted = tree.DecisionTreeRegressor(max_depth=int(rng.integers(3, 7)), random_state=seed)
    fitted.fit(x, y, sample_weight=weights)
    explainer = sklearn_tree_explainer(fitted)
    assert explainer is not None
    rows = rng.normal(size=(6, features))
    rows[0, 0] = np.nan
    return explainer.trees[0], rows.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("seed", range(8))
def test_tree_shap_is_the_brute_force_shapley_value(seed: int) -> None:
    model, rows = _random_tree(seed)
    assert len(set(model.feature[model.left >= 0])) < (model.left >= 0).sum()  # repeats
    phi = shap_values(leaf_paths([model]), rows)
    for row, got in zip(rows, phi, strict=True):
        np.testing.assert_allclose(got, _brute_force(model, row), rtol=0, atol=1e-10)


def test_tree_shap_of_a_multiclass_histogram_tree_is_the_brute_force() -> None:
    fitted = ensemble.HistGradientBoostingClassifier(max_iter=2, random_state=0)
    fitted.fit(IRIS_X, IRIS_Y)
    explainer = sklearn_tree_explainer(fitted)
    assert explainer is not None
    rows = IRIS_X[::37].astype(np.float64)
    for model in explainer.trees[:3]:  # the three classes' trees of the first iteration
        for row, got in zip(rows, shap_values(leaf_paths([model]), rows), strict=True):
            np.testing.assert_allclose(got, _brute_force(model, row), rtol=0, atol=1e-12)


def test_slices_of_leaves_and_rows_give_the_same_attributions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forest = ensemble.RandomForestClassifier(5, random_state=0).fit(IRIS_X, IRIS_Y)
    explainer = sklearn_tree_explainer(forest)
    assert explainer is not None
    rows = IRIS_X[::5].astype(np.float64)
    whole = shap_values(explainer.paths, rows)
    monkeypatch.setattr(treeshap, "MAX_ELEMENTS", 64)  # a few leaves and rows per slice
    np.testing.assert_allclose(shap_values(explainer.paths, rows), whole, rtol=0, atol=1e-12)


def test_a_single_leaf_tree_attributes_nothing() -> None:
    fitted = tree.DecisionTreeRegressor().fit(IRIS_X, np.ones(len(IRIS_X)))
    explainer = sklearn_tree_explainer(fitted)
    assert explainer is not None
    result = explainer.explain(None, {"x": IRIS_X[:3]}, {})  # type: ignore[arg-type]  # unused
    assert not result["attributions"].any()
    np.testing.assert_allclose(result["base_values"], 1.0)


# -- every family, through the sklearn runtime: attributions + base = the raw output -----------


def _proba(est: Any, x: np.ndarray) -> np.ndarray:
    return est.predict_proba(x)


def _decision(est: Any, x: np.ndarray) -> np.ndarray:
    return est.decision_function(x)


def _predict(est: Any, x: np.ndarray) -> np.ndarray:
    return est.predict(x)


def _raw(est: Any, x: np.ndarray) -> np.ndarray:
    return est._raw_predict(x)


BINARY = (IRIS_Y == 2).astype(int)
FAMILIES = {
    "DecisionTreeClassifier": (tree.DecisionTreeClassifier(random_state=0), "iris", _proba),
    "DecisionTreeRegressor": (tree.DecisionTreeRegressor(max_depth=8, random_state=0),
                              "diabetes", _predict),
    "RandomForestClassifier": (ensemble.RandomForestClassifier(10, random_state=0), "iris",
                               _proba),
    "RandomForestRegressor": (ensemble.RandomForestRegressor(5, max_depth=6, random_state=0),
                              "diabetes", _predict),
    "ExtraTreesClassifier": (ensemble.ExtraTreesClassifier(10, random_state=0), "iris", _proba),
    "ExtraTreesRegressor": (ensemble.ExtraTreesRegressor(5, max_depth=6, random_state=0),
                            "diabetes", _predict),
    "GradientBoostingClassifier": (ensemble.GradientBoostingClassifier(
        n_estimators=15, random_state=0), "iris", _decision),
    "GradientBoostingClassifier-binary": (ensemble.GradientBoostingClassifier(
        n_estimators=15, random_state=0), "binary", _decision),
    "GradientBoostingRegressor": (ensemble.GradientBoostingRegressor(
        n_estimators=15, loss="huber", random_state=0), "diabetes", _predict),
    "HistGradientBoostingClassifier": (ensemble.HistGradientBoostingClassifier(
        max_iter=15, random_state=0), "iris", _decision),
    "HistGradientBoostingClassifier-binary": (ensemble.HistGradientBoostingClassifier(
        max_iter=15, random_state=0), "binary", _decision),
    "HistGradientBoostingRegressor": (ensemble.HistGradientBoostingRegressor(
        max_iter=15, random_state=0), "diabetes", _predict),
    "HistGradientBoostingRegressor-poisson": (ensemble.HistGradientBoostingRegressor(
        max_iter=15, loss="poisson", random_state=0), "diabetes", _raw),
}  # fmt: skip
DATA = {"iris": (IRIS_X, IRIS_Y), "binary": (IRIS_X, BINARY), "diabetes": (DIABETES_X, DIABETES_Y)}
OUTPUTS = {_proba: "probabilities", _decision: "decision_function", _predict: "predictions"}


def _served(estimator: Any, folder: Path) -> Any:
    joblib.dump(estimator, folder / "model.joblib")
    return instantiate(ModelSettings(name="t", runtime="sklearn", uri=folder / "model.joblib"))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_tree_family_adds_up_to_its_raw_output(family: str, tmp_path: Path) -> None:
    estimator, data, raw_output = FAMILIES[family]
    x, y = DATA[data]
    estimator.fit(x, y)
    model = _served(estimator, tmp_path)  # no explain.background anywhere
    explainer = require_explainer(model)
    assert explainer.method == "tree_shap"
    assert explainer.explained_output == OUTPUTS.get(raw_output, "margin")
    rows = x[::7]
    result = explainer.explain(model, {"input-0": rows}, {})
    attributions, base = result["attributions"], result["base_values"]
    raw = np.asarray(raw_output(estimator, rows), dtype=np.float64).reshape(len(rows), -1)
    assert attributions.shape == (len(rows), raw.shape[1], x.shape[1])
    assert [spec.shape for spec in explainer.outputs()] == [
        (-1, raw.shape[1], x.shape[1]),
        (-1, raw.shape[1]),
    ]
    np.testing.assert_allclose(attributions.sum(axis=2) + base, raw, rtol=0, atol=RAW_TOLERANCE)
    assert np.abs(attributions).sum() > 0


@pytest.mark.parametrize(
    "estimator",
    [
        ensemble.RandomForestRegressor(3, random_state=0),  # fitted on two targets below
        ensemble.GradientBoostingRegressor(init=linear_model.LinearRegression()),
        make_pipeline(tree.DecisionTreeClassifier()),
    ],
    ids=["multi-output", "init-estimator", "pipeline"],
)
def test_what_tree_shap_cannot_explain_falls_back(estimator: Any) -> None:
    two_targets = np.stack([DIABETES_Y, -DIABETES_Y], axis=1)
    target = two_targets if isinstance(estimator, ensemble.RandomForestRegressor) else IRIS_Y
    x = DIABETES_X if target is two_targets else IRIS_X
    if isinstance(estimator, ensemble.GradientBoostingRegressor):
        x, target = DIABETES_X, DIABETES_Y
    assert sklearn_tree_explainer(estimator.fit(x, target)) is None


def test_categorical_histogram_splits_fall_back() -> None:
    x = np.column_stack([IRIS_X[:, :3], (IRIS_X[:, 3] * 2).round()])
    fitted = ensemble.HistGradientBoostingClassifier(max_iter=3, categorical_features=[3])
    assert sklearn_tree_explainer(fitted.fit(x, IRIS_Y)) is None


def test_a_linear_model_without_background_says_it_needs_one(tmp_path: Path) -> None:
    model = _served(linear_model.LogisticRegression(max_iter=500).fit(IRIS_X, IRIS_Y), tmp_path)
    with pytest.raises(NotImplementedByModel, match=r"linear model \(LogisticRegression\)") as e:
        require_explainer(model)
    assert "explain.background" in str(e.value) and "tree models need none" in str(e.value)
