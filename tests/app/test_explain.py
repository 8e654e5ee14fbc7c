"""Explainers, unit by unit: each attribution checked for what its method promises.

TreeSHAP and linear attributions plus their base values must add up to the model's raw output
(margin or log-odds) within 1e-5; model-agnostic ones must add up to the explained output and
rank a feature the test makes decisive first.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

import app.explain.agnostic as agnostic
from app.errors import InvalidInput, NotImplementedByModel
from app.explain import explainer_for, require_explainer
from app.explain.background import MAX_ROWS, BackgroundError, load_background
from app.manager import instantiate
from app.model import Model
from config.settings import ExplainSettings, ModelSettings
from tests.conftest import MODELS

KSERVE_ROWS = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]], dtype=np.float32)
IRIS_BACKGROUND = MODELS / "iris_background.npy"
DIGITS_BACKGROUND = MODELS / "digits_background.npy"
RAW_TOLERANCE = 1e-5


def _model(
    runtime: str,
    uri: Path | None = None,
    *,
    background: Path | None = None,
    class_path: str | None = None,
    samples: int = 256,
    time_limit_ms: float = 5000.0,
    parameters: dict[str, Any] | None = None,
) -> Any:  # the runtime class under test, with its own attributes
    return instantiate(
        ModelSettings(
            name=f"test-{runtime}",
            runtime=runtime,
            uri=uri,
            class_path=class_path,
            parameters=parameters or {},
            explain=ExplainSettings(background, samples, time_limit_ms),
        )
    )


def _explain(model: Model, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    result = require_explainer(model).explain(model, {"input-0": rows}, {})
    return np.asarray(result["attributions"]), np.asarray(result["base_values"])


def _iris_rows() -> np.ndarray:
    """Every class of iris: the background sample and the KServe documentation rows."""
    return np.concatenate([np.load(IRIS_BACKGROUND), KSERVE_ROWS])


# -- exact methods: attributions + base value = the raw output --------------------------------


def test_xgboost_tree_shap_adds_up_to_the_margin() -> None:
    model = _model("xgboost", MODELS / "iris.xgboost.json")
    rows = _iris_rows()
    attributions, base = _explain(model, rows)
    assert attributions.shape == (len(rows), 3, 4) and base.shape == (len(rows), 3)
    margin = model.booster.inplace_predict(rows, predict_type="margin", strict_shape=True)
    np.testing.assert_allclose(attributions.sum(axis=2) + base, margin, rtol=0, atol=RAW_TOLERANCE)
    assert require_explainer(model).method == "tree_shap"


def test_lightgbm_tree_shap_adds_up_to_the_raw_score() -> None:
    model = _model("lightgbm", MODELS / "iris.lightgbm.txt")
    rows = _iris_rows()
    attributions, base = _explain(model, rows)
    assert attributions.shape == (len(rows), 3, 4)
    raw = np.asarray(model.booster.predict(rows, raw_score=True))
    np.testing.assert_allclose(attributions.sum(axis=2) + base, raw, rtol=0, atol=RAW_TOLERANCE)


def test_linear_attributions_add_up_to_the_log_odds() -> None:
    model = _model("sklearn", MODELS / "iris.joblib", background=IRIS_BACKGROUND)
    explainer = require_explainer(model)
    assert (explainer.method, explainer.explained_output) == ("linear", "decision_function")
    rows = _iris_rows()
    attributions, base = _explain(model, rows)
    log_odds = model.estimator.decision_function(rows)
    np.testing.assert_allclose(attributions.sum(axis=2) + base, log_odds, atol=RAW_TOLERANCE)
    # The base value is the log-odds of the background mean, as the method promises.
    mean = np.load(IRIS_BACKGROUND).astype(np.float64).mean(axis=0, keepdims=True)
    np.testing.assert_allclose(base[0], model.estimator.decision_function(mean)[0], atol=1e-5)


def test_digits_own_explain_wins_and_adds_up_to_the_log_odds() -> None:
    model = _model("python", MODELS / "digits.joblib", background=DIGITS_BACKGROUND,
                   class_path="examples.digits:DigitsModel")  # fmt: skip
    explainer = require_explainer(model)
    assert explainer.method == "model" and explainer.explained_output == "decision_function"
    assert [spec.name for spec in explainer.outputs()] == ["attributions", "base_values"]
    rows = np.load(DIGITS_BACKGROUND)[:5]
    attributions, base = _explain(model, rows)
    assert attributions.shape == (5, 10, 64)
    log_odds = model.estimator.decision_function(rows)
    np.testing.assert_allclose(attributions.sum(axis=2) + base, log_odds, atol=RAW_TOLERANCE)


def test_a_linear_regressor_is_explained_exactly(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    features = np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)
    target = features @ np.array([2.0, -1.0, 0.5], dtype=np.float32) + 3.0
    joblib.dump(LinearRegression().fit(features, target), tmp_path / "linear.joblib")
    np.save(tmp_path / "background.npy", features[:20])
    model = _model("sklearn", tmp_path / "linear.joblib", background=tmp_path / "background.npy")
    assert require_explainer(model).explained_output == "predictions"
    attributions, base = _explain(model, features)
    assert attributions.shape == (40, 1, 3)
    prediction = model.estimator.predict(features)
    np.testing.assert_allclose(attributions.sum(axis=2)[:, 0] + base[:, 0], prediction, atol=1e-5)


def test_a_glm_with_coefficients_but_a_link_is_not_taken_for_linear(tmp_path: Path) -> None:
    from sklearn.linear_model import PoissonRegressor

    features = np.random.default_rng(2).normal(size=(40, 3)).astype(np.float32)
    target = np.exp(features @ np.array([0.8, -0.3, 0.1]))
    joblib.dump(PoissonRegressor().fit(features, target), tmp_path / "poisson.joblib")
    np.save(tmp_path / "background.npy", features[:20])
    model = _model("sklearn", tmp_path / "poisson.joblib", background=tmp_path / "background.npy")
    assert require_explainer(model).method == "shapley_exact"


# -- model-agnostic Shapley values -----------------------------------------------------------


def test_a_single_feature_takes_the_whole_difference(tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeRegressor

    features = np.linspace(0, 1, 20, dtype=np.float32).reshape(-1, 1)
    tree = DecisionTreeRegressor(max_depth=2).fit(features, features[:, 0] ** 2)
    joblib.dump(tree, tmp_path / "tree.joblib")
    np.save(tmp_path / "background.npy", features)
    model = _model("sklearn", tmp_path / "tree.joblib", background=tmp_path / "background.npy")
    attributions, base = _explain(model, features[[0, -1]])
    assert attributions.shape == (2, 1, 1)
    np.testing.assert_allclose(base[:, 0], tree.predict(features).mean(), rtol=1e-6)
    expected = tree.predict(features[[0, -1]]) - base[:, 0]
    np.testing.assert_allclose(attributions[:, 0, 0], expected, atol=1e-6)


@pytest.fixture(scope="module")
def forest_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris version 2's forest inside a Pipeline: no tree explainer, so model-agnostic."""
    from sklearn.pipeline import make_pipeline

    path = tmp_path_factory.mktemp("pipeline") / "forest.joblib"
    joblib.dump(make_pipeline(joblib.load(MODELS / "iris_v2.joblib")), path)
    return path


@pytest.mark.parametrize(("runtime", "uri"), [("sklearn", None), ("onnx", "iris.onnx")], ids=str)
@pytest.mark.parametrize("feature", [2, 3], ids=["petal_length", "petal_width"])
def test_agnostic_attributions_rank_the_decisive_feature_first(
    runtime: str, uri: str | None, feature: int, forest_pipeline: Path
) -> None:
    """The background's median flower with one petal measure moved to its largest value: that
    feature alone turns versicolor into virginica, so it must carry the largest attribution."""
    path = MODELS / uri if uri else forest_pipeline
    model = _model(runtime, path, background=IRIS_BACKGROUND)
    explainer = require_explainer(model)
    assert (explainer.method, explainer.explained_output) == ("shapley_exact", "probabilities")
    background = np.load(IRIS_BACKGROUND)
    median = np.median(background, axis=0)
    moved = median.copy()
    moved[feature] = background[:, feature].max()
    rows = np.stack([median, moved]).astype(np.float32)
    probabilities = model.predict_outputs({"input-0": rows}, {}, ["probabilities"])["probabilities"]
    assert probabilities.argmax(axis=1).tolist() == [1, 2]  # the test made the feature decisive
    attributions, base = _explain(model, rows)
    assert np.argmax(np.abs(attributions[1, 2])) == feature
    np.testing.assert_allclose(attributions.sum(axis=2) + base, probabilities, atol=1e-6)


@pytest.fixture(scope="module")
def decisive_background(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("explain") / "decisive.npy"
    np.save(path, np.random.default_rng(3).normal(size=(30, 12)).astype(np.float32))
    return path


def _decisive(background: Path, **options: Any) -> Model:
    return _model(
        "python", background=background, class_path="tests.models:DecisiveModel", **options
    )


def _decisive_rows(feature: int = 7) -> np.ndarray:
    rows = np.random.default_rng(4).uniform(-1, 1, size=(3, 12))
    rows[:, feature] = [2.5, -2.5, 1.5]
    return rows.astype(np.float32)


@pytest.mark.parametrize(("samples", "method"), [(256, "permutation"), (4096, "exact")])
def test_sampled_and_exact_shapley_rank_the_decisive_feature_first(
    decisive_background: Path, samples: int, method: str
) -> None:
    model = _decisive(decisive_background, samples=samples)
    assert require_explainer(model).method == f"shapley_{method}"
    rows = _decisive_rows()
    attributions, base = _explain(model, rows)
    assert attributions.shape == (3, 2, 12)
    assert (np.abs(attributions).argmax(axis=2) == 7).all()
    probabilities = model.predict_outputs({"x": rows}, {}, ["probabilities"])["probabilities"]
    # Every permutation telescopes, so sampling keeps the sum exact too.
    np.testing.assert_allclose(attributions.sum(axis=2) + base, probabilities, atol=1e-6)


def test_exact_shapley_values_are_the_textbook_formula(forest_pipeline: Path) -> None:
    model = _model("sklearn", forest_pipeline, background=IRIS_BACKGROUND)
    background = np.load(IRIS_BACKGROUND).astype(np.float64)
    row = KSERVE_ROWS[1].astype(np.float64)

    def value(coalition: tuple[int, ...]) -> np.ndarray:
        mixed = background.copy()
        mixed[:, list(coalition)] = row[list(coalition)]
        inputs = {"input-0": mixed.astype(np.float32)}
        probabilities = model.predict_outputs(inputs, {}, ["probabilities"])["probabilities"]
        return probabilities.astype(np.float64).mean(axis=0)

    expected = np.zeros((3, 4))
    for feature in range(4):
        others = [f for f in range(4) if f != feature]
        for size in range(4):
            weight = math.factorial(size) * math.factorial(3 - size) / math.factorial(4)
            for coalition in itertools.combinations(others, size):
                gain = value((*coalition, feature)) - value(coalition)
                expected[:, feature] += weight * gain
    attributions, _ = _explain(model, row[np.newaxis].astype(np.float32))
    np.testing.assert_allclose(attributions[0], expected, atol=1e-12)


def test_permutation_sampling_converges_on_the_exact_values(
    decisive_background: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _decisive_rows()[:1]
    exact, _ = _explain(_decisive(decisive_background, samples=4096), rows)
    monkeypatch.setattr(agnostic, "EXACT_MAX_FEATURES", 4)
    sampled, _ = _explain(_decisive(decisive_background, samples=6000), rows)
    assert np.abs(sampled - exact).max() < 0.02


def test_the_same_rows_get_the_same_attributions(decisive_background: Path) -> None:
    model = _decisive(decisive_background)
    first, _ = _explain(model, _decisive_rows())
    again, _ = _explain(model, _decisive_rows())
    assert np.array_equal(first, again)


def test_over_the_budget_is_refused_before_the_model_runs(decisive_background: Path) -> None:
    model = _decisive(decisive_background)
    explainer = require_explainer(model)
    most = agnostic.MAX_MODEL_ROWS // (explainer.coalitions * 30)
    rows = np.zeros((most + 1, 12), dtype=np.float32)
    with pytest.raises(InvalidInput, match=rf"budget of {agnostic.MAX_MODEL_ROWS}.*at most {most}"):
        explainer.explain(model, {"x": rows}, {})


def test_past_the_time_limit_stops_with_a_clear_error(decisive_background: Path) -> None:
    model = _decisive(decisive_background, time_limit_ms=5, parameters={"delay_ms": 10})
    with pytest.raises(InvalidInput, match=r"explain.time_limit_ms \(5 ms\)"):
        _explain(model, _decisive_rows())


# -- what cannot be explained, and background files --------------------------------------------


@pytest.mark.parametrize(
    ("class_path", "message"),
    [
        ("examples.echo:EchoModel", "declares no inputs"),
        ("examples.tensor_sum:SumModel", "set `explain.background`"),
    ],
)
def test_a_model_without_a_way_to_explain_says_what_to_configure(
    class_path: str, message: str
) -> None:
    model = _model("python", class_path=class_path)
    assert explainer_for(model) is None
    with pytest.raises(NotImplementedByModel, match=message):
        require_explainer(model)


def test_a_broken_background_file_is_named_in_the_501(tmp_path: Path) -> None:
    np.save(tmp_path / "three.npy", np.zeros((5, 3)))
    model = _model("sklearn", MODELS / "iris.joblib", background=tmp_path / "three.npy")
    with pytest.raises(NotImplementedByModel, match=r"three\.npy' has 3 columns; .* 4 features"):
        require_explainer(model)


def test_background_from_csv_with_a_header(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n1,2\n3,4.5\n", encoding="utf-8")
    assert load_background(path, 2).tolist() == [[1.0, 2.0], [3.0, 4.5]]
    (tmp_path / "plain.csv").write_text("1,2\n3,4\n", encoding="utf-8")
    assert load_background(tmp_path / "plain.csv", 2).shape == (2, 2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read"),
        (np.array([[1.0, np.nan]]), "NaN or infinite"),
        (np.array([["a", "b"]]), "not numbers"),
        (np.zeros((0, 2)), "must hold rows"),
    ],
)
def test_unusable_background_files_are_refused(
    tmp_path: Path, content: np.ndarray | None, message: str
) -> None:
    path = tmp_path / "background.npy"
    if content is not None:
        np.save(path, content)
    with pytest.raises(BackgroundError, match=message):
        load_background(path, 2)


def test_a_large_background_is_thinned_evenly(tmp_path: Path) -> None:
    np.save(tmp_path / "big.npy", np.arange(1000.0).reshape(500, 2))
    rows = load_background(tmp_path / "big.npy", 2)
    assert rows.shape == (MAX_ROWS, 2)
    assert rows[0, 0] == 0.0 and rows[-1, 0] == 998.0
