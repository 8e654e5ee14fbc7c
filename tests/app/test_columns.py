"""Tabular models with inputs declared one per feature: each runtime stacks them in order."""

from __future__ import annotations

import numpy as np
import pytest
from flask.testing import FlaskClient

from app.dataplane import DataPlane
from app.errors import InvalidInput
from app.manager import ModelManager
from app.runtimes.columns import is_columnar, stack_columns
from app.types import InferRequest, Tensor, TensorSpec
from config.settings import ModelSettings, Settings
from tests.conftest import MODELS

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
COLUMNS = tuple(TensorSpec(name, "FP32", (-1,)) for name in FEATURES)
ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.0, 2.7, 5.1, 1.6], [6.7, 3.0, 5.2, 2.3]], np.float32)
FILES = {
    "sklearn": "iris.joblib",
    "xgboost": "iris.xgboost.json",
    "lightgbm": "iris.lightgbm.txt",
    "onnx": "iris.onnx",
}


@pytest.fixture(scope="module")
def plane() -> DataPlane:
    """Each runtime twice over one file: as it declares itself, and with per-feature inputs."""
    models = []
    for runtime, file in FILES.items():
        uri = MODELS / file
        models.append(ModelSettings(name=f"{runtime}-matrix", runtime=runtime, uri=uri))
        models.append(ModelSettings(name=runtime, runtime=runtime, uri=uri, inputs=COLUMNS))
    manager = ModelManager(Settings(models=tuple(models)))
    manager.load_all()
    return DataPlane(manager, "test", "0")


def _request(model: str, tensors: dict[str, np.ndarray], datatype: str = "FP32") -> InferRequest:
    inputs = [Tensor(name, datatype, data) for name, data in tensors.items()]
    return InferRequest(model, None, "r", inputs)


def _predictions(plane: DataPlane, request: InferRequest) -> list[int]:
    (output,) = [o for o in plane.infer(request).outputs if o.name == "predictions"]
    return output.data.tolist()


@pytest.mark.parametrize("runtime", list(FILES))
def test_columns_answer_what_the_matrix_answers(plane: DataPlane, runtime: str) -> None:
    matrix = _predictions(plane, _request(f"{runtime}-matrix", {"input-0": ROWS}))
    columns = {name: np.ascontiguousarray(ROWS[:, i]) for i, name in enumerate(FEATURES)}
    shuffled = dict(reversed(list(columns.items())))
    assert len(matrix) == 3
    assert _predictions(plane, _request(runtime, columns)) == matrix
    assert _predictions(plane, _request(runtime, shuffled)) == matrix
    assert [spec.name for spec in plane.model_metadata(runtime).inputs] == list(FEATURES)


@pytest.mark.parametrize("runtime", list(FILES))
def test_bad_columns_are_invalid_input(plane: DataPlane, runtime: str) -> None:
    columns = {name: np.ascontiguousarray(ROWS[:, i]) for i, name in enumerate(FEATURES)}
    with pytest.raises(InvalidInput, match="input 'petal_width' is missing"):
        plane.infer(_request(runtime, {k: v for k, v in columns.items() if k != "petal_width"}))
    with pytest.raises(InvalidInput, match="'sepal_width' has 1 rows, 'sepal_length' has 3"):
        plane.infer(_request(runtime, {**columns, "sepal_width": columns["sepal_width"][:1]}))
    with pytest.raises(InvalidInput, match="shape"):  # a matrix where a column is declared
        plane.infer(_request(runtime, {**columns, "sepal_width": ROWS}))
    with pytest.raises(InvalidInput, match="expected FP32, got FP64"):
        plane.infer(
            _request(runtime, {name: c.astype(np.float64) for name, c in columns.items()}, "FP64")
        )


def test_stack_columns_keeps_the_declared_order_and_widths() -> None:
    specs = [TensorSpec("b", "FP32", (-1,)), TensorSpec("a", "FP32", (-1, 2))]
    stacked = stack_columns("m", specs, {"a": np.array([[1, 2], [3, 4]]), "b": np.array([9, 8])})
    assert stacked.tolist() == [[9, 1, 2], [8, 3, 4]]
    assert is_columnar(specs) and is_columnar(specs[:1])
    assert not is_columnar([TensorSpec("input-0", "FP32", (-1, 4))])


def test_rest_tensors_infer_dict_and_metadata(client: FlaskClient) -> None:
    """v2 JSON tensors per feature and infer_dict rows keyed by input name (Flask client)."""
    metadata = client.get("/v2/models/iris-columns").json
    assert metadata["inputs"] == [
        {"name": name, "datatype": "FP32", "shape": [-1]} for name in FEATURES
    ]
    tensors = [
        {"name": name, "datatype": "FP32", "shape": [3], "data": ROWS[:, i].tolist()}
        for i, name in enumerate(FEATURES)
    ]
    matrix = {"name": "input-0", "datatype": "FP32", "shape": [3, 4], "data": ROWS.tolist()}
    expected = client.post("/v2/models/iris/versions/1/infer", json={"inputs": [matrix]})
    expected = expected.json["outputs"][0]["data"]  # the same file, taking one matrix
    answer = client.post("/v2/models/iris-columns/infer", json={"inputs": tensors})
    assert answer.status_code == 200, answer.json
    assert answer.json["outputs"][0]["data"] == expected
    records = [dict(zip(FEATURES, row, strict=True)) for row in ROWS.tolist()]
    by_dict = client.post("/v2/models/iris-columns/infer_dict", json={"inputs": records})
    assert by_dict.status_code == 200, by_dict.json
    assert by_dict.json["outputs"][0]["data"] == expected
    assert client.post("/v2/models/iris/infer_dict", json={"inputs": records}).status_code == 200
    short = client.post("/v2/models/iris-columns/infer", json={"inputs": tensors[:3]})
    assert short.status_code == 400 and "'petal_width' is missing" in short.json["error"]
