"""Server metadata lists exactly the Triton extensions that are served, over REST and gRPC alike.

`tests/clients/triton_grpc.py extensions` exercises every extension of its `EXTENSION_PROBES`
table with tritonclient.http and tritonclient.grpc against a real gunicorn, so the list in
`GET /v2` and ServerMetadata cannot name something that does not work, or miss something that does.
"""

from __future__ import annotations

import pytest

from app.dataplane import EXTENSIONS
from tests.grpc_support import run_client, start_server

pytestmark = pytest.mark.e2e


def test_every_listed_extension_works_and_every_working_one_is_listed() -> None:
    server = start_server(workers=1)
    try:
        out = run_client(
            "triton_grpc.py",
            "extensions",
            f"127.0.0.1:{server.grpc_port}",
            server.url.removeprefix("http://"),
        )
    finally:
        server.stop()
    assert out["rest_extensions"] == out["grpc_extensions"] == list(EXTENSIONS)
    assert sorted(out["probes"]) == sorted(EXTENSIONS)
    for name, results in out["probes"].items():
        assert results["rest"] is True, (name, results)
        # None: the extension has no gRPC form (binary tensor data is HTTP's raw-bytes body).
        assert results["grpc"] is True or (name == "binary_tensor_data" and results["grpc"] is None)
