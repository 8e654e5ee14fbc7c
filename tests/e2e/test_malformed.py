"""Malformed REST requests against a real gunicorn: the right 4xx, a JSON error, still ready."""

from __future__ import annotations

import orjson
import pytest
import requests

from tests.server import GunicornServer

pytestmark = pytest.mark.e2e

ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]


def tensor(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": ROWS}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not DROP}


DROP = object()
JSON = {"Content-Type": "application/json"}
V2 = "/v2/models/iris/infer"
V1 = "/v1/models/iris:predict"

# (id, method, path, body (bytes or a JSON-able object), headers, status, words in the message)
CASES = [
    ("v2-bad-json", "POST", V2, b"{bad", {}, 400, "not valid JSON"),
    ("v2-empty-body", "POST", V2, b"", {}, 400, "empty"),
    ("v2-array-body", "POST", V2, [], {}, 400, "JSON object"),
    ("v2-string-body", "POST", V2, "x", {}, 400, "JSON object"),
    ("v2-no-inputs-key", "POST", V2, {}, {}, 400, "inputs: Missing data"),
    ("v2-inputs-not-list", "POST", V2, {"inputs": 5}, {}, 400, "inputs: Not a valid list"),
    ("v2-inputs-empty", "POST", V2, {"inputs": []}, {}, 400, "empty"),
    ("v2-no-name", "POST", V2, {"inputs": [tensor(name=DROP)]}, {}, 400, "0.name: Missing"),
    ("v2-no-shape", "POST", V2, {"inputs": [tensor(shape=DROP)]}, {}, 400, "0.shape: Missing"),
    ("v2-no-datatype", "POST", V2, {"inputs": [tensor(datatype=DROP)]}, {}, 400, "datatype"),
    ("v2-no-data", "POST", V2, {"inputs": [tensor(data=DROP)]}, {}, 400, "has no 'data'"),
    ("v2-shape-not-list", "POST", V2, {"inputs": [tensor(shape="2")]}, {}, 400, "shape"),
    ("v2-shape-floats", "POST", V2, {"inputs": [tensor(shape=[2.0, 4])]}, {}, 400, "shape"),
    ("v2-negative-shape", "POST", V2, {"inputs": [tensor(shape=[-2, 4])]}, {}, 400, "shape"),
    ("v2-huge-shape", "POST", V2, {"inputs": [tensor(shape=[10**9, 10**9])]}, {}, 400, "elements"),
    ("v2-shape-data-mismatch", "POST", V2, {"inputs": [tensor(shape=[3, 4])]}, {}, 400, "needs 12"),
    ("v2-unknown-datatype", "POST", V2, {"inputs": [tensor(datatype="FP8")]}, {}, 400, "FP8"),
    ("v2-bf16", "POST", V2, {"inputs": [tensor(datatype="BF16")]}, {}, 400, "BF16"),
    (
        "v2-wrong-datatype",
        "POST",
        V2,
        {"inputs": [tensor(datatype="FP64")]},
        {},
        400,
        "expected FP32, got FP64",
    ),
    (
        "v2-strings-as-floats",
        "POST",
        V2,
        {"inputs": [tensor(data=[["a"] * 4] * 2)]},
        {},
        400,
        "FP32",
    ),
    (
        "v2-ragged-data",
        "POST",
        V2,
        {"inputs": [tensor(data=[[1, 2, 3, 4], [1]])]},
        {},
        400,
        "regular",
    ),
    (
        "v2-wrong-width",
        "POST",
        V2,
        {"inputs": [tensor(shape=[2, 3], data=[1] * 6)]},
        {},
        400,
        "does not match",
    ),
    ("v2-two-inputs", "POST", V2, {"inputs": [tensor(), tensor(name="b")]}, {}, 400, "one input"),
    (
        "v2-unknown-output",
        "POST",
        V2,
        {"inputs": [tensor()], "outputs": [{"name": "nope"}]},
        {},
        400,
        "no output 'nope'",
    ),
    (
        "v2-outputs-not-list",
        "POST",
        V2,
        {"inputs": [tensor()], "outputs": {"name": "x"}},
        {},
        400,
        "outputs",
    ),
    (
        "v2-parameters-not-object",
        "POST",
        V2,
        {"inputs": [tensor()], "parameters": [1]},
        {},
        400,
        "parameters",
    ),
    ("v2-id-not-string", "POST", V2, {"inputs": [tensor()], "id": 5}, {}, 400, "id"),
    ("v2-mixed-forms", "POST", V2, {"inputs": [ROWS[0], tensor()]}, {}, 400, "mixes"),
    (
        "v2-unknown-model",
        "POST",
        "/v2/models/nope/infer",
        {"inputs": [tensor()]},
        {},
        404,
        "model 'nope' not found",
    ),
    (
        "v2-unknown-version",
        "POST",
        "/v2/models/iris/versions/9/infer",
        {"inputs": [tensor()]},
        {},
        404,
        "version '9' not found",
    ),
    (
        "v2-broken-model",
        "POST",
        "/v2/models/broken/infer",
        {"inputs": [tensor()]},
        {},
        503,
        "not ready",
    ),
    ("v2-xml", "POST", V2, b"<inputs/>", {"Content-Type": "application/xml"}, 415, "xml"),
    (
        "v2-multipart",
        "POST",
        V2,
        b"--x--",
        {"Content-Type": "multipart/form-data; boundary=x"},
        415,
        "multipart",
    ),
    (
        "v2-unknown-encoding",
        "POST",
        V2,
        {"inputs": [tensor()]},
        {"Content-Encoding": "br"},
        415,
        "br",
    ),
    ("v2-oversized", "POST", V2, b"[" + b"1," * (5 * 1024 * 1024) + b"1]", {}, 413, "larger"),
    ("v2-get-on-infer", "GET", V2, None, {}, 405, "not allowed"),
    (
        "v2-infer-dict-not-objects",
        "POST",
        "/v2/models/iris/infer_dict",
        {"inputs": [[1, 2]]},
        {},
        400,
        "row 0 is not an object",
    ),
    (
        "v2-repository-index-bad-ready",
        "POST",
        "/v2/repository/index",
        {"ready": "maybe"},
        {},
        400,
        "ready",
    ),
    ("v2-unload-unknown", "POST", "/v2/repository/models/nope/unload", b"", {}, 404, "nope"),
    ("v1-bad-json", "POST", V1, b"{", JSON, 400, "not valid JSON"),
    ("v1-empty-object", "POST", V1, {}, JSON, 400, "instances"),
    ("v1-instances-not-list", "POST", V1, {"instances": 5}, JSON, 400, "to be a list"),
    ("v1-instances-empty", "POST", V1, {"instances": []}, JSON, 400, "empty"),
    ("v1-ragged", "POST", V1, {"instances": [[1, 2, 3, 4], [1]]}, JSON, 400, "equal length"),
    ("v1-strings", "POST", V1, {"instances": [["a", "b", "c", "d"]]}, JSON, 400, "numbers"),
    ("v1-objects", "POST", V1, {"instances": [{"a": 1}]}, JSON, 400, "numbers or strings"),
    ("v1-wrong-width", "POST", V1, {"instances": [[1, 2, 3]]}, JSON, 400, "does not match"),
    ("v1-unknown-model", "POST", "/v1/models/nope:predict", {"instances": ROWS}, JSON, 404, "nope"),
    (
        "v1-broken-model",
        "POST",
        "/v1/models/broken:predict",
        {"instances": ROWS},
        JSON,
        503,
        "not ready",
    ),
    ("v1-post-on-status", "POST", "/v1/models/iris", {"instances": ROWS}, JSON, 405, "POST"),
    ("unknown-route", "GET", "/v3/models", None, {}, 404, "no route"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_malformed_request(
    server: GunicornServer,
    method: str,
    path: str,
    body: object,
    headers: dict[str, str],
    status: int,
    words: str,
) -> None:
    data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
    response = requests.request(method, server.url + path, data=data, headers=headers, timeout=10)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error, str) and words in error
    assert "Traceback" not in error


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 30


def test_server_is_still_ready_and_serving_after_the_table(server: GunicornServer) -> None:
    assert requests.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
    answer = requests.post(f"{server.url}{V1}", json={"instances": ROWS}, timeout=5)
    assert answer.json() == {"predictions": [1, 1]}
