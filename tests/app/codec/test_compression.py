"""gzip and deflate request bodies and responses: the codec, then the infer view (Flask client)."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import orjson
import pytest
from flask.testing import FlaskClient

from app.codec.binary import HEADER_LENGTH
from app.codec.compression import choose_encoding, content_codings, decode_body, encode_body
from app.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

PAYLOAD = orjson.dumps(
    {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3], "data": [1.5, 2.5, 3.5]}]}
)
ECHO = "/v2/models/echo/infer"


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


# -- decoding ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "codings"),
    [
        (None, []),
        ("", []),
        ("identity", []),
        ("GZIP", ["gzip"]),
        ("x-gzip", ["gzip"]),
        ("deflate", ["deflate"]),
        ("deflate, gzip", ["deflate", "gzip"]),
        (" gzip , identity ", ["gzip"]),
    ],
)
def test_content_codings(header: str | None, codings: list[str]) -> None:
    assert content_codings(header) == codings


@pytest.mark.parametrize("header", ["br", "zstd", "gzip, compress"])
def test_unknown_codings_are_415(header: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="is not supported; use gzip, deflate"):
        content_codings(header)


@pytest.mark.parametrize(
    "encode",
    [
        gzip.compress,
        zlib.compress,
        raw_deflate,
        lambda d: gzip.compress(d[:10]) + gzip.compress(d[10:]),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw", "gzip-two-members"],
)
def test_decode_body(encode) -> None:
    coding = "deflate" if encode in (zlib.compress, raw_deflate) else "gzip"
    assert decode_body(encode(PAYLOAD), [coding], 1 << 20) == PAYLOAD


def test_codings_are_undone_in_reverse_order() -> None:
    body = gzip.compress(zlib.compress(PAYLOAD))
    assert decode_body(body, content_codings("deflate, gzip"), 1 << 20) == PAYLOAD


def test_the_limit_is_on_the_decompressed_size() -> None:
    data = b"\0" * 100_000
    assert decode_body(gzip.compress(data), ["gzip"], len(data)) == data
    with pytest.raises(PayloadTooLarge, match="decompressed request body is larger"):
        decode_body(gzip.compress(data), ["gzip"], len(data) - 1)


def test_a_bomb_stops_at_the_cap_without_inflating_everything() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB in about 64 KiB
    assert len(bomb) < 100 * 1024
    with pytest.raises(PayloadTooLarge):
        decode_body(bomb, ["gzip"], 1024 * 1024)


@pytest.mark.parametrize(
    ("body", "coding", "words"),
    [
        (gzip.compress(PAYLOAD)[:-6], "gzip", "truncated gzip"),
        (b"\x1f\x8b\x08\x00" + b"\0" * 6 + b"\xff" * 20, "gzip", "not valid gzip"),
        (gzip.compress(PAYLOAD) + b"\x00junk", "gzip", "not valid gzip"),
        (zlib.compress(PAYLOAD) + b"junk", "deflate", "after the end of its deflate data"),
        (b"plain text, never compressed", "deflate", "not valid deflate"),
    ],
)
def test_corrupt_bodies_are_400(body: bytes, coding: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        decode_body(body, [coding], 1 << 20)


# -- choosing and encoding the response ----------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        (None, None),
        ("", None),
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("GZip", "gzip"),
        ("deflate, gzip", "gzip"),  # a tie goes to gzip
        ("gzip;q=0.5, deflate", "deflate"),
        ("gzip;q=0.5, deflate;q=0.6", "deflate"),
        ("identity;q=1, gzip;q=0.5", None),
        ("identity;q=0.1, gzip;q=0.5", "gzip"),
        ("gzip;q=0", None),
        ("*", "gzip"),
        ("*;q=0.3, gzip;q=0", "deflate"),
        ("br, zstd", None),
        ("gzip;q=abc, deflate;q=0.1", "deflate"),
        ("gzip;q=2", None),
        ("gzip, deflate, br", "gzip"),  # what requests and httpx send by default
    ],
)
def test_choose_encoding(accept: str | None, coding: str | None) -> None:
    assert choose_encoding(accept) == coding


def test_encode_body_is_what_tritonclient_decodes() -> None:
    assert gzip.decompress(encode_body(PAYLOAD, "gzip")) == PAYLOAD
    assert zlib.decompress(encode_body(PAYLOAD, "deflate")) == PAYLOAD  # zlib-wrapped


# -- the infer view ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("coding", "encode"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", raw_deflate)],
)
def test_compressed_requests_answer_like_plain_ones(
    client: FlaskClient, coding: str, encode
) -> None:
    plain = client.post(ECHO, data=PAYLOAD)
    compressed = client.post(ECHO, data=encode(PAYLOAD), headers={"Content-Encoding": coding})
    assert compressed.status_code == 200, compressed.json
    assert compressed.json["outputs"] == plain.json["outputs"]


def test_compressed_binary_request(client: FlaskClient) -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "INT16",
                    "shape": [2],
                    "parameters": {"binary_data_size": 4},
                }
            ]
        }
    )
    body = header + np.array([-3, 9], dtype="<i2").tobytes()
    response = client.post(
        ECHO,
        data=gzip.compress(body),
        headers={"Content-Encoding": "gzip", HEADER_LENGTH: str(len(header))},
    )
    assert response.status_code == 200 and response.json["outputs"][0]["data"] == [-3, 9]


def test_a_bomb_is_413_not_out_of_memory(client: FlaskClient) -> None:
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))  # the e2e config's limit is 8 MiB
    response = client.post(ECHO, data=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "decompressed request body" in response.json["error"]


def test_unknown_encoding_is_415_with_accept_encoding(client: FlaskClient) -> None:
    response = client.post(ECHO, data=PAYLOAD, headers={"Content-Encoding": "br"})
    assert response.status_code == 415
    assert response.headers["Accept-Encoding"] == "gzip, deflate"
    assert "'br' is not supported" in response.json["error"]


def test_compressed_json_response(client: FlaskClient) -> None:
    response = client.post(ECHO, data=PAYLOAD, headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert response.mimetype == "application/json"
    document = orjson.loads(gzip.decompress(response.get_data()))
    assert document["outputs"][0]["data"] == [1.5, 2.5, 3.5]


def test_compressed_binary_response_keeps_the_uncompressed_header_length(
    client: FlaskClient,
) -> None:
    request = orjson.loads(PAYLOAD) | {"parameters": {"binary_data_output": True}}
    response = client.post(ECHO, json=request, headers={"Accept-Encoding": "deflate"})
    assert response.headers["Content-Encoding"] == "deflate"
    body = zlib.decompress(response.get_data())
    length = int(response.headers[HEADER_LENGTH])
    assert orjson.loads(body[:length])["outputs"][0]["parameters"] == {"binary_data_size": 12}
    assert body[length:] == np.array([1.5, 2.5, 3.5], dtype="<f4").tobytes()


def test_errors_are_never_compressed(client: FlaskClient) -> None:
    response = client.post(ECHO, data=b"{", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 400
    assert "Content-Encoding" not in response.headers
    assert "not valid JSON" in response.json["error"]
