"""The built-in runtimes and example user models, driven directly (no server in between)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from app.errors import InvalidInput
from app.model import Model
from app.types import TensorSpec
from config.settings import ModelSettings
from examples import train

M = TypeVar("M", bound=Model)
KSERVE_ROWS = train.KSERVE_ROWS
CLASSIFIER_OUTPUTS = [
    TensorSpec("predictions", "INT64", (-1,)),
    TensorSpec("probabilities", "FP32", (-1, 3)),
]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train the example models once per session, so the tests need no checked-in binaries."""
    out = tmp_path_factory.mktemp("models")
    assert train.main(["--out", str(out)]) == 0
    return out


def _loaded(cls: type[M], uri: Path | None, runtime: str = "python") -> M:
    model = cls(ModelSettings(name="iris", runtime=runtime, uri=uri))
    model.load()
    return model


def _check_classifier(model: Model, input_name: str = "input-0") -> None:
    """The shared contract: labels [1, 1], rows of probabilities that sum to one."""
    both = model.predict_outputs({input_name: KSERVE_ROWS}, {}, ["predictions", "probabilities"])
    assert both["predictions"].dtype == np.int64
    assert both["predictions"].tolist() == [1, 1]
    assert both["probabilities"].dtype == np.float32
    assert both["probabilities"].shape == (2, 3)
    np.testing.assert_allclose(both["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    only_labels = model.predict_outputs({input_name: KSERVE_ROWS}, {}, ["predictions"])
    assert list(only_labels) == ["predictions"]
    only_probabilities = model.predict_outputs({input_name: KSERVE_ROWS}, {}, ["probabilities"])
    assert list(only_probabilities) == ["probabilities"]
    np.testing.assert_array_equal(only_probabilities["probabilities"], both["probabilities"])


def test_train_writes_every_file(models_dir: Path) -> None:
    for name in train.FILES:
        assert (models_dir / name).stat().st_size > 0, name
    for name, width in (("iris_background.npy", 4), ("digits_background.npy", 64)):
        background = np.load(models_dir / name)
        assert background.shape == (50, width)
        assert background.dtype == np.float32


@pytest.mark.parametrize("file_name", ["iris.joblib", "iris_v2.joblib"])
def test_sklearn_iris_versions(models_dir: Path, file_name: str) -> None:
    from app.runtimes.sklearn import SKLearnModel

    model = _loaded(SKLearnModel, models_dir / file_name, "sklearn")
    assert model.inputs == [TensorSpec("input-0", "FP32", (-1, 4))]
    assert model.outputs == CLASSIFIER_OUTPUTS
    _check_classifier(model)


def test_xgboost(models_dir: Path) -> None:
    from app.runtimes.xgboost import XGBoostModel

    model = _loaded(XGBoostModel, models_dir / "iris.xgboost.json", "xgboost")
    assert model.platform == "xgboost_json"
    assert model.inputs == [TensorSpec("input-0", "FP32", (-1, 4))]
    assert model.outputs == CLASSIFIER_OUTPUTS
    assert model.default_outputs == ["predictions"]
    assert model.features is None
    _check_classifier(model)
    assert model.predict({"input-0": KSERVE_ROWS}, {})["predictions"].tolist() == [1, 1]


def test_xgboost_softmax_still_answers_probabilities(tmp_path: Path) -> None:
    """multi:softmax predicts bare class indices; the runtime rebuilds probabilities."""
    import xgboost
    from sklearn.datasets import load_iris

    from app.runtimes.xgboost import XGBoostModel

    features, labels = load_iris(return_X_y=True)
    matrix = xgboost.DMatrix(features.astype(np.float32), label=labels, nthread=1)
    params = {"objective": "multi:softmax", "num_class": 3, "max_depth": 3, "nthread": 1}
    path = tmp_path / "softmax.json"
    xgboost.train(params, matrix, num_boost_round=10).save_model(str(path))
    _check_classifier(_loaded(XGBoostModel, path, "xgboost"))


def test_xgboost_binary_and_regression(tmp_path: Path) -> None:
    import xgboost

    from app.runtimes.xgboost import XGBoostModel

    rows = np.array([[0.0, 0.0], [1.0, 1.0], [0.1, 0.0], [0.9, 1.0]], dtype=np.float32)
    labels = np.array([0, 1, 0, 1], dtype=np.float32)
    matrix = xgboost.DMatrix(rows, label=labels, feature_names=["a", "b"], nthread=1)
    for objective in ("binary:logistic", "reg:squarederror"):
        params = {"objective": objective, "nthread": 1, "min_child_weight": 0, "seed": 0}
        booster = xgboost.train(params, matrix, num_boost_round=5)
        path = tmp_path / f"{objective.replace(':', '_')}.ubj"
        booster.save_model(str(path))
        model = _loaded(XGBoostModel, path, "xgboost")
        assert model.features == ["a", "b"]
        result = model.predict_outputs({"x": rows}, {}, ["predictions", "probabilities"])
        if objective.startswith("binary"):
            assert model.outputs[1] == TensorSpec("probabilities", "FP32", (-1, 2))
            assert result["predictions"].tolist() == [0, 1, 0, 1]
            np.testing.assert_allclose(result["probabilities"].sum(axis=1), 1.0, atol=1e-5)
        else:
            assert model.outputs == [TensorSpec("predictions", "FP32", (-1,))]
            assert list(result) == ["predictions"]
            assert result["predictions"].dtype == np.float32
            assert result["predictions"].shape == (4,)


def test_lightgbm(models_dir: Path) -> None:
    from app.runtimes.lightgbm import LightGBMModel

    model = _loaded(LightGBMModel, models_dir / "iris.lightgbm.txt", "lightgbm")
    assert model.platform == "lightgbm_text"
    assert model.inputs == [TensorSpec("input-0", "FP32", (-1, 4))]
    assert model.outputs == CLASSIFIER_OUTPUTS
    assert model.default_outputs == ["predictions"]
    assert model.features is None  # Column_0..3 are LightGBM's invention, not the model's
    _check_classifier(model)


def test_lightgbm_regression_keeps_real_feature_names(tmp_path: Path) -> None:
    import lightgbm

    from app.runtimes.lightgbm import LightGBMModel

    rows = np.arange(40, dtype=np.float64).reshape(20, 2)
    params = {"objective": "regression", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 2}
    dataset = lightgbm.Dataset(rows, label=rows[:, 0], feature_name=["width", "height"])
    path = tmp_path / "regression.txt"
    lightgbm.train(params, dataset, num_boost_round=3).save_model(str(path))
    model = _loaded(LightGBMModel, path, "lightgbm")
    assert model.features == ["width", "height"]
    assert model.outputs == [TensorSpec("predictions", "FP32", (-1,))]
    result = model.predict_outputs({"input-0": rows[:3].astype(np.float32)}, {}, ["predictions"])
    assert result["predictions"].dtype == np.float32
    assert result["predictions"].shape == (3,)


def test_onnx(models_dir: Path) -> None:
    from app.runtimes.onnx import ONNXModel

    model = _loaded(ONNXModel, models_dir / "iris.onnx", "onnx")
    assert model.platform == "onnx_onnxv1"
    assert model.inputs == [TensorSpec("input-0", "FP32", (-1, 4))]
    assert model.outputs == CLASSIFIER_OUTPUTS
    assert model.default_outputs is None
    _check_classifier(model)
    # A one-input graph takes the single array under any name, and casts it to float32.
    renamed = model.predict_outputs({"x": KSERVE_ROWS.astype(np.float64)}, {}, ["predictions"])
    assert renamed["predictions"].tolist() == [1, 1]
    assert sorted(model.predict({"input-0": KSERVE_ROWS}, {})) == ["predictions", "probabilities"]
    with pytest.raises(InvalidInput):
        model.predict_outputs({"input-0": np.zeros((2, 5), np.float32)}, {}, ["predictions"])


def test_onnx_metadata_of_other_types(tmp_path: Path) -> None:
    """Two inputs fed by name, symbolic dims, strings, and a sequence output left out."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["total"]),
            helper.make_node("Identity", ["words"], ["same_words"]),
            helper.make_node("SequenceConstruct", ["total"], ["as_sequence"]),
        ],
        "mixed",
        [
            helper.make_tensor_value_info("a", TensorProto.INT32, ["batch", 2]),
            helper.make_tensor_value_info("b", TensorProto.INT32, [None, 2]),
            helper.make_tensor_value_info("words", TensorProto.STRING, [3]),
        ],
        [
            helper.make_tensor_value_info("total", TensorProto.INT32, ["batch", 2]),
            helper.make_tensor_value_info("same_words", TensorProto.STRING, [3]),
            helper.make_tensor_sequence_value_info("as_sequence", TensorProto.INT32, None),
        ],
    )
    model_proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model_proto.ir_version = 8
    onnx.checker.check_model(model_proto)
    path = tmp_path / "mixed.onnx"
    path.write_bytes(model_proto.SerializeToString())

    from app.runtimes.onnx import ONNXModel

    model = _loaded(ONNXModel, path, "onnx")
    assert model.inputs == [
        TensorSpec("a", "INT32", (-1, 2)),
        TensorSpec("b", "INT32", (-1, 2)),
        TensorSpec("words", "BYTES", (3,)),
    ]
    assert model.outputs == [
        TensorSpec("total", "INT32", (-1, 2)),
        TensorSpec("same_words", "BYTES", (3,)),
    ]
    inputs: dict[str, np.ndarray] = {
        "a": np.array([[1, 2]], dtype=np.int64),  # cast down to the graph's int32
        "b": np.array([[10, 20]], dtype=np.int32),
        "words": np.array([b"x", b"y", "z"], dtype=object),
    }
    result = model.predict(inputs, {})
    assert sorted(result) == ["same_words", "total"]
    assert result["total"].dtype == np.int32
    assert result["total"].tolist() == [[11, 22]]
    assert result["same_words"].tolist() == ["x", "y", "z"]
    assert list(model.predict_outputs(inputs, {}, ["total", "as_sequence"])) == ["total"]
    with pytest.raises(InvalidInput, match="missing"):
        model.predict_outputs({"a": inputs["a"]}, {}, ["total"])


def test_digits(models_dir: Path) -> None:
    from examples.digits import DigitsModel

    model = _loaded(DigitsModel, models_dir / "digits.joblib")
    assert model.inputs == [TensorSpec("input-0", "FP32", (-1, 64))]
    assert model.outputs == [
        TensorSpec("predictions", "INT64", (-1,)),
        TensorSpec("probabilities", "FP32", (-1, 10)),
    ]
    assert model.default_outputs == ["predictions"]
    rows = np.load(models_dir / "digits_background.npy")[:3]
    both = model.predict({"input-0": rows}, {})
    assert both["predictions"].dtype == np.int64
    np.testing.assert_allclose(both["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    assert list(model.predict_outputs({"input-0": rows}, {}, ["predictions"])) == ["predictions"]

    from_json = json.loads(
        model.process({"input": json.dumps(rows[0].tolist()).encode()})["results.json"]
    )
    assert from_json["predictions"] == both["predictions"][:1].tolist()
    assert len(from_json["probabilities"]) == 1 and len(from_json["probabilities"][0]) == 10
    buffer = io.BytesIO()
    np.save(buffer, rows)
    from_npy = json.loads(model.process({"input": buffer.getvalue()})["results.json"])
    assert from_npy["predictions"] == both["predictions"].tolist()
    for item, message in [
        ({}, "no 'input' key"),
        ({"input": b"not json"}, "neither JSON"),
        ({"input": b"[1, 2, 3]"}, "64 numbers"),
        ({"input": b'["a"]'}, "neither JSON"),
    ]:
        with pytest.raises(ValueError, match=message):
            model.process(item)


@pytest.mark.parametrize(
    "array",
    [
        np.array([[1.5, -2.0]], dtype=np.float16),
        np.array([True, False]),
        np.arange(6, dtype=np.uint64).reshape(1, 2, 3),
        np.array([b"a", b"\x00bc"], dtype=object),
        np.array(7, dtype=np.int8),
    ],
    ids=["fp16", "bool", "uint64-3d", "bytes", "scalar"],
)
def test_echo_returns_inputs_unchanged(array: np.ndarray) -> None:
    from examples.echo import EchoModel

    model = _loaded(EchoModel, None)
    assert model.inputs == [] and model.outputs == []
    result = model.predict({"anything": array}, {})
    assert list(result) == ["anything"]
    assert result["anything"].dtype == array.dtype
    np.testing.assert_array_equal(result["anything"], array)


def test_tensor_sum() -> None:
    from examples.tensor_sum import SumModel

    model = _loaded(SumModel, None)
    assert model.inputs == [TensorSpec("input-0", "FP32", (-1, -1))]
    assert model.outputs == [TensorSpec("sum", "FP32", (-1,))]
    rows = np.full((3, 100_000), 0.1, dtype=np.float32)
    result = model.predict({"input-0": rows}, {})["sum"]
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, 10_000.0, rtol=1e-6)
