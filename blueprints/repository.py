"""Triton's model repository and statistics extensions over REST."""

from __future__ import annotations

from flask import Blueprint, Response

from app.stats import ModelStats
from blueprints import schemas
from blueprints.common import dataplane, json_response, read_json

bp = Blueprint("repository", __name__)


@bp.post("/v2/repository/index")
def repository_index() -> Response:
    """A JSON array of `{name, version, state, reason}` (tritonclient posts an empty body)."""
    payload = schemas.load(schemas.REPOSITORY_INDEX_REQUEST, read_json(allow_empty=True))
    entries = dataplane().repository_index(ready_only=payload["ready"])
    return json_response(
        [
            {"name": e.name, "version": e.version, "state": e.state.value}
            | ({"reason": e.reason} if e.reason else {})
            for e in entries
        ]
    )


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
    """`{"model_stats": [...]}` in Triton's layout, one entry per model version."""
    plane = dataplane()
    if name is None:
        entries = plane.repository_index()
    elif version:
        entries = [plane.model_entry(name, version)]
    else:
        entries = plane.manager.entries(name)
    return json_response(
        {"model_stats": [stats_to_json(plane.stats.snapshot(e.name, e.version)) for e in entries]}
    )


def stats_to_json(stats: ModelStats) -> dict[str, object]:
    """One `$model_stat` object (reference §6.1)."""
    zero = {"count": 0, "ns": 0}
    # Counted, not timed: perf_analyzer needs equal compute counts and a growing queue count.
    untimed = {"count": stats.compute_infer.count, "ns": 0}
    return {
        "name": stats.name,
        "version": stats.version,
        "last_inference": stats.last_inference,
        "inference_count": stats.inference_count,
        "execution_count": stats.execution_count,
        "inference_stats": {
            "success": stats.success.to_dict(),
            "fail": stats.fail.to_dict(),
            "queue": {"count": stats.success.count, "ns": 0},
            "compute_input": untimed,
            "compute_infer": stats.compute_infer.to_dict(),
            "compute_output": untimed,
            "cache_hit": zero,
            "cache_miss": zero,
        },
        "batch_stats": [
            {
                "batch_size": size,
                "compute_input": {"count": duration.count, "ns": 0},
                "compute_infer": duration.to_dict(),
                "compute_output": {"count": duration.count, "ns": 0},
            }
            for size, duration in sorted(stats.batches.items())
        ],
        "memory_usage": [],
        "response_stats": {},
    }
