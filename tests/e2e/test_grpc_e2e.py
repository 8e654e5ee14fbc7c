"""A real `gunicorn wsgi:app` (2 workers) per worker class, driven by real gRPC and OMI clients.

tritonclient runs in a child process (its protos clash with ours), the chassisml client from its
own venv. The last test of each worker class shuts the server down through OMI.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.grpc_support import omi_python, run_client, start_server
from tests.server import GunicornServer

pytestmark = pytest.mark.e2e

WORKER_CLASSES = ("sync", "gthread", "gevent", "httptools")
# The 10 MiB OMI input needs more than the e2e config's 8 MiB limit.
LIMIT = str(64 * 1024 * 1024)


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def server(request: pytest.FixtureRequest) -> Iterator[GunicornServer]:
    """One server per worker class, with OMI on its own port too."""
    running = start_server(request.param, env={"MODELPORT_MAX_REQUEST_BYTES": LIMIT}, omi_port=True)
    yield running
    running.stop()


def _grpc(server: GunicornServer) -> str:
    return f"127.0.0.1:{server.grpc_port}"


def test_tritonclient_tour(server: GunicornServer) -> None:
    out = run_client("triton_grpc.py", "tour", _grpc(server))
    assert out["live"] and out["ready"]
    assert out["server_metadata"]["name"] == "modelport-test"
    assert out["iris_metadata"]["inputs"][0]["datatype"] == "FP32"
    assert out["iris_ready"] and out["iris_v1_ready"]
    assert out["unknown_ready"] is False  # OK + ready=false, never an error (DESIGN §5)
    assert out["unknown_metadata_error"]["status"] == "StatusCode.NOT_FOUND"
    config = out["iris_config"]["config"]
    assert config["name"] == "iris"
    assert config["input"][0]["data_type"] == "TYPE_FP32"
    assert out["raw_infer"] == {
        "id": "raw-1",
        "predictions": [0, 2],
        "probabilities_shape": [2, 3],
    }
    assert out["typed_infer"] == {
        "id": "typed-1",
        "raw_count": 0,
        "predictions": [0, 2],
        "shape": [2],
    }
    echo = out["echo"]
    for datatype in ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16"):
        assert echo[datatype] == {"raw": True, "typed": True}, datatype
    for datatype in ("INT32", "INT64", "FP32", "FP64", "BYTES"):
        assert echo[datatype] == {"raw": True, "typed": True}, datatype
    assert echo["FP16"] == {"raw": True}
    assert echo["BF16_error"]["status"] == "StatusCode.INVALID_ARGUMENT"
    stream = out["stream"]
    assert stream[0] == {"id": "s1", "predictions": [0, 2]}
    assert "no-such-model" in stream[1]["error"]
    assert stream[2] == {"id": "s3", "predictions": [0, 2]}
    names = {m["name"] for m in out["index"]["models"]}
    assert {"iris", "digits", "echo", "broken"} <= names
    assert out["onnx_ready_after_unload"] is False
    assert out["onnx_ready_after_load"] is True
    assert out["load_unknown_error"]["status"] == "StatusCode.NOT_FOUND"
    stats = out["iris_stats"]["model_stats"]
    assert [s["version"] for s in stats] == ["1", "2"]
    latest = stats[1]
    # One raw, one typed, two streamed requests of 2 rows each reached iris v2: statistics are
    # server-wide, and the tour is this server's first client.
    assert int(latest["inference_count"]) == 8
    assert int(latest["inference_stats"]["success"]["count"]) == 4
    assert out["all_stats_count"] >= 10


def test_same_outputs_over_rest_and_grpc(server: GunicornServer) -> None:
    out = run_client("triton_grpc.py", "compare", _grpc(server), server.url.removeprefix("http://"))
    assert set(out) == {
        "iris",
        "iris-xgboost",
        "iris-lightgbm",
        "iris-onnx",
        "digits",
        "echo",
        "sum",
    }
    for model, answers in out.items():
        assert answers["grpc"] == answers["http"], model
        assert answers["grpc"], model


def test_reflection_lists_every_service(server: GunicornServer) -> None:
    out = run_client("reflection_client.py", _grpc(server))
    expected = [
        "ModzyModel",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "inference.GRPCInferenceService",
    ]
    assert out["v1alpha"] == expected
    assert out["v1"] == expected
    assert out["files"]["ModzyModel"] == {"file": "chassis/protos/v1/model.proto", "package": ""}
    assert out["files"]["inference.GRPCInferenceService"]["package"] == "inference"


def test_chassis_client_status_and_run(server: GunicornServer) -> None:
    out = run_client("omi_client.py", "tour", "127.0.0.1", server.omi_port, python=omi_python())
    assert out["status"]["status_code"] == 200
    assert out["status"]["message"] in {
        "Model Initialized Successfully.",
        "Model Already Initialized.",
    }
    assert out["model_name"] == "digits"
    assert out["inputs"] == ["input"] and out["outputs"] == ["results.json"]
    run = out["run"]
    assert (run["status_code"], run["status"], run["message"]) == (200, "OK", "Inference executed")
    assert [item["success"] for item in run["outputs"]] == [True, True, True]
    assert all(len(item["results"]["predictions"]) == 1 for item in run["outputs"])
    big = out["big"]
    assert big["input_bytes"] > 10 * 1024 * 1024
    assert big["success"] and big["predictions"] == 10 * 1024 * 1024 // 256


def test_chassis_client_shutdown_stops_the_whole_server(server: GunicornServer) -> None:
    """Last for this server: the reply arrives, then the master and both workers exit."""
    out = run_client("omi_client.py", "shutdown", "127.0.0.1", server.omi_port, python=omi_python())
    assert out.get("shutdown") == {
        "status_code": 200,
        "status": "OK",
        "message": "Model Shutdown Successfully.",
    }
    assert server.process is not None
    assert server.process.wait(timeout=60) == 0
    assert "Handling signal: term" in server.log()
