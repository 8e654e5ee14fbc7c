"""Deadlines and overload against a real gunicorn (httptools, gthread, gevent), issue 15.

A model call that hangs past its deadline answers 504 / DEADLINE_EXCEEDED, stays in the model's
bounded pool (counted in /metrics) while the worker goes on serving, and a full pool makes the
model report not ready; past `max_queue`, requests are refused at once with 503 and Retry-After.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import requests

from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from tests.grpc_support import start_server
from tests.server import GunicornServer

pytestmark = pytest.mark.e2e

SLOW = "tests.models:SlowModel"
CONFIG = f"""\
server:
  grpc: {{port: '${{MODELPORT_GRPC_PORT:-0}}'}}
  omi: {{port: 0}}
models:
  - {{name: echo, runtime: python, class: 'examples.echo:EchoModel'}}
  # Hangs (delay_ms per request) past its own timeout; two hung calls fill its pool.
  - {{name: hangs, runtime: python, class: '{SLOW}', timeout_ms: 300, max_concurrency: 2}}
  # No timeout of its own: only the client's deadline ends a call.
  - {{name: slow, runtime: python, class: '{SLOW}', max_concurrency: 8}}
  # 200 ms a call, 2 at a time, 4 waiting: the overload test's model.
  - name: queued
    runtime: python
    class: '{SLOW}'
    parameters: {{delay_ms: 200}}
    max_concurrency: 2
    max_queue: 4
"""


def body(delay_ms: int, **parameters: object) -> dict[str, object]:
    return {
        "parameters": {"delay_ms": delay_ms, **parameters},
        "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}],
    }


def grpc_request(model: str, delay_ms: int) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(1.0)
    request.parameters["delay_ms"].int64_param = delay_ms
    return request


@pytest.fixture(scope="module", params=["httptools", "gthread", "gevent"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    path: Path = tmp_path_factory.mktemp(request.param) / "models.yaml"
    path.write_text(CONFIG)
    running = start_server(request.param, workers=1, config=path, env={"MODELPORT_THREADS": "8"})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stub(server: GunicornServer) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def echo_ok(server: GunicornServer) -> bool:
    echo = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [2.0]}]}
    return requests.post(f"{server.url}/v2/models/echo/infer", json=echo, timeout=30).ok


def abandoned(server: GunicornServer, model: str) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=30).text
    prefix = f'modelport_abandoned_calls{{model="{model}",version="1"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_hung_calls_answer_504_fill_the_pool_and_the_worker_keeps_serving(
    server: GunicornServer, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    url = f"{server.url}/v2/models/hangs/infer"
    for _ in range(2):  # each hangs 6 s, past its 300 ms timeout
        answer = requests.post(url, json=body(6000), timeout=30)
        assert answer.status_code == 504
        assert "deadline exceeded" in answer.json()["error"]
    # Both calls still run, each in a slot of the pool: counted, and the pool is full.
    wait_for(lambda: abandoned(server, "hangs") == 2)
    ready = requests.get(f"{server.url}/v2/models/hangs/ready", timeout=30)
    assert ready.status_code == 503 and "overloaded" in ready.json()["error"]
    assert not stub.ModelReady(pb.ModelReadyRequest(name="hangs")).ready
    # A new request waits for a slot until its deadline: 504 again, over gRPC too.
    assert requests.post(url, json=body(0), timeout=30).status_code == 504
    with pytest.raises(grpc.RpcError) as failed:
        stub.ModelInfer(grpc_request("hangs", 0), timeout=30)
    assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The worker was never held: other models answer meanwhile.
    assert echo_ok(server)
    # The hung calls end, their slots come back, and the model is ready and serving again.
    wait_for(lambda: abandoned(server, "hangs") == 0, seconds=90)
    wait_for(lambda: requests.get(f"{server.url}/v2/models/hangs/ready", timeout=30).ok)
    assert requests.post(url, json=body(0), timeout=30).status_code == 200


def test_client_deadlines_rest_header_triton_timeout_and_grpc(
    server: GunicornServer, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    url = f"{server.url}/v2/models/slow/infer"
    header = requests.post(url, json=body(3000), headers={"X-Request-Timeout": "200"}, timeout=30)
    assert header.status_code == 504, header.text
    assert "deadline exceeded" in header.json()["error"]
    triton = requests.post(url, json=body(3000, timeout=200_000), timeout=30)  # microseconds
    assert triton.status_code == 504, triton.text
    with pytest.raises(grpc.RpcError) as failed:
        stub.ModelInfer(grpc_request("slow", 3000), timeout=0.3)
    assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # A deadline that is long enough changes nothing; a bad one is the client's error.
    assert requests.post(url, json=body(0), headers={"X-Request-Timeout": "30000"}).ok
    bad = requests.post(url, json=body(0), headers={"X-Request-Timeout": "soon"}, timeout=30)
    assert bad.status_code == 400 and "X-Request-Timeout" in bad.json()["error"]
    bad = requests.post(url, json=body(0, timeout="soon"), timeout=30)
    assert bad.status_code == 400 and "timeout" in bad.json()["error"]
    assert echo_ok(server)


def test_64_way_overload_is_refused_at_once_with_retry_after(
    server: GunicornServer, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    url = f"{server.url}/v2/models/queued/infer"

    def rest() -> tuple[str, str | None]:
        answer = requests.post(url, json=body(200), timeout=60)
        if answer.status_code == 503:
            assert "overloaded" in answer.json()["error"]
        return str(answer.status_code), answer.headers.get("Retry-After")

    def over_grpc() -> tuple[str, str | None]:
        try:
            stub.ModelInfer(grpc_request("queued", 200), timeout=60)
            return "200", None
        except grpc.RpcError as exc:
            trailing = dict(exc.trailing_metadata() or ())
            return exc.code().name, trailing.get("retry-after")

    with ThreadPoolExecutor(64) as pool:
        futures = [pool.submit(rest if i % 4 else over_grpc) for i in range(64)]
        outcomes = [future.result() for future in futures]
    statuses = [status for status, _ in outcomes]
    assert set(statuses) <= {"200", "503", "UNAVAILABLE"}, statuses
    refused = [retry for status, retry in outcomes if status in ("503", "UNAVAILABLE")]
    assert refused, "64 requests on 2 slots and 4 places in the queue: some must be refused"
    assert all(retry is not None and int(retry) >= 1 for retry in refused)
    assert "200" in statuses
    assert echo_ok(server)
