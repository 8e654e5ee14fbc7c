"""What every REST view shares: the data plane accessor, body reading, JSON responses."""

from __future__ import annotations

from typing import Any, NamedTuple

from flask import Flask, Request, Response, current_app, request

from app.buffers import READINTO_BYTES, unfilled_bytearray
from app.codec.binary import HEADER_LENGTH, split_body
from app.codec.compression import choose_encoding, content_codings, decode_body, encode_body
from app.codec.rest import dumps, parse_infer_json, parse_json
from app.core import Modelport
from app.dataplane import DataPlane
from app.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from blueprints.answer import Answer

# Real callers send no Content-Type (tritonclient) or curl's form default (DESIGN §4): all JSON.
_JSON_TYPES = frozenset(
    {
        "",
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "text/json",
        "application/octet-stream",
        "application/cloudevents+json",
        "application/ld+json",
    }
)


#: A new response has no Vary to merge with.
_VARY = ("Vary", "Accept-Encoding")

_HEADER_LENGTH_KEY = "HTTP_" + HEADER_LENGTH.upper().replace("-", "_")


def dataplane() -> DataPlane:
    """The data plane of the app handling this request."""
    plane: DataPlane = current_app.extensions["modelport"].dataplane
    return plane


class Current(NamedTuple):
    """This request, its app's core and body limit, each looked up once.

    Every `request.x` or `current_app.x` is a context-variable lookup through a proxy; an
    inference view that asks for them once and passes them on makes five fewer (bench/,
    callgrind figures in the commit that made this).
    """

    request: Request
    core: Modelport
    limit: int


def current() -> Current:
    """The `Current` of the request being handled."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return Current(request._get_current_object(), app.extensions["modelport"], _limit(app))  # type: ignore[attr-defined]


def request_limit() -> int:
    """The most bytes a request body may hold, before and after decompression."""
    return _limit(current_app._get_current_object())  # type: ignore[attr-defined]


def _limit(app: Flask) -> int:
    limit = app.config.get("MAX_CONTENT_LENGTH")
    if limit is None:
        limit = app.extensions["modelport"].settings.server.limits.max_request_bytes
    return int(limit)


def read_body(now: Current | None = None) -> bytes | bytearray:
    """The request body, decompressed; refused (415) when declared as something JSON cannot be.

    `MAX_CONTENT_LENGTH` caps the body as sent (413); the decompressed size has the same cap.
    Raises `UnsupportedMediaType` for an explicitly non-JSON content type or an encoding this
    server does not decode, `PayloadTooLarge`, or `InvalidInput` for corrupt compressed data.
    """
    # Headers are read from the WSGI environ, which is what werkzeug's EnvironHeaders reads too:
    # every `request.x` is a context lookup, and they added up to a tenth of an iris request's
    # time in the app (bench/, cProfile).
    req, _, limit = now or current()
    environ = req.environ
    declared = environ.get("CONTENT_TYPE", "")
    mimetype = declared if declared in _JSON_TYPES else req.mimetype  # already in parsed form
    if mimetype not in _JSON_TYPES and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(f"content type '{mimetype}' is not supported; send JSON")
    codings = content_codings(environ.get("HTTP_CONTENT_ENCODING"))
    body = _raw_body(req, limit)
    return decode_body(body, codings, limit) if codings else body


def _raw_body(req: Request, limit: int) -> bytes | bytearray:
    """The body as sent, read in one call when its length is known.

    Werkzeug's `get_data` copies the body through 64 KiB reads and a bytearray: 3-4 times slower
    than one `read(Content-Length)` on gunicorn's input for a 64 MiB tensor (measured), so the
    limit that `MAX_CONTENT_LENGTH` would check is checked here. A body without a length
    (chunked) goes through werkzeug, which enforces the limit while it reads.

    A large body goes into a bytearray by the input's `readinto` where it has one (Modelport's
    httptools worker): received there straight from the socket, it is never copied in user
    space; every reader of the body (orjson, simdjson, numpy, the decompressors) takes either.
    """
    length = req.content_length
    if length is None:
        return req.get_data(cache=False)
    if length > limit:
        raise PayloadTooLarge(
            f"request body is larger than limits.max_request_bytes ({length} > {limit} bytes)"
        )
    stream = req.environ["wsgi.input"]
    body: bytes | bytearray
    if length >= READINTO_BYTES and hasattr(stream, "readinto"):
        body = unfilled_bytearray(length)  # every byte is received into it, or it is refused
        received = stream.readinto(body)
    else:
        body = stream.read(length) if length else b""
        received = len(body)
    if received != length:
        raise InvalidInput(f"request body ended after {received} of {length} bytes")
    return body


def read_json(allow_empty: bool = False) -> Any:
    """The request body parsed as JSON ({} for an empty body where `allow_empty`)."""
    body = read_body()
    if allow_empty and not body.strip():
        return {}
    return parse_json(body)


def read_infer_body(
    now: Current | None = None, numbers: bool = False
) -> tuple[Any, memoryview | None]:
    """An inference body: its JSON, and the binary tensor data after it (None when there is none).

    `numbers`: a large JSON body's float tensor `data` may come as `JsonNumbers`
    (`parse_infer_json`); for the `/infer` views, whose bodies only `app.codec.forms` reads.

    A body is binary exactly when `Inference-Header-Content-Length` is sent, whatever the content
    type says: tritonclient sends none, kserve's client `application/octet-stream`. The binary
    part is a view of the body, so tensors read from it are not copied.
    """
    now = now or current()
    body = read_body(now)
    header = now.request.environ.get(_HEADER_LENGTH_KEY)
    if header is None:
        return (parse_infer_json(body) if numbers else parse_json(body)), None
    head, binary = split_body(body, header)
    return parse_json(bytes(head)), binary


def infer_response(body: bytes, json_length: int | None, req: Request | None = None) -> Response:
    """An inference answer, compressed whole when the client's `Accept-Encoding` asks for it.

    With binary outputs (`json_length` set) it is `application/octet-stream` with
    `Inference-Header-Content-Length`; that length stays the uncompressed JSON's, because
    tritonclient decompresses the whole body before it splits it.
    """
    if json_length is None:
        response = Answer(body, "application/json", [_VARY])
    else:
        extra = [_VARY, (HEADER_LENGTH, str(json_length))]
        response = Answer(body, "application/octet-stream", extra)
    environ = (req or request).environ
    coding = choose_encoding(environ.get("HTTP_ACCEPT_ENCODING"))
    if coding is not None:
        response.set_data(encode_body(body, coding))
        response.headers["Content-Encoding"] = coding
    return response


def json_response(payload: Any, status: int = 200) -> Response:
    """A JSON response written by orjson."""
    return Response(dumps(payload), status=status, mimetype="application/json")


def raw_json_response(body: bytes, status: int = 200) -> Response:
    """A response whose JSON body is already serialized."""
    return Response(body, status=status, mimetype="application/json")
