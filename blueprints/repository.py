"""Triton's model repository and statistics extensions over REST."""

from __future__ import annotations

from flask import Blueprint, Response

from app.codec import schemas
from app.codec.metadata import repository_index_to_json
from app.codec.statistics import statistics_to_json
from blueprints.common import dataplane, json_response, read_json

bp = Blueprint("repository", __name__)


@bp.post("/v2/repository/index")
def repository_index() -> Response:
    """A JSON array of `{name, version, state, reason}` (tritonclient posts an empty body)."""
    payload = schemas.load(schemas.REPOSITORY_INDEX_REQUEST, read_json(allow_empty=True))
    entries = dataplane().repository_index(ready_only=payload["ready"])
    return json_response(repository_index_to_json(entries))


@bp.post("/v2/repository/models/<name>/load")
def load_model(name: str) -> Response:
    """Load or reload every configured version of a model (200, empty JSON object)."""
    payload = schemas.load(schemas.REPOSITORY_REQUEST, read_json(allow_empty=True))
    dataplane().load_model(name, list(payload["parameters"]))
    return json_response({})


@bp.post("/v2/repository/models/<name>/unload")
def unload_model(name: str) -> Response:
    """Unload every version of a model (200, empty JSON object)."""
    schemas.load(schemas.REPOSITORY_REQUEST, read_json(allow_empty=True))
    dataplane().unload_model(name)
    return json_response({})


@bp.get("/v2/models/stats")
@bp.get("/v2/models/<name>/stats")
@bp.get("/v2/models/<name>/versions/<version>/stats")
def statistics(name: str | None = None, version: str | None = None) -> Response:
    """`{"model_stats": [...]}` in Triton's layout, one entry per model version, server-wide."""
    return json_response(statistics_to_json(dataplane().statistics(name, version)))
