"""Explanations: KServe v1 `:explain` and MLRun's v2 `/explain`."""

from __future__ import annotations

from flask import Blueprint, Response

from app.errors import NotImplementedByModel
from blueprints.common import dataplane

bp = Blueprint("explain", __name__)


def _not_yet(name: str) -> NotImplementedByModel:
    dataplane().model(name)  # unknown or unready models answer 404/503 first
    return NotImplementedByModel(
        f"model '{name}' has no explainer: explanations are not available in this release"
    )


@bp.post("/v1/models/<name>:explain")
def explain_v1(name: str) -> Response:
    """KServe v1 explain: 501 until explainers land."""
    raise _not_yet(name)


@bp.post("/v2/models/<name>/explain")
@bp.post("/v2/models/<name>/versions/<version>/explain")
def explain_v2(name: str, version: str | None = None) -> Response:
    """MLRun v2 explain: 501 until explainers land."""
    raise _not_yet(name)
