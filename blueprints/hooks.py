"""Per-request work every REST route shares: request id, credentials, metrics, access log."""

from __future__ import annotations

import logging
import time

from flask import Flask, Request, Response, current_app, g, request

from app import deadlines, metrics
from app.core import Modelport
from app.ids import hex_id
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


def _protocol(req: Request) -> str:
    blueprint = req.blueprint or ""
    if blueprint in ("v2", "repository", "config_ext"):
        return "v2"
    if blueprint == "explain":
        return "v1" if req.path.startswith("/v1/") else "v2"
    return blueprint or "http"


def _model_label(req: Request, core: Modelport, ctx: object) -> str:
    # A body-routed request (blueprints/routed.py) names its model in the body, kept in `g`.
    name: str = (req.view_args or {}).get("name") or getattr(ctx, "model", "") or ""
    # Only configured names become labels: a client must not grow the metric cardinality.
    return name if core.manager.has(name) else ""


# Each use of Flask's `request`, `g` or `current_app` is a context-variable lookup: the hooks
# made about 20 per request (bench/, cProfile), so each one takes the real objects once.


def before_request() -> None:
    """Take or make the request id, start the clock, and check credentials."""
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    ctx = g._get_current_object()
    ctx.started = time.perf_counter()
    environ = req.environ  # what req.headers reads, without building the headers object
    ctx.request_id = environ.get("HTTP_X_REQUEST_ID") or hex_id()
    request_id.set(ctx.request_id)
    # The client's deadline, in milliseconds from now (README "Limits and failure behaviour");
    # set on every request, since gthread serves the next one on this same thread.
    deadlines.set_deadline(None)  # first: a bad header must not leave the last request's
    deadlines.set_deadline(deadlines.from_milliseconds(environ.get("HTTP_X_REQUEST_TIMEOUT")))
    if req.endpoint in PUBLIC_ENDPOINTS:
        return
    authenticator = current_app.extensions["modelport"].authenticator
    if authenticator.enabled:
        authenticator.verify(environ.get("HTTP_AUTHORIZATION"), environ.get("HTTP_X_API_KEY"))


def after_request(response: Response) -> Response:
    """Return the request id, count the request, and write one access log line."""
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    ctx = g._get_current_object()
    started = ctx.get("started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    response.headers["X-Request-ID"] = ctx.get("request_id", "")
    if req.endpoint == "metrics.scrape":
        return response  # scrapes would drown the numbers they report
    core: Modelport = current_app.extensions["modelport"]
    model, protocol = _model_label(req, core, ctx), _protocol(req)
    status = response.status_code
    metrics.observe_request(
        model,
        protocol,
        str(status),
        seconds,
        req.content_length or 0,
        response.content_length or 0,
    )
    if not core.settings.server.access_log:
        return response
    log.info(
        "%s %s %d",
        req.method,
        req.path,
        status,
        extra={
            "method": req.method,
            "path": req.path,
            "status": status,
            "model": model,
            "protocol": protocol,
            "duration_ms": round(seconds * 1000, 3),
        },
    )
    return response


def init_app(app: Flask) -> None:
    """Register the hooks on the app."""
    app.before_request(before_request)
    app.after_request(after_request)
