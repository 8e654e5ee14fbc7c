"""`GET /metrics`: Prometheus text, public even when auth is configured."""

from __future__ import annotations

from flask import Blueprint, Response

from app import metrics
from blueprints.common import dataplane

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    """Every worker's counters; model readiness refreshed from this worker first."""
    metrics.observe_models((e.name, e.version, e.ready) for e in dataplane().repository_index())
    return Response(metrics.exposition(), mimetype=None, content_type=metrics.CONTENT_TYPE)
