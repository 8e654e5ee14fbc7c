"""Triton's model configuration extension over REST: `GET /v2/models/{m}[/versions/{v}]/config`."""

from __future__ import annotations

from flask import Blueprint, Response

from app.codec.model_config import model_config_to_json
from blueprints.common import dataplane, json_response

bp = Blueprint("config_ext", __name__)


@bp.get("/v2/models/<name>/config")
@bp.get("/v2/models/<name>/versions/<version>/config")
def model_config(name: str, version: str | None = None) -> Response:
    """The model's configuration in Triton's layout (404 unknown, 503 not ready)."""
    plane = dataplane()
    model = plane.model(name, version)
    return json_response(model_config_to_json(model, plane.model_entry(name, version).settings))
