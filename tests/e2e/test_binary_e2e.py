"""tritonclient.http against a real gunicorn: binary tensors and compression give the JSON answers.

tritonclient sends binary inputs and asks for binary outputs by default; these tests drive it with
its defaults, with `binary_data=False`, with mixed inputs, and with request and response
compression, and compare every answer with the JSON path's for every datatype.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests
import tritonclient.http as httpclient
from tritonclient.utils import np_to_triton_dtype

from app.codec.binary import HEADER_LENGTH
from tests.server import HTTP_WORKER_CLASSES, GunicornServer

pytestmark = pytest.mark.e2e

ARRAYS: dict[str, np.ndarray] = {
    "BOOL": np.array([[True, False], [False, True]]),
    "UINT8": np.array([[0, 255]], dtype=np.uint8),
    "UINT16": np.array([[0, 65535]], dtype=np.uint16),
    "UINT32": np.array([[0, 2**32 - 1]], dtype=np.uint32),
    "UINT64": np.array([[0, 2**64 - 1]], dtype=np.uint64),
    "INT8": np.array([[-128, 127]], dtype=np.int8),
    "INT16": np.array([[-(2**15), 2**15 - 1]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 2**31 - 1]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 2**63 - 1]], dtype=np.int64),
    "FP16": np.array([[0.5, -2.25], [65504, 1e-3]], dtype=np.float16),
    "FP32": np.array([[1.5, -3.25e10, 7e-39]], dtype=np.float32),
    "FP64": np.array([[1e-300, -2.5e300]], dtype=np.float64),
    "BYTES": np.array([[b"hello", "h\u00e9llo".encode()], [b"", b"x" * 300]], dtype=np.object_),
}

# name -> infer() keyword arguments, plus whether inputs and outputs travel in binary.
MODES: dict[str, tuple[dict[str, Any], bool, bool]] = {
    "defaults": ({}, True, True),
    "binary-in-json-out": ({}, True, False),
    "json-in-binary-out": ({}, False, True),
    "gzip-request": ({"request_compression_algorithm": "gzip"}, True, True),
    "deflate-request": ({"request_compression_algorithm": "deflate"}, True, True),
    "gzip-response": ({"response_compression_algorithm": "gzip"}, True, True),
    "deflate-response": ({"response_compression_algorithm": "deflate"}, True, True),
    "gzip-both-json": (
        {"request_compression_algorithm": "gzip", "response_compression_algorithm": "gzip"},
        False,
        False,
    ),
    "deflate-both": (
        {"request_compression_algorithm": "deflate", "response_compression_algorithm": "deflate"},
        True,
        True,
    ),
}


@pytest.fixture(scope="module", params=HTTP_WORKER_CLASSES)
def server(request: pytest.FixtureRequest) -> Iterator[GunicornServer]:
    """The e2e config on each HTTP worker class: binary bodies, compression and their errors
    travel through the worker's body reading and response writing."""
    with GunicornServer(workers=1, worker_class=request.param) as running:
        yield running


@pytest.fixture(scope="module")
def triton(server: GunicornServer) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    yield client
    client.close()


def make_input(name: str, array: np.ndarray, binary: bool) -> httpclient.InferInput:
    tensor = httpclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def as_bytes(array: np.ndarray) -> list[bytes]:
    """BYTES come back as `bytes` in binary and `str` in JSON: compare them as bytes."""
    return [item if isinstance(item, bytes) else str(item).encode() for item in array.ravel()]


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    if want.dtype == np.object_:
        assert as_bytes(got) == as_bytes(want)
    else:
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("datatype", list(ARRAYS))
def test_echo_answers_like_the_json_path(
    triton: httpclient.InferenceServerClient, datatype: str, mode: str
) -> None:
    array = ARRAYS[datatype]
    reference = triton.infer(
        "echo",
        [make_input("x", array, binary=False)],
        outputs=[httpclient.InferRequestedOutput("x", binary_data=False)],
    ).as_numpy("x")
    assert_same(reference, array)

    options, binary_in, binary_out = MODES[mode]
    outputs = None if mode == "defaults" else [httpclient.InferRequestedOutput("x", binary_out)]
    result = triton.infer("echo", [make_input("x", array, binary_in)], outputs=outputs, **options)
    assert_same(result.as_numpy("x"), reference)
    parameters = result.get_output("x").get("parameters", {})
    assert ("binary_data_size" in parameters) is binary_out


def test_json_and_binary_inputs_in_one_request(triton: httpclient.InferenceServerClient) -> None:
    inputs = [
        make_input("a", ARRAYS["FP32"], binary=True),
        make_input("b", ARRAYS["INT64"], binary=False),
        make_input("c", ARRAYS["BYTES"], binary=True),
        make_input("d", ARRAYS["FP16"], binary=False),
    ]
    outputs = [
        httpclient.InferRequestedOutput("d", binary_data=True),
        httpclient.InferRequestedOutput("c", binary_data=False),
        httpclient.InferRequestedOutput("b", binary_data=True),
        httpclient.InferRequestedOutput("a", binary_data=False),
    ]
    result = triton.infer("echo", inputs, outputs=outputs, request_compression_algorithm="gzip")
    assert [o["name"] for o in result.get_response()["outputs"]] == ["d", "c", "b", "a"]
    for name, datatype in zip("abcd", ["FP32", "INT64", "BYTES", "FP16"], strict=True):
        assert_same(result.as_numpy(name), ARRAYS[datatype])


def test_bytes_that_are_not_utf8_travel_in_binary(
    triton: httpclient.InferenceServerClient,
) -> None:
    array = np.array([b"\xff\xfe\x00", b"\x80"], dtype=np.object_)
    result = triton.infer("echo", [make_input("x", array, binary=True)])
    assert result.as_numpy("x").tolist() == array.tolist()


@pytest.mark.parametrize("model", ["iris", "iris-xgboost", "iris-lightgbm", "iris-onnx"])
def test_runtimes_answer_binary_requests_like_json_ones(
    triton: httpclient.InferenceServerClient, model: str
) -> None:
    rows = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2]])
    rows = rows.astype(np.float32)
    outputs = triton.get_model_metadata(model)["outputs"]
    json_answer = triton.infer(
        model,
        [make_input("input-0", rows, binary=False)],
        outputs=[httpclient.InferRequestedOutput(o["name"], binary_data=False) for o in outputs],
    )
    # A request id shifts the binary section to an odd offset: unaligned views must work too.
    binary_answer = triton.infer(
        model,
        [make_input("input-0", rows, binary=True)],
        outputs=[httpclient.InferRequestedOutput(o["name"]) for o in outputs],
        request_id="odd",
    )
    for output in outputs:
        np.testing.assert_allclose(
            binary_answer.as_numpy(output["name"]), json_answer.as_numpy(output["name"]), 1e-6
        )


def test_binary_response_headers(server: GunicornServer) -> None:
    request: dict[str, Any] = {
        "inputs": [{"name": "x", "datatype": "INT32", "shape": [2], "data": [1, 2]}],
        "parameters": {"binary_data_output": True},
    }
    answer = requests.post(
        f"{server.url}/v2/models/echo/infer",
        json=request,
        headers={"Accept-Encoding": "identity"},
        timeout=10,
    )
    assert answer.headers["Content-Type"] == "application/octet-stream"
    length = int(answer.headers[HEADER_LENGTH])
    assert answer.content[length:] == np.array([1, 2], dtype="<i4").tobytes()
    assert "Content-Encoding" not in answer.headers


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("deflate;q=0.4, gzip;q=0.2", "deflate"),
        ("identity;q=1, gzip;q=0.5", None),
        ("gzip;q=0, deflate;q=0", None),
        ("br", None),
    ],
)
def test_response_encoding_follows_accept_encoding(
    server: GunicornServer, accept: str, coding: str | None
) -> None:
    request: dict[str, Any] = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [3], "data": [1, 2, 3]}],
        "parameters": {"binary_data_output": True},
    }
    answer = requests.post(
        f"{server.url}/v2/models/echo/infer",
        json=request,
        headers={"Accept-Encoding": accept},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.headers.get("Content-Encoding") == coding
    # requests undoes the coding; the header length describes the uncompressed layout.
    length = int(answer.headers[HEADER_LENGTH])
    assert answer.content[length:] == np.array([1, 2, 3], dtype="<f4").tobytes()
    assert answer.content[:length].startswith(b'{"model_name"')


LARGE_LIMIT = 200 * 1024 * 1024


@pytest.fixture(scope="module", params=HTTP_WORKER_CLASSES)
def large_server(request: pytest.FixtureRequest) -> Iterator[GunicornServer]:
    """A server whose request limit is raised past 64 MiB (the e2e default is 8 MiB)."""
    env = {"MODELPORT_MAX_REQUEST_BYTES": str(LARGE_LIMIT)}
    with GunicornServer(workers=1, env=env, worker_class=request.param) as running:
        yield running


def _large_client(server: GunicornServer) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(
        server.url.removeprefix("http://"), connection_timeout=120, network_timeout=120
    )


def test_a_64_mib_fp32_tensor_round_trips(large_server: GunicornServer) -> None:
    matrix = np.random.default_rng(3).random((4096, 4096), dtype=np.float32)
    assert matrix.nbytes == 64 * 1024 * 1024
    client = _large_client(large_server)
    try:
        echoed = client.infer("echo", [make_input("x", matrix, binary=True)])
        np.testing.assert_array_equal(echoed.as_numpy("x"), matrix)
        summed = client.infer("sum", [make_input("input-0", matrix, binary=True)])
        np.testing.assert_allclose(summed.as_numpy("sum"), matrix.sum(axis=1), rtol=1e-5)
    finally:
        client.close()
    # A fresh client: gzip-compressing 64 MiB takes about as long as gunicorn's keep-alive
    # (5 s), and tritonclient never retries a POST on a connection closed under it.
    client = _large_client(large_server)
    try:
        compressed = client.infer(
            "sum", [make_input("input-0", matrix, True)], request_compression_algorithm="gzip"
        )
        np.testing.assert_array_equal(compressed.as_numpy("sum"), summed.as_numpy("sum"))
    finally:
        client.close()
    assert requests.get(large_server.url + "/v2/health/ready", timeout=10).status_code == 200
