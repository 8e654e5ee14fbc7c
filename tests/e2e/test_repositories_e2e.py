"""One Modelport (real gunicorn, 2 workers) over a Triton, an MLServer and an MLflow repository
built here, beside local models: tritonclient (gRPC and HTTP) and kserve's v1 client get the
local models' answers, the Triton model's config comes back as written, broken entries are
listed with their reasons, and models dropped into a folder serve after a load or a SIGHUP."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.grpc_support import client_python, run_client, start_server
from tests.repositories import MODELS, build_mlflow, build_mlserver, build_triton
from tests.server import GunicornServer

pytestmark = pytest.mark.e2e

KSERVE_CLIENT_REQUIREMENT = "kserve==0.21.0"
CONFIG = f"""
server:
  grpc: {{port: '${{MODELPORT_GRPC_PORT:-0}}'}}
  omi: {{port: 0}}
models:
  - {{name: iris, runtime: sklearn, uri: {MODELS / "iris.joblib"}}}
  - {{name: iris-onnx, runtime: onnx, uri: {MODELS / "iris.onnx"}}}
  - {{name: iris-xgboost, runtime: xgboost, uri: {MODELS / "iris.xgboost.json"}}}
repositories:
  - {{format: triton, path: triton}}
  - {{format: mlserver, path: mlserver}}
  - {{format: mlflow, path: mlflow}}
"""
# repository model -> the local model it must answer like
SAME_AS = {
    "iris-triton:1": "iris-onnx",
    "iris-triton:2": "iris-onnx",
    "iris-mlserver": "iris",
    "iris-mlserver-xgboost": "iris-xgboost",
}
BROKEN = {
    "bad-pbtxt": "config.pbtxt does not parse",
    "python-model": "Triton's python backend",
    "tensorrt-model": "platform 'tensorrt_plan' is not supported",
    "no-file": "1/model.onnx is missing",
    "hf": "implementation 'mlserver_huggingface.HuggingFaceRuntime' is not supported",
    "no-pyfunc": "no 'python_function' flavor",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repositories-e2e")
    build_triton(root / "triton")
    build_mlserver(root / "mlserver")
    build_mlflow(root / "mlflow")
    (root / "models.yaml").write_text(CONFIG, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[GunicornServer]:
    running = start_server(workers=2, config=root / "models.yaml")
    yield running
    running.stop()


def _grpc(server: GunicornServer) -> str:
    return f"127.0.0.1:{server.grpc_port}"


def _config_numbers(config: dict[str, Any]) -> dict[str, Any]:
    """A gRPC config in JSON (64-bit integers as strings) with the fields compared below."""
    return {
        "max_batch_size": int(config["max_batch_size"]),
        "version_policy": config["version_policy"],
        "input": [
            (i["name"], i["data_type"], [int(d) for d in i["dims"]]) for i in config["input"]
        ],
        "output": [
            (o["name"], o["data_type"], [int(d) for d in o.get("dims", [])])
            for o in config["output"]
        ],
        "dynamic_batching": {
            "preferred_batch_size": config["dynamic_batching"]["preferred_batch_size"],
            "max_queue_delay_microseconds": int(
                config["dynamic_batching"]["max_queue_delay_microseconds"]
            ),
        },
        "instance_group": [(g["count"], g["kind"]) for g in config["instance_group"]],
        "platform": config["platform"],
        "backend": config["backend"],
    }


def test_tritonclient_gets_the_local_answers_and_the_real_config(server: GunicornServer) -> None:
    models = [*SAME_AS, "iris-triton", "iris-mlflow", "iris-onnx", "iris", "iris-xgboost"]
    found = run_client(
        "triton_repositories.py",
        "answers",
        _grpc(server),
        server.url.removeprefix("http://"),
        *models,
    )
    for label in ("grpc", "http"):
        answers = found[label]
        for model, local in SAME_AS.items():
            assert answers[model]["outputs"] == answers[local]["outputs"], (label, model)
        assert answers["iris-triton:1"]["outputs"]["predictions"] == [1, 1]
        assert answers["iris-mlflow"]["outputs"] == {"predictions": [1, 1]}
        assert [i["name"] for i in answers["iris-mlflow"]["metadata"]["inputs"]] == [
            "sepal_length",
            "sepal_width",
            "petal_length",
            "petal_width",
        ]
        assert answers["iris-triton"]["metadata"]["versions"] == ["1", "2"]
        config = answers["iris-triton:1"]["config"]
        config = config["config"] if label == "grpc" else config
        assert _config_numbers(config) == {
            "max_batch_size": 8,
            "version_policy": {"latest": {"num_versions": 2}},
            "input": [("input-0", "TYPE_FP32", [4])],
            "output": [("predictions", "TYPE_INT64", []), ("probabilities", "TYPE_FP32", [3])],
            "dynamic_batching": {
                "preferred_batch_size": [4, 8],
                "max_queue_delay_microseconds": 2000,
            },
            "instance_group": [(1, "KIND_CPU")],
            "platform": "onnxruntime_onnx",
            "backend": "onnxruntime",
        }, label
        index = {entry["name"]: entry for entry in answers["index"]}
        for name, reason in BROKEN.items():
            assert index[name]["state"] == "UNAVAILABLE", (label, index[name])
            assert reason in index[name]["reason"], (label, index[name])
        assert index["iris-mlflow"]["state"] == "READY"


def test_kserve_v1_client_gets_the_local_answers(server: GunicornServer) -> None:
    python = client_python("kserve-client", KSERVE_CLIENT_REQUIREMENT)
    models = ["iris", "iris-triton", "iris-mlserver", "iris-mlserver-xgboost", "iris-mlflow"]
    found = run_client("kserve_v1.py", server.url, *models, python=python, timeout=300)
    for model in models:
        assert found[model] == {"ready": True, "answer": {"predictions": [1, 1]}}, model


def test_a_model_dropped_into_the_folder_loads_in_every_worker(
    server: GunicornServer, root: Path
) -> None:
    shutil.copytree(root / "triton" / "iris-triton", root / "triton" / "iris-dropped")
    config = root / "triton" / "iris-dropped" / "config.pbtxt"
    config.write_text(config.read_text().replace('"iris-triton"', '"iris-dropped"'))
    found = run_client("triton_repositories.py", "load", _grpc(server), "iris-dropped")
    assert "error" not in found, found
    assert found["predictions"] == [[1, 1]] * 6  # every connection, whichever worker took it
    assert {(e["name"], e["version"]) for e in found["index"]} >= {
        ("iris-dropped", "1"),
        ("iris-dropped", "2"),
    }
    broken = run_client("triton_repositories.py", "load", _grpc(server), "python-model")
    assert broken["error"]["status"] == "StatusCode.UNAVAILABLE"
    assert "Triton's python backend" in broken["error"]["message"]
    assert requests.get(f"{server.url}/v2/models/iris/ready", timeout=10).status_code == 200


def test_sighup_mounts_what_the_folders_hold_then(server: GunicornServer, root: Path) -> None:
    shutil.copytree(root / "mlflow" / "iris-mlflow", root / "mlflow" / "iris-hup")
    server.signal(signal.SIGHUP)
    url = f"{server.url}/v1/models/iris-hup:predict"
    # gunicorn stops the old workers as soon as it has forked the new ones, which are still
    # loading every model (mlflow's import alone takes seconds on a busy machine): until one
    # of them accepts, a request waits in the listen queue.
    deadline = time.monotonic() + 180
    answer = None
    while time.monotonic() < deadline:
        try:
            answer = requests.post(url, json={"instances": [[6.8, 2.8, 4.8, 1.4]]}, timeout=10)
        except requests.RequestException:
            continue
        if answer.status_code == 200:
            break
        time.sleep(0.3)
    assert answer is not None and answer.json() == {"predictions": [1]}
