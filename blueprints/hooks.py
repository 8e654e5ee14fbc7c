"""Per-request work every REST route shares: request id, credentials, metrics, access log."""

from __future__ import annotations

import logging
import time
import uuid

from flask import Flask, Response, current_app, g, request

from app import metrics
from app.auth import Authenticator
from app.logging import request_id

log = logging.getLogger("modelport.access")

#: Endpoints anyone may call, with or without credentials (DESIGN §4).
PUBLIC_ENDPOINTS = frozenset(
    {
        "v1.root",
        "v2.live",
        "v2.ready",
        "v2.health",
        "metrics.scrape",
        # A browser cannot send a bearer token for the page, its scripts or the document.
        "docs.ui",
        "docs.static",
        "docs.openapi",
    }
)


def _protocol() -> str:
    blueprint = request.blueprint or ""
    if blueprint in ("v2", "repository", "config_ext"):
        return "v2"
    if blueprint == "explain":
        return "v1" if request.path.startswith("/v1/") else "v2"
    return blueprint or "http"


def _model_label() -> str:
    name = (request.view_args or {}).get("name", "")
    # Only configured names become labels: a client must not grow the metric cardinality.
    core = current_app.extensions["modelport"]
    return name if name in core.manager.names() else ""


def before_request() -> None:
    """Take or make the request id, start the clock, and check credentials."""
    g.started = time.perf_counter()
    g.request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
    request_id.set(g.request_id)
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    authenticator: Authenticator = current_app.extensions["modelport_auth"]
    authenticator.verify(request.headers.get("Authorization"), request.headers.get("X-API-Key"))


def after_request(response: Response) -> Response:
    """Return the request id, count the request, and write one access log line."""
    started = g.get("started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    response.headers["X-Request-ID"] = g.get("request_id", "")
    if request.endpoint == "metrics.scrape":
        return response  # scrapes would drown the numbers they report
    model, protocol = _model_label(), _protocol()
    metrics.observe_request(
        model,
        protocol,
        str(response.status_code),
        seconds,
        request.content_length or 0,
        response.content_length or 0,
    )
    if not current_app.extensions["modelport"].settings.server.access_log:
        return response
    log.info(
        "%s %s %d",
        request.method,
        request.path,
        response.status_code,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "model": model,
            "protocol": protocol,
            "duration_ms": round(seconds * 1000, 3),
        },
    )
    return response


def init_app(app: Flask) -> None:
    """Register the hooks and the authenticator on the app."""
    settings = app.extensions["modelport"].settings
    app.extensions["modelport_auth"] = Authenticator(settings.server.auth)
    app.before_request(before_request)
    app.after_request(after_request)
