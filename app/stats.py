"""Per model version inference statistics, in the shape of Triton's statistics extension.

Counted inside the data plane, so REST and gRPC requests land in the same numbers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Duration:
    """A `$duration_stat`: how many, and their cumulative nanoseconds."""

    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        """Record `count` events that took `ns` nanoseconds in all."""
        self.count += count
        self.ns += ns

    def to_dict(self) -> dict[str, int]:
        """The JSON form."""
        return {"count": self.count, "ns": self.ns}


@dataclass(slots=True)
class ModelStats:
    """Counters of one model version (success counted per request, inferences per batch item)."""

    name: str
    version: str
    last_inference: int = 0  # ms since the epoch
    inference_count: int = 0
    execution_count: int = 0
    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    batches: dict[int, Duration] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Triton's `$model_stat` (reference §6.1): REST answers it, gRPC parses it into proto.

        Modelport times a request as a whole and the model call inside it, so queue,
        compute_input and compute_output carry counts but no time: perf_analyzer requires the
        three compute counts to be equal, and finds the version it measured by the queue count
        that grew.
        """
        zero = {"count": 0, "ns": 0}
        untimed = {"count": self.compute_infer.count, "ns": 0}
        return {
            "name": self.name,
            "version": self.version,
            "last_inference": self.last_inference,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": self.success.to_dict(),
                "fail": self.fail.to_dict(),
                "queue": {"count": self.success.count, "ns": 0},
                "compute_input": untimed,
                "compute_infer": self.compute_infer.to_dict(),
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
                for size, duration in sorted(self.batches.items())
            ],
            "memory_usage": [],
            "response_stats": {},
        }


class StatsRegistry:
    """Thread-safe statistics of every model version served by this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[tuple[str, str], ModelStats] = {}

    def _get(self, name: str, version: str) -> ModelStats:
        key = (name, version)
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = ModelStats(name, version)
        return stats

    def record_success(
        self, name: str, version: str, batch_size: int, total_ns: int, infer_ns: int
    ) -> None:
        """One request served: `batch_size` items in `total_ns`, `infer_ns` of it in the model."""
        with self._lock:
            stats = self._get(name, version)
            stats.last_inference = time.time_ns() // 1_000_000
            stats.inference_count += batch_size
            stats.execution_count += 1
            stats.success.add(total_ns)
            stats.compute_infer.add(infer_ns)
            stats.batches.setdefault(batch_size, Duration()).add(infer_ns)

    def record_failure(self, name: str, version: str, total_ns: int) -> None:
        """One request that reached the model and failed."""
        with self._lock:
            stats = self._get(name, version)
            stats.last_inference = time.time_ns() // 1_000_000
            stats.fail.add(total_ns)

    def snapshot(self, name: str, version: str) -> ModelStats:
        """A copy of one version's counters (zeros if it never served)."""
        with self._lock:
            stats = self._stats.get((name, version)) or ModelStats(name, version)
            return ModelStats(
                name=stats.name,
                version=stats.version,
                last_inference=stats.last_inference,
                inference_count=stats.inference_count,
                execution_count=stats.execution_count,
                success=Duration(stats.success.count, stats.success.ns),
                fail=Duration(stats.fail.count, stats.fail.ns),
                compute_infer=Duration(stats.compute_infer.count, stats.compute_infer.ns),
                batches={k: Duration(v.count, v.ns) for k, v in stats.batches.items()},
            )
