"""What every REST view shares: the data plane accessor, body reading, JSON responses."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request

from app.codec.rest import dumps, parse_json
from app.dataplane import DataPlane
from app.errors import UnsupportedMediaType

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
_IDENTITY = frozenset({"", "identity"})


def dataplane() -> DataPlane:
    """The data plane of the app handling this request."""
    return current_app.extensions["modelport"].dataplane


def read_body() -> bytes:
    """The raw request body, refused (415) when it is declared as something JSON cannot be.

    Raises `UnsupportedMediaType` for an explicitly non-JSON content type or an encoding this
    server does not decode.
    """
    mimetype = request.mimetype
    if mimetype not in _JSON_TYPES and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(f"content type '{mimetype}' is not supported; send JSON")
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _IDENTITY:
        raise UnsupportedMediaType(f"content encoding '{encoding}' is not supported")
    return request.get_data(cache=False)


def read_json(allow_empty: bool = False) -> Any:
    """The request body parsed as JSON ({} for an empty body where `allow_empty`)."""
    body = read_body()
    if allow_empty and not body.strip():
        return {}
    return parse_json(body)


def json_response(payload: Any, status: int = 200) -> Response:
    """A JSON response written by orjson."""
    return Response(dumps(payload), status=status, mimetype="application/json")


def raw_json_response(body: bytes, status: int = 200) -> Response:
    """A response whose JSON body is already serialized."""
    return Response(body, status=status, mimetype="application/json")
