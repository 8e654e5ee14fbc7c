"""v1 and v2 REST through Flask's test client: the contract, view by view."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from blueprints.factory import create_app
from config.settings import load_settings
from tests.server import E2E_CONFIG

KSERVE_ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
IRIS_V2 = {
    "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": KSERVE_ROWS}]
}
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def test_root_and_model_lists(client: FlaskClient) -> None:
    assert client.get("/").json == {"status": "alive", "name": "modelport-test"}
    v1 = client.get("/v1/models").json["models"]
    assert {"iris", "iris-onnx", "broken"} <= set(v1)
    v2 = client.get("/v2/models").json["models"]
    assert "iris" in v2 and "iris:1" in v2 and "iris:2" in v2


def test_health(client: FlaskClient) -> None:
    assert client.get("/v2/health/live").json == {"live": True}
    assert client.get("/v2/health/ready").json == {"ready": True}
    health = client.get("/v2/health").json
    assert health["name"] == "modelport-test" and health["ready"] is True
    metadata = client.get("/v2").json
    assert metadata["name"] == "modelport-test"
    assert "model_repository" in metadata["extensions"]


def test_model_metadata_and_readiness(client: FlaskClient) -> None:
    metadata = client.get("/v2/models/iris").json
    assert metadata["name"] == "iris"
    assert metadata["versions"] == ["1", "2"]
    assert metadata["platform"] == "sklearn_joblib"
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in metadata["outputs"]] == ["predictions", "probabilities"]
    assert client.get("/v2/models/iris/versions/1").json["versions"] == ["1"]
    assert client.get("/v2/models/iris/ready").json == {"name": "iris", "ready": True}
    assert client.get("/v2/models/iris/versions/2/ready").status_code == 200
    assert client.get("/v1/models/iris").json == {"name": "iris", "ready": True}


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v2/models/nope", 404, "model 'nope' not found"),
        ("/v2/models/iris/versions/7", 404, "model 'iris' version '7' not found"),
        ("/v2/models/nope/ready", 404, "not found"),
        ("/v2/models/broken/ready", 503, "weights are corrupt"),
        ("/v2/models/broken", 503, "not ready"),
        ("/v1/models/broken", 503, "not ready"),
        ("/v1/models/nope", 404, "not found"),
    ],
)
def test_unknown_and_broken_models(
    client: FlaskClient, path: str, status: int, message: str
) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert message in response.json["error"]


def test_kserve_documentation_examples(client: FlaskClient) -> None:
    v1 = client.post("/v1/models/iris:predict", json={"instances": KSERVE_ROWS})
    assert v1.status_code == 200 and v1.json == {"predictions": [1, 1]}
    # curl -d sends a form content type: still JSON (DESIGN §4).
    form = client.post(
        "/v1/models/iris:predict",
        data='{"instances": [[6.8, 2.8, 4.8, 1.4]]}',
        content_type="application/x-www-form-urlencoded",
    )
    assert form.json == {"predictions": [1]}
    v2 = client.post("/v2/models/iris/infer", json=IRIS_V2).json
    assert v2["model_name"] == "iris" and v2["model_version"] == "2"
    assert v2["outputs"] == [
        {"name": "predictions", "datatype": "INT64", "shape": [2], "parameters": {}, "data": [1, 1]}
    ]
    assert v2["id"]  # a uuid when none was sent


def test_v1_inputs_win_over_instances_and_one_row_works(client: FlaskClient) -> None:
    both = client.post(
        "/v1/models/iris:predict", json={"inputs": KSERVE_ROWS[:1], "instances": KSERVE_ROWS}
    )
    assert both.json == {"predictions": [1]}


def test_v2_id_parameters_and_requested_outputs(client: FlaskClient) -> None:
    body = {
        **IRIS_V2,
        "id": "abc",
        "parameters": {"content_type": "np", "priority": 1},
        "outputs": [{"name": "probabilities"}, {"name": "predictions"}],
    }
    answer = client.post("/v2/models/iris/versions/1/infer", json=body).json
    assert answer["id"] == "abc" and answer["model_version"] == "1"
    assert [o["name"] for o in answer["outputs"]] == ["probabilities", "predictions"]
    probabilities = answer["outputs"][0]
    assert probabilities["shape"] == [2, 3]
    assert abs(sum(probabilities["data"][:3]) - 1) < 1e-5


def test_parameters_reach_the_model(client: FlaskClient) -> None:
    body = {
        "parameters": {"custom": "x", "n": 2, "flag": True},
        "inputs": [{"name": "i", "shape": [1], "datatype": "INT32", "data": [1]}],
    }
    output = client.post("/v2/models/params/infer", json=body).json["outputs"][0]
    assert output["datatype"] == "BYTES"
    assert output["data"] == ['{"custom":"x","flag":true,"n":2}']


@pytest.mark.parametrize("model", ["iris", "iris-xgboost", "iris-lightgbm", "iris-onnx"])
def test_every_iris_runtime_agrees(client: FlaskClient, model: str) -> None:
    answer = client.post(f"/v2/models/{model}/infer", json=IRIS_V2).json
    predictions = next(o for o in answer["outputs"] if o["name"] == "predictions")
    assert predictions["data"] == [1, 1]
    assert client.post(f"/v1/models/{model}:predict", json={"instances": KSERVE_ROWS}).json == {
        "predictions": [1, 1]
    }


def test_mlrun_plain_rows_and_infer_dict(client: FlaskClient) -> None:
    rows = client.post("/v2/models/iris/infer", json={"inputs": KSERVE_ROWS}).json
    assert rows["outputs"][0]["data"] == [1, 1]
    one_row = client.post("/v2/models/iris/infer", json={"inputs": KSERVE_ROWS[0]}).json
    assert one_row["outputs"][0]["data"] == [1]
    records = [dict(zip(reversed(FEATURES), reversed(row), strict=True)) for row in KSERVE_ROWS]
    by_dict = client.post("/v2/models/iris/infer_dict", json={"inputs": records}).json
    assert by_dict["outputs"][0]["data"] == [1, 1]
    single = client.post("/v2/models/iris/predict_dict", json={"inputs": records[0]}).json
    assert single["outputs"][0]["data"] == [1]
    missing = client.post("/v2/models/iris/infer_dict", json={"inputs": [{"sepal_length": 1}]})
    assert missing.status_code == 400 and "no feature 'sepal_width'" in missing.json["error"]
    no_features = client.post("/v2/models/digits/infer_dict", json={"inputs": [{"a": 1}]})
    assert no_features.status_code == 400 and "features:" in no_features.json["error"]


def test_digits_python_model(client: FlaskClient) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [3, 64],
                "datatype": "FP32",
                "data": digits.data[:3].tolist(),
            }
        ]
    }
    answer = client.post("/v2/models/digits/infer", json=body).json
    assert answer["outputs"][0]["data"] == digits.target[:3].tolist()


def test_multi_input_names_must_match(client: FlaskClient) -> None:
    good = {
        "inputs": [
            {"name": "b", "shape": [2], "datatype": "INT32", "data": [1, 2]},
            {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]},
        ]
    }
    assert client.post("/v2/models/multi/infer", json=good).json["outputs"][0]["data"] == [4.0, 9.0]
    unknown = {"inputs": [*good["inputs"][:1], {**good["inputs"][1], "name": "c"}]}
    response = client.post("/v2/models/multi/infer", json=unknown)
    assert response.status_code == 400 and "no input 'c'" in response.json["error"]
    missing = {"inputs": good["inputs"][:1]}
    response = client.post("/v2/models/multi/infer", json=missing)
    assert response.status_code == 400 and "input 'a' is missing" in response.json["error"]


def test_single_input_models_accept_any_name(client: FlaskClient) -> None:
    body = {"inputs": [{**IRIS_V2["inputs"][0], "name": "whatever"}]}
    assert client.post("/v2/models/iris/infer", json=body).status_code == 200


def test_model_errors_are_500_with_the_message_and_the_next_request_works(
    client: FlaskClient,
) -> None:
    bad = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [-1]}]}
    response = client.post("/v2/models/failing/infer", json=bad)
    assert response.status_code == 500
    assert response.json == {"error": "model 'failing' failed: negative values are not allowed"}
    good = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}
    assert client.post("/v2/models/failing/infer", json=good).status_code == 200


def test_detailed_error_bodies(tmp_path: Path) -> None:
    settings = load_settings(E2E_CONFIG, {"MODELPORT_ERRORS": "detailed"})
    client = create_app(overrides={"settings": settings, "TESTING": True}).test_client()
    error = client.get("/v2/models/nope").json["error"]
    assert error == {
        "code": 404,
        "message": "model 'nope' not found",
        "details": {"reason": "model_not_found"},
    }
    routing = client.get("/nowhere").json["error"]
    assert routing["code"] == 404 and routing["details"] == {"reason": "not_found"}


def test_repository_index_load_unload(client: FlaskClient) -> None:
    index = client.post("/v2/repository/index", data="").json
    states = {(e["name"], e["version"]): e for e in index}
    assert states[("iris", "1")]["state"] == "READY"
    assert states[("broken", "1")]["state"] == "UNAVAILABLE"
    assert "weights are corrupt" in states[("broken", "1")]["reason"]
    ready_only = client.post("/v2/repository/index", json={"ready": True}).json
    assert all(e["state"] == "READY" for e in ready_only)

    unload = client.post(
        "/v2/repository/models/sum/unload", json={"parameters": {"unload_dependents": False}}
    )
    assert unload.status_code == 200
    assert client.get("/v2/models/sum/ready").status_code == 503
    index = {e["name"]: e for e in client.post("/v2/repository/index").json}
    assert index["sum"] == {
        "name": "sum",
        "version": "1",
        "state": "UNAVAILABLE",
        "reason": "unloaded",
    }
    assert client.post("/v2/repository/models/sum/load", data="{}").status_code == 200
    assert client.get("/v2/models/sum/ready").status_code == 200

    assert client.post("/v2/repository/models/nope/load").status_code == 404
    assert client.post("/v2/repository/models/broken/load").status_code == 503
    override = client.post("/v2/repository/models/sum/load", json={"parameters": {"config": "{}"}})
    assert override.status_code == 400
    files = client.post(
        "/v2/repository/models/sum/load", json={"parameters": {"file:1/model.onnx": "AA=="}}
    )
    assert (
        files.status_code == 400 and "'file:1/model.onnx' is not supported" in files.json["error"]
    )


def test_statistics(client: FlaskClient) -> None:
    body = {"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]}]}
    before = client.get("/v2/models/slow/stats").json["model_stats"][0]
    client.post("/v2/models/slow/infer", json={**body, "parameters": {"delay_ms": 1}})
    after = client.get("/v2/models/slow/versions/1/stats").json["model_stats"][0]
    assert after["inference_count"] - before["inference_count"] == 3
    assert after["execution_count"] - before["execution_count"] == 1
    assert (
        after["inference_stats"]["success"]["count"]
        == before["inference_stats"]["success"]["count"] + 1
    )
    everything = client.get("/v2/models/stats").json["model_stats"]
    assert {("iris", "1"), ("iris", "2"), ("slow", "1")} <= {
        (s["name"], s["version"]) for s in everything
    }


def test_explain_routes_exist_and_say_what_is_missing(client: FlaskClient) -> None:
    assert (
        client.post("/v1/models/iris:explain", json={"instances": KSERVE_ROWS}).status_code == 200
    )
    unexplainable = client.post("/v1/models/sum:explain", json={"instances": [[1.0, 2.0]]})
    assert unexplainable.status_code == 501
    assert "explain.background" in unexplainable.json["error"]
    assert client.post("/v2/models/nope/explain", json=IRIS_V2).status_code == 404


@pytest.mark.parametrize("model", ["iris", "iris-xgboost", "iris-lightgbm"])
def test_a_request_with_no_rows_answers_empty_outputs(client: FlaskClient, model: str) -> None:
    body = {
        "inputs": [{"name": "input-0", "shape": [0, 4], "datatype": "FP32", "data": []}],
        "outputs": [{"name": "predictions"}, {"name": "probabilities"}],
    }
    answer = client.post(f"/v2/models/{model}/infer", json=body)
    assert answer.status_code == 200, answer.json
    shapes = {o["name"]: (o["shape"], o["datatype"], o["data"]) for o in answer.json["outputs"]}
    assert shapes == {"predictions": ([0], "INT64", []), "probabilities": ([0, 3], "FP32", [])}


def test_an_output_a_model_without_declared_outputs_did_not_answer_is_a_400(
    client: FlaskClient,
) -> None:
    """Found by `make soak`'s gRPC fuzz: asking `echo` (no declared outputs) for an output it
    does not make was the model's failure (500); it is the client's request (400)."""
    body = {
        "inputs": [{"name": "input-0", "shape": [1], "datatype": "FP32", "data": [1.0]}],
        "outputs": [{"name": "x"}],
    }
    response = client.post("/v2/models/echo/infer", json=body)
    assert response.status_code == 400
    assert (
        response.get_json()["error"] == "model 'echo' has no output 'x' (it answered: ['input-0'])"
    )
