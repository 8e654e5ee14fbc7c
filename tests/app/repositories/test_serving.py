"""Repositories mounted beside `models:` and served through the app (Flask's test client):
the same answers as the local models, Triton's config answered back, broken entries listed,
and models dropped into a folder found by the index and served after a load."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from blueprints.factory import create_app
from tests.repositories import (
    FEATURES,
    KSERVE_ROWS,
    MODELS,
    build_mlflow,
    build_mlserver,
    build_triton,
    train_catboost,
)

CONFIG = """
server: {{name: repos, grpc: {{port: 0}}, omi: {{port: 0}}}}
models:
  - {{name: iris, runtime: sklearn, uri: {models}/iris.joblib}}
  - {{name: iris-onnx, runtime: onnx, uri: {models}/iris.onnx}}
  - {{name: iris-xgboost, runtime: xgboost, uri: {models}/iris.xgboost.json}}
repositories:
  - {{format: triton, path: triton}}
  - {{format: mlserver, path: mlserver}}
  - {{format: mlflow, path: mlflow}}
  - {{format: triton, path: missing-folder}}
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repositories")
    build_triton(root / "triton")
    build_mlserver(root / "mlserver")
    catboost = root / "mlserver" / "iris-catboost"
    catboost.mkdir()
    train_catboost(catboost / "model.cbm")
    (catboost / "model-settings.json").write_text(
        json.dumps({"name": "iris-catboost", "implementation": "mlserver_catboost.CatboostModel"})
    )
    build_mlflow(root / "mlflow")
    (root / "models.yaml").write_text(CONFIG.format(models=MODELS), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def app(root: Path) -> Flask:
    return create_app(root / "models.yaml", {"TESTING": True})


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def infer(client: FlaskClient, model: str, body: dict, route: str = "infer") -> dict:
    answer = client.post(f"/v2/models/{model}/{route}", json=body)
    assert answer.status_code == 200, answer.get_json()
    return {o["name"]: o["data"] for o in answer.get_json()["outputs"]}


def rows_request(outputs: list[str] | None = None) -> dict:
    body: dict = {
        "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [2, 4], "data": KSERVE_ROWS}]
    }
    if outputs:
        body["outputs"] = [{"name": name} for name in outputs]
    return body


def index(client: FlaskClient) -> dict[tuple[str, str], dict]:
    answer = client.post("/v2/repository/index", json={})
    assert answer.status_code == 200
    return {(e["name"], e.get("version", "")): e for e in answer.get_json()}


@pytest.mark.parametrize(
    ("model", "local"),
    [
        ("iris-triton", "iris-onnx"),
        ("iris-mlserver", "iris"),
        ("iris-mlserver-xgboost", "iris-xgboost"),
    ],
)
def test_repository_models_answer_as_the_local_ones(
    client: FlaskClient, model: str, local: str
) -> None:
    outputs = ["predictions", "probabilities"]
    assert infer(client, model, rows_request(outputs)) == infer(
        client, local, rows_request(outputs)
    )


def test_a_catboost_model_predicts_and_explains_with_tree_shap(client: FlaskClient) -> None:
    assert infer(client, "iris-catboost", rows_request())["predictions"] == [1, 1]
    answer = client.post("/v2/models/iris-catboost/explain", json=rows_request())
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["parameters"]["explainer"] == "tree_shap"
    shapes = {o["name"]: o["shape"] for o in body["outputs"]}
    assert shapes["attributions"] == [2, 3, 4] and shapes["base_values"] == [2, 3]


def test_both_triton_versions_serve(client: FlaskClient) -> None:
    metadata = client.get("/v2/models/iris-triton").get_json()
    assert metadata["versions"] == ["1", "2"] and metadata["platform"] == "onnx_onnxv1"
    for version in ("1", "2"):
        answer = client.post(
            f"/v2/models/iris-triton/versions/{version}/infer", json=rows_request()
        )
        assert answer.get_json()["model_version"] == version


def test_the_triton_config_is_answered_back(client: FlaskClient) -> None:
    config = client.get("/v2/models/iris-triton/config").get_json()
    assert config["name"] == "iris-triton" and config["max_batch_size"] == 8
    assert config["version_policy"] == {"latest": {"num_versions": 2}}
    assert [(i["name"], i["data_type"], i["dims"]) for i in config["input"]] == [
        ("input-0", "TYPE_FP32", [4])
    ]
    assert [o["dims"] for o in config["output"]] == [[], [3]]
    batching = config["dynamic_batching"]
    assert batching["preferred_batch_size"] == [4, 8]
    assert batching["max_queue_delay_microseconds"] == 2000
    assert config["instance_group"][0]["count"] == 1


def test_the_mlflow_model_takes_columns_records_and_rows(client: FlaskClient) -> None:
    metadata = client.get("/v2/models/iris-mlflow").get_json()
    assert [(i["name"], i["datatype"], i["shape"]) for i in metadata["inputs"]] == [
        (name, "FP32", [-1]) for name in FEATURES
    ]
    assert metadata["outputs"] == [{"name": "predictions", "datatype": "INT64", "shape": [-1]}]
    columns = [
        {"name": name, "datatype": "FP32", "shape": [2], "data": [row[i] for row in KSERVE_ROWS]}
        for i, name in reversed(list(enumerate(FEATURES)))
    ]
    assert infer(client, "iris-mlflow", {"inputs": columns}) == {"predictions": [1, 1]}
    records = [dict(zip(FEATURES, row, strict=True)) for row in KSERVE_ROWS]
    assert infer(client, "iris-mlflow", {"inputs": records}, "infer_dict") == {
        "predictions": [1, 1]
    }
    v1 = client.post("/v1/models/iris-mlflow:predict", json={"instances": KSERVE_ROWS})
    assert v1.get_json() == {"predictions": [1, 1]}
    narrow = client.post("/v1/models/iris-mlflow:predict", json={"instances": [[1.0, 2.0]]})
    assert narrow.status_code == 400
    assert "send rows of 4 values" in narrow.get_json()["error"]


def test_broken_entries_are_listed_with_their_reasons(client: FlaskClient) -> None:
    entries = index(client)
    reasons = {
        "bad-pbtxt": "config.pbtxt does not parse",
        "python-model": "python backend",
        "tensorrt-model": "platform 'tensorrt_plan' is not supported",
        "no-file": "model.onnx is missing",
        "hf": "implementation 'mlserver_huggingface.HuggingFaceRuntime' is not supported",
        "no-pyfunc": "no 'python_function' flavor",
    }
    for name, reason in reasons.items():
        entry = entries[(name, "1")]
        assert entry["state"] == "UNAVAILABLE" and reason in entry["reason"], entry
        assert client.post(f"/v2/models/{name}/infer", json=rows_request()).status_code == 503
    assert entries[("iris-triton", "2")]["state"] == "READY"
    assert client.get("/v2/health/ready").status_code == 200


def test_a_model_dropped_into_a_repository_loads_without_a_restart(
    client: FlaskClient, root: Path
) -> None:
    shutil.copytree(root / "triton" / "iris-triton", root / "triton" / "iris-new")
    config = root / "triton" / "iris-new" / "config.pbtxt"
    config.write_text(config.read_text().replace('"iris-triton"', '"iris-new"'))
    assert client.post("/v2/models/iris-new/infer", json=rows_request()).status_code == 404
    listed = index(client)
    assert listed[("iris-new", "2")]["state"] == "UNAVAILABLE"
    assert "not loaded" in listed[("iris-new", "2")]["reason"]
    assert client.post("/v2/repository/models/iris-new/load", json={}).status_code == 200
    assert infer(client, "iris-new", rows_request())["predictions"] == [1, 1]

    # A load reads the model again: a policy that serves fewer versions drops the others.
    config.write_text(config.read_text().replace("num_versions: 2", "num_versions: 1"))
    assert client.post("/v2/repository/models/iris-new/load", json={}).status_code == 200
    assert client.get("/v2/models/iris-new").get_json()["versions"] == ["2"]
    assert (
        client.post("/v2/models/iris-new/versions/1/infer", json=rows_request()).status_code == 404
    )

    # Loaded straight away, without an index first.
    shutil.copytree(root / "mlflow" / "iris-mlflow", root / "mlflow" / "iris-mlflow-2")
    assert client.post("/v2/repository/models/iris-mlflow-2/load", json={}).status_code == 200
    assert infer(client, "iris-mlflow-2", {"inputs": [[6.8, 2.8, 4.8, 1.4]]}) == {
        "predictions": [1]
    }

    shutil.rmtree(root / "triton" / "iris-new")
    gone = client.post("/v2/repository/models/iris-new/load", json={})
    assert gone.status_code == 404 and "any more" in gone.get_json()["error"]
    assert infer(client, "iris-new", rows_request())["predictions"] == [1, 1]  # still serves


def test_reshape_and_deferred_loading(tmp_path: Path) -> None:
    model = tmp_path / "triton" / "flat"
    (model / "1").mkdir(parents=True)
    shutil.copy(MODELS / "iris.onnx", model / "1" / "model.onnx")
    (model / "config.pbtxt").write_text(
        'backend: "onnxruntime"\nmax_batch_size: 4\n'
        'input [{name: "input-0", data_type: TYPE_FP32, dims: [2, 2], reshape: {shape: [4]}}]\n'
        'output [{name: "probabilities", data_type: TYPE_FP32, dims: [3, 1], '
        "reshape: {shape: [3]}}]\n",
        encoding="utf-8",
    )
    mlserver = tmp_path / "mlserver"
    build_mlserver(mlserver, broken=False)
    (mlserver / "settings.json").write_text(json.dumps({"load_models_at_startup": False}))
    (tmp_path / "models.yaml").write_text(
        "repositories: [{format: triton, path: triton}, {format: mlserver, path: mlserver}]\n"
        "server: {grpc: {port: 0}, omi: {port: 0}}\n",
        encoding="utf-8",
    )
    client = create_app(tmp_path / "models.yaml", {"TESTING": True}).test_client()
    body = {
        "inputs": [
            {"name": "input-0", "datatype": "FP32", "shape": [1, 2, 2], "data": KSERVE_ROWS[0]}
        ]
    }
    answer = client.post("/v2/models/flat/infer", json=body).get_json()
    assert answer["outputs"][0]["shape"] == [1, 3, 1]
    assert max(range(3), key=lambda i: answer["outputs"][0]["data"][i]) == 1
    assert client.post("/v2/models/iris-mlserver/infer", json=rows_request()).status_code == 503
    assert client.post("/v2/repository/models/iris-mlserver/load", json={}).status_code == 200
    assert infer(client, "iris-mlserver", rows_request()) == {"predictions": [1, 1]}


def test_a_name_that_models_already_has_is_not_taken_twice(tmp_path: Path) -> None:
    build_mlserver(tmp_path / "mlserver", broken=False)
    (tmp_path / "models.yaml").write_text(
        f"models: [{{name: iris-mlserver, runtime: onnx, uri: {MODELS}/iris.onnx}}]\n"
        "repositories: [{format: mlserver, path: mlserver}]\n",
        encoding="utf-8",
    )
    client = create_app(tmp_path / "models.yaml", {"TESTING": True}).test_client()
    assert client.get("/v2/models/iris-mlserver").get_json()["platform"] == "onnx_onnxv1"
    assert client.get("/v2/models/iris-mlserver-xgboost/ready").status_code == 200


@pytest.fixture(autouse=True)
def _no_grpc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MODELPORT_GRPC_PORT", "0")
    yield
