"""App-wide JSON error handlers: every failure, routing 404/405 included, is `{"error": ...}`.

Registered on the app, not a blueprint, because routing errors never reach blueprint handlers.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from app.codec.rest import error_to_json
from app.errors import (
    ModelOverloaded,
    ModelportError,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)

log = logging.getLogger("modelport.http")
#: Reasons of werkzeug's own errors where its name would differ from ours for the same failure.
_HTTP_REASONS = {404: "not_found", 405: "method_not_allowed", 413: PayloadTooLarge.reason}


def error_body(
    status: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> bytes:
    """The error body in the form this app's config selects (`app.codec.rest.error_to_json`)."""
    form = current_app.extensions["modelport"].settings.server.errors
    return error_to_json(form, status, reason, message, details)


def _response(status: int, body: bytes) -> Response:
    return Response(body, status=status, mimetype="application/json")


def handle_modelport_error(exc: ModelportError) -> Response:
    """The DESIGN §5 row of the exception, with its message; 5xx also go to the log."""
    if exc.http_status >= 500:
        log.error("%s %s -> %d: %s", request.method, request.path, exc.http_status, exc.message)
    response = _response(
        exc.http_status, error_body(exc.http_status, exc.reason, exc.message, exc.details)
    )
    if isinstance(exc, UnsupportedMediaType):
        response.headers["Accept-Encoding"] = "gzip, deflate"
    if isinstance(exc, ModelOverloaded):
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="modelport"'
    return response


def handle_http_exception(exc: HTTPException) -> Response:
    """Werkzeug's own errors (404, 405, 413...) as JSON, keeping their headers (Allow)."""
    status = exc.code or 500
    message = {
        404: f"no route for {request.method} {request.path}",
        405: f"method {request.method} is not allowed for {request.path}",
        413: "request body is larger than limits.max_request_bytes",
    }.get(status, exc.description or exc.name)
    reason = _HTTP_REASONS.get(status) or (exc.name or "error").lower().replace(" ", "_")
    response = _response(status, error_body(status, reason, message))
    for key, value in exc.get_headers():
        if key.lower() != "content-type":
            response.headers[key] = value
    return response


def handle_unexpected(exc: Exception) -> Response:
    """Anything unplanned: a 500 without internals for the client, the traceback in the log."""
    log.exception("%s %s failed", request.method, request.path)
    return _response(500, error_body(500, "internal", "internal server error"))


def init_app(app: Flask) -> None:
    """Register the handlers on the app."""
    app.register_error_handler(ModelportError, handle_modelport_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
