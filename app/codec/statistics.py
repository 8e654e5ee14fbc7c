"""Triton's statistics extension on the wire: the `$model_stat` layout (reference §6.1).

REST answers it as JSON; gRPC parses the same dict into `inference.ModelStatistics`
(`app.codec.proto.stats_to_proto`), so the two can never disagree on a field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.stats import Duration, ModelStats


def _duration(duration: Duration) -> dict[str, int]:
    return {"count": duration.count, "ns": duration.ns}


def stats_to_json(stats: ModelStats) -> dict[str, Any]:
    """One model version's `$model_stat`.

    Modelport times a request as a whole and the model call inside it, so queue, compute_input
    and compute_output carry counts but no time: perf_analyzer requires the three compute counts
    to be equal, and finds the version it measured by the queue count that grew.
    """
    zero = {"count": 0, "ns": 0}
    untimed = {"count": stats.compute_infer.count, "ns": 0}
    return {
        "name": stats.name,
        "version": stats.version,
        "last_inference": stats.last_inference,
        "inference_count": stats.inference_count,
        "execution_count": stats.execution_count,
        "inference_stats": {
            "success": _duration(stats.success),
            "fail": _duration(stats.fail),
            "queue": {"count": stats.success.count, "ns": 0},
            "compute_input": untimed,
            "compute_infer": _duration(stats.compute_infer),
            "compute_output": untimed,
            "cache_hit": zero,
            "cache_miss": zero,
        },
        "batch_stats": [
            {
                "batch_size": size,
                "compute_input": {"count": duration.count, "ns": 0},
                "compute_infer": _duration(duration),
                "compute_output": {"count": duration.count, "ns": 0},
            }
            for size, duration in sorted(stats.batches.items())
        ],
        "memory_usage": [],
        "response_stats": {},
    }


def statistics_to_json(stats: Iterable[ModelStats]) -> dict[str, Any]:
    """The REST statistics answer: `{"model_stats": [...]}`, one entry per model version."""
    return {"model_stats": [stats_to_json(s) for s in stats]}
