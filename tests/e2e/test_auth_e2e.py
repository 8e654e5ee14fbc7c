"""Auth through a real gunicorn: REST and gRPC refuse missing and wrong credentials, accept
right ones of both kinds; health stays public; secrets never reach the logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from tests.server import HTTP_WORKER_CLASSES, ROOT, GunicornServer

pytestmark = pytest.mark.e2e

TOKEN, KEY = "t0ken-e2e-secret", "k3y-e2e-secret"
ROWS = {"instances": [[6.8, 2.8, 4.8, 1.4]]}


@pytest.fixture(scope="module", params=HTTP_WORKER_CLASSES)
def secured(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[GunicornServer]:
    path: Path = tmp_path_factory.mktemp("auth") / "models.yaml"
    path.write_text(
        "server:\n"
        "  grpc: {port: '${MODELPORT_GRPC_PORT}'}\n"
        "  omi: {port: 0}\n"
        "  auth:\n"
        "    bearer_tokens: ['${E2E_TOKEN}']\n"
        "    api_keys: ['${E2E_KEY}', '${E2E_UNSET:-}']\n"
        "models:\n"
        f"  - {{name: iris, runtime: sklearn, uri: {ROOT / 'models' / 'iris.joblib'}}}\n"
    )
    env = {"E2E_TOKEN": TOKEN, "E2E_KEY": KEY}
    with GunicornServer(path, workers=2, grpc=True, env=env, worker_class=request.param) as running:
        yield running


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": f"Basic {TOKEN}"}, 401),
        ({"X-API-Key": "wrong"}, 401),
        ({"X-API-Key": ""}, 401),
        ({"Authorization": f"Bearer {TOKEN}"}, 200),
        ({"X-API-Key": KEY}, 200),
    ],
)
def test_rest(secured: GunicornServer, headers: dict[str, str], status: int) -> None:
    answer = requests.post(
        f"{secured.url}/v1/models/iris:predict", json=ROWS, headers=headers, timeout=10
    )
    assert answer.status_code == status
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert "error" in answer.json()
    else:
        assert answer.json() == {"predictions": [1]}


@pytest.mark.parametrize("path", ["/", "/v2/health/live", "/v2/health/ready", "/metrics"])
def test_rest_health_and_metrics_stay_public(secured: GunicornServer, path: str) -> None:
    assert requests.get(secured.url + path, timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", "Bearer wrong"),), grpc.StatusCode.UNAUTHENTICATED),
        ((("x-api-key", "wrong"),), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", f"Bearer {TOKEN}"),), grpc.StatusCode.OK),
        ((("x-api-key", KEY),), grpc.StatusCode.OK),
    ],
)
def test_grpc(secured: GunicornServer, metadata: tuple, code: grpc.StatusCode) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{secured.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        try:
            answer = stub.ModelMetadata(pb.ModelMetadataRequest(name="iris"), metadata=metadata)
        except grpc.RpcError as exc:
            assert exc.code() == code
            assert "credentials" in exc.details()
        else:
            assert code == grpc.StatusCode.OK and answer.name == "iris"
        # Liveness, readiness and grpc.health.v1 are public.
        assert stub.ServerLive(pb.ServerLiveRequest()).live
        assert stub.ServerReady(pb.ServerReadyRequest()).ready
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_logs_are_json_lines_with_request_ids_and_no_secrets(secured: GunicornServer) -> None:
    requests.get(
        f"{secured.url}/v2/health/live", headers={"X-Request-ID": "trace-me-42"}, timeout=10
    )
    requests.post(
        f"{secured.url}/v1/models/iris:predict",
        json=ROWS,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    lines = [line for line in secured.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(r.get("request_id") == "trace-me-42" and r.get("status") == 200 for r in records)
    access = [r for r in records if r.get("logger") == "modelport.access" and r.get("model")]
    assert access and {"protocol", "duration_ms", "status", "request_id"} <= set(access[-1])
    text = secured.log()
    assert TOKEN not in text and KEY not in text
