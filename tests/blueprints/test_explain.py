"""Explain over v1 and v2 REST and OMI Run (in-process gRPC): same attributions, clear errors."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import orjson
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app.codec.binary import HEADER_LENGTH
from blueprints.factory import create_app
from config.settings import settings_from_dict
from protos import omi_pb2, omi_pb2_grpc
from tests.conftest import MODELS
from tests.grpc_support import loopback_sidecar
from tests.server import GunicornServer

KSERVE_ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
IRIS_ROWS = KSERVE_ROWS + [[5.0, 3.4, 1.5, 0.2], [6.5, 3.0, 5.8, 2.2]]
DIGITS_ROWS = np.load(MODELS / "digits_background.npy")[:3].tolist()
# model -> (rows, explainer, what the attributions add up to, [targets, features])
EXPLAINABLE: dict[str, tuple[list[list[float]], str, str, list[int]]] = {
    "iris": (IRIS_ROWS, "tree_shap", "probabilities", [3, 4]),  # version 2, a forest
    "iris-xgboost": (IRIS_ROWS, "tree_shap", "margin", [3, 4]),
    "iris-lightgbm": (IRIS_ROWS, "tree_shap", "margin", [3, 4]),
    "iris-onnx": (IRIS_ROWS, "shapley_exact", "probabilities", [3, 4]),
    "digits": (DIGITS_ROWS, "model", "decision_function", [10, 64]),
}


@pytest.fixture(scope="module")
def omi(app: Flask) -> Iterator[omi_pb2_grpc.ModzyModelStub]:
    """OMI on an in-process gRPC sidecar over the shared app's data plane."""
    sidecar, port = loopback_sidecar(app)
    sidecar.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield omi_pb2_grpc.ModzyModelStub(channel)
    sidecar.stop(0)


def _omi_explain(
    omi: omi_pb2_grpc.ModzyModelStub, name: str, item: dict[str, bytes]
) -> omi_pb2.RunResponse:
    """One OMI Run of `item` with `explain=true`, for model `name` (the `omi-model` key)."""
    request = omi_pb2.RunRequest(inputs=[omi_pb2.InputItem(input=item)], explain=True)
    return omi.Run(request, metadata=[("omi-model", name)], timeout=30)


def _explained_item(omi: omi_pb2_grpc.ModzyModelStub, name: str, item: dict[str, bytes]) -> Any:
    answer = _omi_explain(omi, name, item)
    assert answer.status_code == 200, answer.message
    (output,) = answer.outputs
    assert output.success, output.output
    return orjson.loads(output.output["explanation.json"])


def _v2_body(rows: list[list[float]], **extra: Any) -> dict[str, Any]:
    shape = [len(rows), len(rows[0])]
    tensor = {"name": "input-0", "shape": shape, "datatype": "FP32", "data": rows}
    return {"inputs": [tensor], **extra}


def _output(body: dict[str, Any], name: str) -> np.ndarray:
    (output,) = [o for o in body["outputs"] if o["name"] == name]
    return np.asarray(output["data"], dtype=np.float64).reshape(output["shape"])


def _v1_explanations(body: dict[str, Any], name: str) -> np.ndarray:
    return np.asarray([row[name] for row in body["explanations"]], dtype=np.float64)


@pytest.mark.parametrize("name", list(EXPLAINABLE))
def test_v1_v2_and_omi_give_the_same_attributions(
    client: FlaskClient, omi: omi_pb2_grpc.ModzyModelStub, name: str
) -> None:
    rows, method, explained, shape = EXPLAINABLE[name]
    v1 = client.post(f"/v1/models/{name}:explain", json={"instances": rows})
    assert v1.status_code == 200, v1.json
    v2 = client.post(f"/v2/models/{name}/explain", json=_v2_body(rows))
    assert v2.status_code == 200, v2.json
    npy = io.BytesIO()
    np.save(npy, np.asarray(rows, dtype=np.float32))
    by_omi = [
        _explained_item(omi, name, {"input": orjson.dumps(rows)}),
        _explained_item(omi, name, {"input": npy.getvalue()}),
    ]

    # First what infer answers (the ONNX graph: every output), then the explanation.
    infer = client.post(f"/v2/models/{name}/infer", json=_v2_body(rows)).json["outputs"]
    assert v2.json["outputs"][: len(infer)] == infer
    assert [o["name"] for o in v2.json["outputs"][len(infer) :]] == ["attributions", "base_values"]
    assert v2.json["parameters"] == {"explainer": method, "explained_output": explained}
    attributions = _output(v2.json, "attributions")
    assert list(attributions.shape) == [len(rows), *shape]
    for body in (v1.json, *by_omi):
        assert body["predictions"] == v2.json["outputs"][0]["data"]
        assert np.array_equal(_v1_explanations(body, "attributions"), attributions)
        assert np.array_equal(
            _v1_explanations(body, "base_values"), _output(v2.json, "base_values")
        )
    # The explanation tensors say so; the predictions do not.
    flags = [o["parameters"].get("explanation") for o in v2.json["outputs"]]
    assert flags == [None] * len(infer) + [True, True]


def test_iris_version_1_is_linear_and_adds_up_to_its_log_odds(
    app: Flask, client: FlaskClient
) -> None:
    response = client.post("/v2/models/iris/versions/1/explain", json=_v2_body(KSERVE_ROWS))
    assert response.status_code == 200
    assert response.json["model_version"] == "1"
    assert response.json["parameters"]["explainer"] == "linear"
    estimator = app.extensions["modelport"].dataplane.model("iris", "1").estimator
    log_odds = estimator.decision_function(np.asarray(KSERVE_ROWS, dtype=np.float32))
    total = _output(response.json, "attributions").sum(axis=2) + _output(
        response.json, "base_values"
    )
    np.testing.assert_allclose(total, log_odds, atol=1e-5)


def test_mlrun_plain_rows_and_requested_outputs(client: FlaskClient) -> None:
    rows = client.post("/v2/models/iris-xgboost/explain", json={"inputs": KSERVE_ROWS})
    tensors = client.post("/v2/models/iris-xgboost/explain", json=_v2_body(KSERVE_ROWS))
    assert rows.json["outputs"] == tensors.json["outputs"]
    only = client.post(
        "/v2/models/iris-xgboost/explain",
        json=_v2_body(KSERVE_ROWS, outputs=[{"name": "attributions"}, {"name": "probabilities"}]),
    )
    assert only.status_code == 200
    assert [o["name"] for o in only.json["outputs"]] == ["probabilities", "attributions"]


def test_binary_explanation_outputs(client: FlaskClient) -> None:
    body = _v2_body(KSERVE_ROWS, parameters={"binary_data_output": True})
    response = client.post("/v2/models/iris-lightgbm/explain", json=body)
    assert response.status_code == 200
    length = int(response.headers[HEADER_LENGTH])
    header = orjson.loads(response.data[:length])
    sizes = [o["parameters"]["binary_data_size"] for o in header["outputs"]]
    offset = length + sizes[0]
    attributions = np.frombuffer(response.data[offset : offset + sizes[1]], dtype="<f8")
    expected = client.post("/v2/models/iris-lightgbm/explain", json=_v2_body(KSERVE_ROWS))
    assert np.array_equal(attributions.reshape(2, 3, 4), _output(expected.json, "attributions"))


def test_metadata_lists_the_explanation_outputs(client: FlaskClient) -> None:
    metadata = client.get("/v2/models/iris-xgboost").json
    assert metadata["explanation_outputs"] == [
        {"name": "attributions", "datatype": "FP64", "shape": [-1, 3, 4]},
        {"name": "base_values", "datatype": "FP64", "shape": [-1, 3]},
    ]
    digits = client.get("/v2/models/digits").json["explanation_outputs"]
    assert [o["shape"] for o in digits] == [[-1, 10, 64], [-1, 10]]
    assert "explanation_outputs" not in client.get("/v2/models/echo").json


NOT_JSON = "not json"


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/v1/models/iris:explain", NOT_JSON, 400, "not valid JSON"),
        ("/v1/models/iris:explain", {"instances": "rows"}, 400, "to be a list"),
        ("/v1/models/iris:explain", {}, 400, '"instances" or "inputs"'),
        ("/v1/models/iris:explain", {"instances": [[1, 2, 3]]}, 400, "does not match"),
        ("/v1/models/iris:explain", {"instances": [["a", "b", "c", "d"]]}, 400, "numbers"),
        ("/v2/models/iris/explain", NOT_JSON, 400, "not valid JSON"),
        ("/v2/models/iris/explain", {"inputs": []}, 400, "'inputs' is empty"),
        (
            "/v2/models/iris/explain",
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT64", "data": [1, 2, 3, 4]}]},
            400,
            "expected FP32, got INT64",
        ),
        (
            "/v2/models/iris/explain",
            {"inputs": [{"name": "x", "shape": [0, 4], "datatype": "FP32", "data": []}]},
            400,
            "nothing to explain",
        ),
        (
            "/v2/models/iris-onnx/explain",
            _v2_body(KSERVE_ROWS, outputs=[{"name": "shap"}]),
            400,
            "no output or explanation output 'shap'",
        ),
        ("/v1/models/nope:explain", {"instances": KSERVE_ROWS}, 404, "model 'nope' not found"),
        ("/v2/models/iris/versions/9/explain", _v2_body(KSERVE_ROWS), 404, "version '9'"),
        ("/v1/models/broken:explain", {"instances": KSERVE_ROWS}, 503, "not ready"),
        ("/v1/models/echo:explain", {"instances": KSERVE_ROWS}, 501, "declares no inputs"),
        ("/v2/models/sum/explain", _v2_body(KSERVE_ROWS), 501, "explain.background"),
    ],
)
def test_malformed_and_unexplainable_requests(
    client: FlaskClient, path: str, body: Any, status: int, words: str
) -> None:
    if body is NOT_JSON:
        response = client.post(path, data=b"{not json", content_type="application/json")
    else:
        response = client.post(path, json=body)
    assert response.status_code == status, response.json
    assert words in response.json["error"]


@pytest.mark.parametrize(
    ("name", "item", "words"),
    [
        ("iris-xgboost", {"input": b"\x00garbage"}, "neither JSON nor .npy bytes"),
        ("iris-xgboost", {"a": b"[1]", "b": b"[2]"}, "item has no 'input' key"),
        ("sum", {"input": b"[[1, 2]]"}, "explain.background"),
    ],
    ids=["garbage", "no-input-key", "no-explainer"],
)
def test_omi_items_that_cannot_be_explained(
    omi: omi_pb2_grpc.ModzyModelStub, name: str, item: dict[str, bytes], words: str
) -> None:
    answer = _omi_explain(omi, name, item)
    assert answer.status_code == 200
    (output,) = answer.outputs
    assert not output.success
    assert words in output.output["error"].decode()


def test_omi_explain_of_an_unknown_model_is_404(omi: omi_pb2_grpc.ModzyModelStub) -> None:
    answer = _omi_explain(omi, "nope", {"input": b"[[1, 2]]"})
    assert answer.status_code == 404 and "nope" in answer.message


# -- the bounded cost, through the front door -------------------------------------------------


@pytest.fixture(scope="module")
def decisive_client(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    """An app serving only the purpose-built `DecisiveModel`, quick and slow."""
    folder: Path = tmp_path_factory.mktemp("decisive")
    np.save(folder / "background.npy", np.random.default_rng(5).normal(size=(30, 12)))
    model = {"runtime": "python", "class": "tests.models:DecisiveModel"}
    raw = {
        "server": {"grpc": {"port": 0}, "omi": {"port": 0}},
        "models": [
            {**model, "name": "decisive", "explain": {"background": "background.npy"}},
            {
                **model,
                "name": "slow",
                "parameters": {"delay_ms": 10},
                "explain": {"background": "background.npy", "time_limit_ms": 5},
            },
        ],
    }
    settings = settings_from_dict(raw, folder, {})
    return create_app(overrides={"settings": settings, "TESTING": True}).test_client()


def _decisive_body(count: int) -> dict[str, Any]:
    rows = np.zeros((count, 12), dtype=np.float32)
    rows[:, 7] = 2.0
    return {"inputs": [{"name": "x", "shape": [count, 12], "datatype": "FP32", "data": rows}]}


def test_the_decisive_feature_ranks_first_over_rest(decisive_client: FlaskClient) -> None:
    response = decisive_client.post("/v2/models/decisive/explain", json=_decisive_body(2))
    assert response.status_code == 200
    assert response.json["parameters"]["explainer"] == "shapley_permutation"
    attributions = _output(response.json, "attributions")
    assert (np.abs(attributions).argmax(axis=2) == 7).all()


def test_over_budget_and_over_time_answer_400(decisive_client: FlaskClient) -> None:
    big = decisive_client.post("/v2/models/decisive/explain", json=_decisive_body(700))
    assert big.status_code == 400 and "budget" in big.json["error"]
    slow = decisive_client.post("/v1/models/slow:explain", json={"instances": [[0.5] * 12]})
    assert slow.status_code == 400 and "explain.time_limit_ms (5 ms)" in slow.json["error"]


@pytest.mark.e2e
def test_explain_through_gunicorn(server: GunicornServer) -> None:
    import xgboost

    v1 = requests.post(
        f"{server.url}/v1/models/iris-xgboost:explain", json={"instances": KSERVE_ROWS}, timeout=30
    )
    assert v1.status_code == 200, v1.text
    v2 = requests.post(
        f"{server.url}/v2/models/iris-xgboost/explain", json=_v2_body(KSERVE_ROWS), timeout=30
    )
    assert v2.status_code == 200, v2.text
    attributions = _output(v2.json(), "attributions")
    assert np.array_equal(_v1_explanations(v1.json(), "attributions"), attributions)
    booster = xgboost.Booster(model_file=str(MODELS / "iris.xgboost.json"))
    rows = np.asarray(KSERVE_ROWS, dtype=np.float32)
    margin = booster.inplace_predict(rows, predict_type="margin", strict_shape=True)
    total = attributions.sum(axis=2) + _output(v2.json(), "base_values")
    np.testing.assert_allclose(total, margin, atol=1e-5)
    unexplainable = requests.post(
        f"{server.url}/v1/models/echo:explain", json={"instances": KSERVE_ROWS}, timeout=30
    )
    assert unexplainable.status_code == 501
