"""kserve's own Python clients, unchanged, against a real gunicorn: v1 and v2 REST, gRPC."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.grpc_support import client_python, run_client, start_server
from tests.server import GunicornServer

pytestmark = pytest.mark.e2e

KSERVE_CLIENT_REQUIREMENT = "kserve==0.21.0"


@pytest.fixture(scope="module")
def served() -> Iterator[GunicornServer]:
    server = start_server(workers=1)
    yield server
    server.stop()


def test_kserve_clients_work_unchanged(served: GunicornServer) -> None:
    python = client_python("kserve-client", KSERVE_CLIENT_REQUIREMENT)
    found = run_client(
        "kserve_client.py", served.url, f"127.0.0.1:{served.grpc_port}", python=python, timeout=300
    )
    assert found["v1_live"] is True  # GET / answers {"status": "alive"}
    assert found["v1_model_ready"] is True
    assert found["v1_broken_ready"] is False  # 503 reads as not ready
    assert found["v1_predict"] == {"predictions": [1, 1]}
    assert found["v1_explain_keys"] == ["explanations", "predictions"]
    assert found["v2_live"] is True and found["v2_ready"] is True
    assert found["v2_model_ready"] is True and found["v2_nope_ready"] is False
    for binary in (False, True):
        answer = found[f"v2_infer_binary_{binary}"]
        assert answer == {"id": "ks-1", "model_name": "iris", "predictions": [1, 1]}
    assert found["grpc_live"] is True and found["grpc_ready"] is True
    assert found["grpc_model_ready"] is True
    assert found["grpc_infer"] == {"model_name": "iris", "predictions": [1, 1]}
