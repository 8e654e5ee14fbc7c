"""`errors: detailed` from a real gunicorn: `{"error": {"code": <status>, "message", "details"}}`.

Every DESIGN §5 row a REST client can reach is asked for with requests or tritonclient.http, and
each body must match the `Error` schema of the document the same server serves.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from app import errors
from tests.server import ROOT, GunicornServer

pytestmark = pytest.mark.e2e

TOKEN = "detailed-secret"
CONFIG = f"""
server:
  errors: detailed
  grpc: {{port: "${{MODELPORT_GRPC_PORT:-0}}"}}
  omi: {{port: 0}}
  auth: {{bearer_tokens: ["{TOKEN}"]}}
  limits: {{max_request_bytes: 4096}}
models:
  - name: sum
    runtime: python
    class: examples.tensor_sum:SumModel
  - name: failing
    runtime: python
    class: tests.models:FailingModel
"""
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SUM_BODY = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}


@pytest.fixture(scope="module")
def detailed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    config = tmp_path_factory.mktemp("detailed") / "models.yaml"
    config.write_text(CONFIG)
    with GunicornServer(config, workers=1) as running:
        yield running


def _post(server: GunicornServer, path: str, **kwargs: Any) -> requests.Response:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    return requests.post(f"{server.url}{path}", headers=headers, timeout=10, **kwargs)


# (what, request, HTTP status, details.reason)
CASES = [
    ("no credentials", lambda s: requests.get(f"{s.url}/v2/models/sum", timeout=10), 401,
     "unauthenticated"),
    ("malformed body", lambda s: _post(s, "/v2/models/sum/infer", data=b"{"), 400,
     "invalid_input"),
    ("unknown model", lambda s: _post(s, "/v2/models/nope/infer", json=SUM_BODY), 404,
     "model_not_found"),
    ("unknown route", lambda s: _post(s, "/v3/anything", json={}), 404, "not_found"),
    ("wrong method", lambda s: requests.delete(f"{s.url}/v2", headers=AUTH, timeout=10), 405,
     "method_not_allowed"),
    ("too large", lambda s: _post(s, "/v2/models/sum/infer", data=b" " * 8192), 413,
     "payload_too_large"),
    ("inflates past the limit", lambda s: _post(
        s, "/v2/models/sum/infer", data=gzip.compress(b" " * 65536),
        headers={"Content-Encoding": "gzip"}), 413, "payload_too_large"),
    ("xml", lambda s: _post(s, "/v2/models/sum/infer", data=b"<x/>",
     headers={"Content-Type": "application/xml"}), 415, "unsupported_media_type"),
    ("model raised", lambda s: _post(s, "/v2/models/failing/infer", json={
        "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [-1]}]}), 500,
     "model_error"),
    ("cannot explain", lambda s: _post(s, "/v2/models/sum/explain", json=SUM_BODY), 501,
     "not_implemented"),
]  # fmt: skip


@pytest.fixture(scope="module")
def error_schema(detailed: GunicornServer) -> dict[str, Any]:
    document = requests.get(f"{detailed.url}/openapi.json", headers=AUTH, timeout=10).json()
    return {"$ref": "#/components/schemas/Error", "components": document["components"]}


@pytest.mark.parametrize(("what", "send", "status", "reason"), CASES, ids=[c[0] for c in CASES])
def test_detailed_bodies_carry_the_status_and_the_reason(
    detailed: GunicornServer,
    error_schema: dict[str, Any],
    what: str,
    send: Any,
    status: int,
    reason: str,
) -> None:
    answer = send(detailed)
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    jsonschema.validate(body, error_schema)  # the document says what the server answers
    assert body["error"]["code"] == status
    assert body["error"]["details"] == {"reason": reason}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_tritonclient_reads_the_status_of_a_detailed_error(detailed: GunicornServer) -> None:
    client = httpclient.InferenceServerClient(detailed.url.removeprefix("http://"))
    with pytest.raises(InferenceServerException) as caught:
        client.get_model_metadata("nope", headers=AUTH)
    assert caught.value.status() == "404"
    assert "model 'nope' not found" in str(caught.value.message())
    assert client.get_model_metadata("sum", headers=AUTH)["name"] == "sum"


def test_every_reason_is_in_the_readme() -> None:
    """The README's Errors table lists every machine-readable reason a client may see."""

    def reasons(cls: type[errors.ModelportError]) -> set[str]:
        return {cls.reason}.union(*(reasons(sub) for sub in cls.__subclasses__()))

    readme = (ROOT / "README.md").read_text()
    every = reasons(errors.ModelportError) | {"not_found", "method_not_allowed"}
    assert sorted(r for r in every if f"`{r}`" not in readme) == []


def test_the_default_form_stays_a_string(tmp_path: Path, server: GunicornServer) -> None:
    answer = requests.get(f"{server.url}/v2/models/nope", timeout=10)
    assert answer.status_code == 404
    assert answer.json() == {"error": "model 'nope' not found"}
