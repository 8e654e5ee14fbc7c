"""The catboost and mlflow runtimes, driven directly: models trained here from iris."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.errors import InvalidInput
from app.explain import require_explainer
from app.manager import instantiate
from app.runtimes.catboost import CatBoostModel
from app.runtimes.mlflow import MLflowModel
from app.types import TensorSpec
from config.settings import ModelSettings
from tests.repositories import FEATURES, build_mlflow, iris_rows, train_catboost


@pytest.fixture(scope="module")
def catboost_model(tmp_path_factory: pytest.TempPathFactory) -> CatBoostModel:
    path = train_catboost(tmp_path_factory.mktemp("catboost") / "iris.cbm")
    model = instantiate(ModelSettings(name="iris-catboost", runtime="catboost", uri=path))
    assert isinstance(model, CatBoostModel)
    return model


def test_catboost_answers_like_the_other_classifiers(catboost_model: CatBoostModel) -> None:
    assert catboost_model.inputs == [TensorSpec("input-0", "FP32", (-1, 4))]
    assert [s.name for s in catboost_model.outputs] == ["predictions", "probabilities"]
    both = catboost_model.predict_outputs(
        {"input-0": iris_rows()}, {}, ["predictions", "probabilities"]
    )
    assert both["predictions"].tolist() == [1, 1] and both["predictions"].dtype == np.int64
    np.testing.assert_allclose(both["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    assert catboost_model.predict({"x": iris_rows()[:0]}, {})["predictions"].shape == (0,)


def test_catboost_tree_shap_adds_up_to_the_raw_score(catboost_model: CatBoostModel) -> None:
    explainer = require_explainer(catboost_model)
    assert (explainer.method, explainer.explained_output) == ("tree_shap", "margin")
    rows = iris_rows()
    found = explainer.explain(catboost_model, {"input-0": rows}, {})
    attributions, base = found["attributions"], found["base_values"]
    assert attributions.shape == (2, 3, 4) and base.shape == (2, 3)
    raw = catboost_model.booster.predict(rows, prediction_type="RawFormulaVal")
    np.testing.assert_allclose(attributions.sum(axis=2) + base, raw, rtol=0, atol=1e-6)


def test_a_catboost_regressor_has_one_target(tmp_path: Path) -> None:
    import catboost

    rows = iris_rows()
    regressor = catboost.CatBoostRegressor(
        iterations=10, thread_count=1, verbose=False, allow_writing_files=False
    )
    regressor.fit(np.tile(rows, (5, 1)), np.arange(10, dtype=np.float64))
    regressor.save_model(str(tmp_path / "r.cbm"))
    model = instantiate(ModelSettings(name="r", runtime="catboost", uri=tmp_path / "r.cbm"))
    assert [(s.name, s.datatype) for s in model.outputs] == [("predictions", "FP32")]
    found = require_explainer(model).explain(model, {"input-0": rows}, {})
    predicted = model.predict({"input-0": rows}, {})["predictions"]
    np.testing.assert_allclose(
        found["attributions"].sum(axis=2)[:, 0] + found["base_values"][:, 0], predicted, atol=1e-4
    )


@pytest.fixture(scope="module")
def mlflow_model(tmp_path_factory: pytest.TempPathFactory) -> MLflowModel:
    root = build_mlflow(tmp_path_factory.mktemp("mlflow"), broken=False)
    model = instantiate(ModelSettings(name="m", runtime="mlflow", uri=root / "iris-mlflow"))
    assert isinstance(model, MLflowModel)
    return model


def test_an_mlflow_column_signature_is_one_input_per_column(mlflow_model: MLflowModel) -> None:
    assert mlflow_model.inputs == [TensorSpec(name, "FP32", (-1,)) for name in FEATURES]
    assert mlflow_model.outputs == [TensorSpec("predictions", "INT64", (-1,))]
    assert mlflow_model.features == FEATURES
    columns = {name: iris_rows()[:, i] for i, name in enumerate(FEATURES)}
    assert mlflow_model.predict(columns, {})["predictions"].tolist() == [1, 1]


def test_an_mlflow_tensor_signature_keeps_shape_and_dtype(tmp_path: Path) -> None:
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.sklearn
        from mlflow.models import infer_signature

    features, labels = load_iris(return_X_y=True)
    tree = DecisionTreeClassifier(random_state=0).fit(features, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(
            tree,
            str(tmp_path / "tree"),
            signature=infer_signature(features, tree.predict(features)),
            serialization_format="cloudpickle",
        )
    model = instantiate(ModelSettings(name="t", runtime="mlflow", uri=tmp_path / "tree"))
    assert model.inputs == [TensorSpec("input-0", "FP64", (-1, 4))]
    assert model.outputs == [TensorSpec("predictions", "INT64", (-1,))]
    rows = iris_rows().astype(np.float64)
    assert model.predict({"input-0": rows}, {})["predictions"].tolist() == [1, 1]


def test_an_mlflow_model_that_does_not_load_names_the_folder(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: {python_function: {loader_module: nowhere}}\n")
    with pytest.raises(Exception, match="nowhere"):
        instantiate(ModelSettings(name="m", runtime="mlflow", uri=tmp_path))


def test_columns_sent_with_different_row_counts_are_refused(mlflow_model: MLflowModel) -> None:
    columns = {name: iris_rows()[:, i] for i, name in enumerate(FEATURES)}
    columns["petal_width"] = columns["petal_width"][:1]
    with pytest.raises(InvalidInput, match="input 'petal_width' has 1 rows"):
        mlflow_model.predict(columns, {})
