"""Malformed binary-extension and compressed requests against a real gunicorn: 4xx, JSON, still up.

Each case is one body as a hostile or buggy client would send it. Every length, offset and size is
checked before anything is read, so each answer is a 4xx whose message names what is wrong.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest
import requests

from tests.server import HTTP_WORKER_CLASSES, GunicornServer


@pytest.fixture(scope="module", params=HTTP_WORKER_CLASSES)
def server(request: pytest.FixtureRequest) -> Iterator[GunicornServer]:
    """The e2e config on each HTTP worker class: every malformed body meets its body reading."""
    with GunicornServer(workers=1, worker_class=request.param) as running:
        yield running


pytestmark = pytest.mark.e2e

ECHO = "/v2/models/echo/infer"
HEADER = "Inference-Header-Content-Length"
FOUR_FLOATS = np.arange(4, dtype="<f4").tobytes()


def tensor(name: str = "x", datatype: str = "FP32", shape: Any = (4,), **parameters: Any) -> dict:
    """One input header; `binary_data_size` and friends go in `parameters`."""
    item: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(shape)}
    if parameters:
        item["parameters"] = parameters
    return item


def body(inputs: list[dict], binary: bytes = b"", length: Any = None, **envelope: Any) -> tuple:
    """(body, headers): the JSON header, then `binary`; `length` overrides the header value."""
    header = orjson.dumps({"inputs": inputs, **envelope})
    value = str(len(header)) if length is None else str(length)
    return header + binary, {HEADER: value}


def bytes_elements(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


GOOD_HEADER = orjson.dumps({"inputs": [tensor(binary_data_size=16)]})
BOMB = gzip.compress(b"\0" * (9 * 1024 * 1024))  # 9 MiB of zeros in ~9 KiB: past the 8 MiB cap

# (id, (body, headers), status, words the message must contain)
CASES: list[tuple[str, tuple[bytes, dict[str, str]], int, str]] = [
    ("header-not-int", body([tensor(binary_data_size=16)], FOUR_FLOATS, "abc"), 400, "byte count"),
    ("header-negative", body([tensor(binary_data_size=16)], FOUR_FLOATS, -3), 400, "byte count"),
    ("header-float", body([tensor(binary_data_size=16)], FOUR_FLOATS, "10.5"), 400, "byte count"),
    ("header-huge", body([tensor(binary_data_size=16)], FOUR_FLOATS, "9" * 30), 400, "byte count"),
    ("header-past-end", body([tensor(binary_data_size=16)], FOUR_FLOATS, 10**6), 400, "only"),
    ("header-zero-raw", body([tensor(binary_data_size=16)], FOUR_FLOATS, 0), 400, "raw binary"),
    (
        "header-cuts-json",
        (GOOD_HEADER + FOUR_FLOATS, {HEADER: str(len(GOOD_HEADER) - 3)}),
        400,
        "not valid JSON",
    ),
    (
        "size-past-end",
        body([tensor(binary_data_size=16)], FOUR_FLOATS[:12]),
        400,
        "input 'x': binary_data_size is 16 but only 12",
    ),
    (
        "size-not-shape",
        body([tensor(binary_data_size=12)], FOUR_FLOATS[:12]),
        400,
        "input 'x': binary_data_size is 12 but FP32 shape [4] needs 16",
    ),
    (
        "size-not-int",
        body([tensor(binary_data_size="16")], FOUR_FLOATS),
        400,
        "input 'x': binary_data_size must be a non-negative integer",
    ),
    (
        "size-negative",
        body([tensor(binary_data_size=-16)], FOUR_FLOATS),
        400,
        "input 'x': binary_data_size must be a non-negative integer",
    ),
    (
        "size-bool",
        body([tensor(binary_data_size=True)], FOUR_FLOATS),
        400,
        "input 'x': binary_data_size must be",
    ),
    (
        "size-float",
        body([tensor(binary_data_size=16.0)], FOUR_FLOATS),
        400,
        "input 'x': binary_data_size must be",
    ),
    (
        "leftover-bytes",
        body([tensor(binary_data_size=16)], FOUR_FLOATS + b"\0\0"),
        400,
        "2 bytes of binary data are left over",
    ),
    (
        "sizes-do-not-add-up",
        body([tensor("a", binary_data_size=16), tensor("b", binary_data_size=16)], FOUR_FLOATS),
        400,
        "input 'b': binary_data_size is 16 but only 0",
    ),
    (
        "data-and-size",
        body([{**tensor(binary_data_size=16), "data": [1, 2, 3, 4]}], FOUR_FLOATS),
        400,
        "input 'x' sets both 'data' and 'binary_data_size'",
    ),
    (
        "neither-data-nor-size",
        body([tensor(), tensor("y", binary_data_size=16)], FOUR_FLOATS),
        400,
        "input 'x' has no 'data' and no 'binary_data_size'",
    ),
    (
        "shared-memory",
        body([tensor(shared_memory_region="r0", shared_memory_byte_size=16)]),
        400,
        "input 'x': shared memory ('shared_memory_region') is not supported",
    ),
    (
        "bytes-length-past-buffer",
        body([tensor("s", "BYTES", (1,), binary_data_size=8)], struct.pack("<I", 1000) + b"abcd"),
        400,
        "input 's': BYTES element 0 has length 1000",
    ),
    (
        "bytes-leftover-in-section",
        body([tensor("s", "BYTES", (1,), binary_data_size=7)], bytes_elements(b"ab") + b"z"),
        400,
        "input 's': 1 bytes left over after 1 BYTES elements",
    ),
    (
        "bytes-too-few-elements",
        body([tensor("s", "BYTES", (3,), binary_data_size=10)], bytes_elements(b"ab") + b"\0" * 4),
        400,
        "input 's': binary_data_size 10 is too small for 3 BYTES elements",
    ),
    (
        "size-without-header",
        (orjson.dumps({"inputs": [tensor(binary_data_size=16)]}), {}),
        400,
        "has no Inference-Header-Content-Length",
    ),
    (
        "unknown-datatype",
        body([tensor(datatype="FP128", binary_data_size=16)], FOUR_FLOATS),
        400,
        "input 'x': unknown datatype 'FP128'",
    ),
    (
        "bf16",
        body([tensor(datatype="BF16", binary_data_size=8)], b"\0" * 8),
        400,
        "'BF16' is not supported",
    ),
    (
        "bool-not-0-or-1",
        body([tensor(datatype="BOOL", shape=(2,), binary_data_size=2)], b"\x01\x02"),
        400,
        "input 'x': BOOL bytes must be 0 or 1",
    ),
    (
        "negative-shape",
        body([tensor(shape=(-1, 4), binary_data_size=16)], FOUR_FLOATS),
        400,
        "shape",
    ),
    (
        "output-shared-memory",
        body(
            [tensor(binary_data_size=16)],
            FOUR_FLOATS,
            outputs=[{"name": "x", "parameters": {"shared_memory_region": "r0"}}],
        ),
        400,
        "output 'x': shared memory ('shared_memory_region') is not supported",
    ),
    (
        "output-flag-not-bool",
        body(
            [tensor(binary_data_size=16)],
            FOUR_FLOATS,
            outputs=[{"name": "x", "parameters": {"binary_data": "yes"}}],
        ),
        400,
        "output 'x': 'binary_data' must be true or false",
    ),
    (
        "binary-data-output-not-bool",
        body([tensor(binary_data_size=16)], FOUR_FLOATS, parameters={"binary_data_output": 1}),
        400,
        "'binary_data_output' must be true or false",
    ),
    (
        "rows-with-binary",
        (
            orjson.dumps({"inputs": [[1, 2]]}) + b"\0" * 4,
            {HEADER: str(len(orjson.dumps({"inputs": [[1, 2]]})))},
        ),
        400,
        "4 bytes of binary data follow the JSON header",
    ),
    (
        "gzip-corrupt",
        (b"\x1f\x8b\x08\x00garbage-not-deflate", {"Content-Encoding": "gzip"}),
        400,
        "not valid gzip",
    ),
    (
        "gzip-truncated",
        (gzip.compress(orjson.dumps({"inputs": []}))[:-12], {"Content-Encoding": "gzip"}),
        400,
        "truncated gzip",
    ),
    (
        "deflate-trailing-garbage",
        (zlib.compress(orjson.dumps({"inputs": []})) + b"junk", {"Content-Encoding": "deflate"}),
        400,
        "after the end of its deflate data",
    ),
    ("gzip-bomb", (BOMB, {"Content-Encoding": "gzip"}), 413, "decompressed request body"),
    (
        "binary-over-the-limit",
        body([tensor(shape=(3 * 2**20,), binary_data_size=12 * 2**20)], b"\0" * (12 * 2**20)),
        413,
        "larger than limits.max_request_bytes",
    ),
    ("unknown-encoding", (b"{}", {"Content-Encoding": "zstd"}), 415, "'zstd' is not supported"),
]


@pytest.mark.parametrize(
    ("request_", "status", "words"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_binary_request(
    server: GunicornServer,
    request_: tuple[bytes, dict[str, str]],
    status: int,
    words: str,
) -> None:
    data, headers = request_
    response = requests.post(server.url + ECHO, data=data, headers=headers, timeout=30)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert "Content-Encoding" not in response.headers  # tritonclient reads errors uncompressed
    error = response.json()["error"]
    assert isinstance(error, str) and words in error, error
    if status == 415:
        assert response.headers["Accept-Encoding"] == "gzip, deflate"


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 15


def test_server_is_still_ready_and_serving_binary_after_the_table(server: GunicornServer) -> None:
    assert requests.get(server.url + "/v2/health/ready", timeout=10).status_code == 200
    data, headers = body([tensor(binary_data_size=16)], FOUR_FLOATS)
    response = requests.post(server.url + ECHO, data=data, headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.json()["outputs"][0]["data"] == [0.0, 1.0, 2.0, 3.0]
