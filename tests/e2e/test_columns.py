"""Inputs declared one per feature, through tritonclient (gRPC and HTTP) and requests, against a
real gunicorn: the runtime stacks them in the declared order; bad columns are 400."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.grpc_support import run_client, start_server
from tests.server import GunicornServer

pytestmark = pytest.mark.e2e

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
# model with per-feature inputs -> the same model file taking one matrix (name, version)
MODELS = {"iris-columns": ("iris", "1"), "iris-onnx-columns": ("iris-onnx", "")}


@pytest.fixture(scope="module")
def server() -> Iterator[GunicornServer]:
    running = start_server(workers=1)
    yield running
    running.stop()


@pytest.mark.parametrize("model", list(MODELS))
def test_tritonclient_sends_one_tensor_per_feature(server: GunicornServer, model: str) -> None:
    out = run_client(
        "triton_grpc.py",
        "columns",
        f"127.0.0.1:{server.grpc_port}",
        server.url.removeprefix("http://"),
        model,
        *MODELS[model],
    )
    for label in ("grpc", "http"):
        answer = out[label]
        inputs = answer["inputs"]
        assert [i["name"] for i in inputs] == FEATURES, label
        assert {i["datatype"] for i in inputs} == {"FP32"}
        assert [list(map(int, i["shape"])) for i in inputs] == [[-1]] * 4
        assert answer["columns"] == answer["expected"] == [0, 2], (label, answer)
        assert answer["shuffled"] == answer["expected"], label
        missing, short = answer["missing"]["error"], answer["short"]["error"]
        bad = "StatusCode.INVALID_ARGUMENT" if label == "grpc" else "400"
        assert missing["status"] == short["status"] == bad, (label, answer)
        assert "input 'petal_width' is missing" in missing["message"]
        assert "'sepal_width' has 1 rows" in short["message"]
        assert answer["ready"]


@pytest.mark.parametrize("model", list(MODELS))
def test_infer_dict_rows_keyed_by_input_names(server: GunicornServer, model: str) -> None:
    records = [dict(zip(reversed(FEATURES), reversed(row), strict=True)) for row in ROWS]
    answer = requests.post(
        f"{server.url}/v2/models/{model}/infer_dict", json={"inputs": records}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [0, 2]
    missing = requests.post(
        f"{server.url}/v2/models/{model}/infer_dict",
        json={"inputs": [{"sepal_length": 1.0}]},
        timeout=10,
    )
    assert missing.status_code == 400
    assert "has no feature 'sepal_width'" in missing.json()["error"]
