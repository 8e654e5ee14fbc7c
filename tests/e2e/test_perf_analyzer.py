"""perf_analyzer (Triton's load generator) completes a short run over HTTP and gRPC against iris.

It reads the model configuration (`/config`, ModelConfig), sends raw inputs, reads raw outputs and
the statistics extension, so it checks all of those against a real client. One worker: Modelport's
statistics are per process and perf_analyzer over HTTP may ask a worker it did not load.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import grpc
import pytest
import requests
from google.protobuf import json_format

from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from tests.grpc_support import start_server
from tests.server import ROOT, GunicornServer

pytestmark = pytest.mark.e2e

SCRIPT = ROOT / "bench" / "perf_analyzer.sh"
# A couple of seconds per run: short windows, one concurrency level, few trials.
SHORT_RUN = [
    "--shape",
    "input-0:1,4",
    "--measurement-interval",
    "300",
    "--concurrency-range",
    "1",
    "--max-trials",
    "3",
    "--stability-percentage",
    "100",
]


@pytest.fixture(scope="module")
def perf_analyzer() -> str:
    """bench/perf_analyzer.sh, once its tools are installed (skip if apt/pip cannot)."""
    done = subprocess.run(
        [str(SCRIPT), "--install-only"], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        pytest.skip(f"perf_analyzer cannot be installed here: {done.stderr[-800:]}")
    return str(SCRIPT)


@pytest.fixture(scope="module")
def server() -> Iterator[GunicornServer]:
    running = start_server("gthread", workers=1)
    yield running
    running.stop()


def test_rest_and_grpc_config_agree(server: GunicornServer) -> None:
    rest = requests.get(f"{server.url}/v2/models/iris/config", timeout=10)
    assert rest.status_code == 200, rest.text
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        answer = pb_grpc.GRPCInferenceServiceStub(channel).ModelConfig(
            pb.ModelConfigRequest(name="iris"), timeout=10
        )
    parsed = json_format.ParseDict(rest.json(), type(answer.config)())
    assert parsed == answer.config
    assert rest.json()["input"][0] == {
        "name": "input-0",
        "data_type": "TYPE_FP32",
        "format": "FORMAT_NONE",
        "dims": [-1, 4],
        "is_shape_tensor": False,
        "allow_ragged_batch": False,
        "optional": False,
    }
    assert requests.get(f"{server.url}/v2/models/nope/config", timeout=10).status_code == 404


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_perf_analyzer_short_run(perf_analyzer: str, server: GunicornServer, protocol: str) -> None:
    port = server.http_port if protocol == "http" else server.grpc_port
    done = subprocess.run(
        [perf_analyzer, "-m", "iris", "-u", f"127.0.0.1:{port}", "-i", protocol, *SHORT_RUN],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "throughput:" in done.stdout
    assert "Successful request count:" in done.stdout  # server-side statistics were read
    assert "error" not in done.stderr.lower()
