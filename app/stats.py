"""Per model version inference statistics, in the shape of Triton's statistics extension.

Counted inside the data plane, so REST and gRPC requests land in the same numbers. Each gunicorn
worker counts its own; `app.workers` adds the workers' snapshots up (`ModelStats.merged`), carried
between processes as `to_record` / `from_record` dicts. The wire form is the codec's
(`app.codec.statistics`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
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

    def __add__(self, other: Duration) -> Duration:
        return Duration(self.count + other.count, self.ns + other.ns)


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

    def merged(self, other: ModelStats) -> ModelStats:
        """The counters of two processes serving the same version, added up.

        Counts and times add; `last_inference` is the later of the two. The result shares no
        object with either side, so adding zeros makes a snapshot of live counters.
        """
        return ModelStats(
            name=self.name,
            version=self.version,
            last_inference=max(self.last_inference, other.last_inference),
            inference_count=self.inference_count + other.inference_count,
            execution_count=self.execution_count + other.execution_count,
            success=self.success + other.success,
            fail=self.fail + other.fail,
            compute_infer=self.compute_infer + other.compute_infer,
            batches={
                size: self.batches.get(size, Duration()) + other.batches.get(size, Duration())
                for size in sorted(self.batches.keys() | other.batches.keys())
            },
        )

    def to_record(self) -> dict[str, Any]:
        """The raw counters as plain JSON, for another worker to read (`from_record`)."""
        return {
            "name": self.name,
            "version": self.version,
            "last_inference": self.last_inference,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "success": [self.success.count, self.success.ns],
            "fail": [self.fail.count, self.fail.ns],
            "compute_infer": [self.compute_infer.count, self.compute_infer.ns],
            "batches": [[size, d.count, d.ns] for size, d in sorted(self.batches.items())],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ModelStats:
        """The counters `to_record` wrote."""
        return cls(
            name=record["name"],
            version=record["version"],
            last_inference=record["last_inference"],
            inference_count=record["inference_count"],
            execution_count=record["execution_count"],
            success=Duration(*record["success"]),
            fail=Duration(*record["fail"]),
            compute_infer=Duration(*record["compute_infer"]),
            batches={size: Duration(count, ns) for size, count, ns in record["batches"]},
        )


class StatsRegistry:
    """Thread-safe statistics of every model version served by this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[tuple[str, str], ModelStats] = {}
        self._changes = 0

    @property
    def changes(self) -> int:
        """How many times the counters changed: a worker writes them out only when this moved."""
        return self._changes

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
            self._changes += 1

    def record_failure(self, name: str, version: str, total_ns: int) -> None:
        """One request that reached the model and failed."""
        with self._lock:
            stats = self._get(name, version)
            stats.last_inference = time.time_ns() // 1_000_000
            stats.fail.add(total_ns)
            self._changes += 1

    def snapshot(self, name: str, version: str) -> ModelStats:
        """A copy of one version's counters (zeros if it never served)."""
        with self._lock:
            stats = self._stats.get((name, version))
            return ModelStats(name, version) if stats is None else _copy(stats)

    def snapshot_all(self) -> list[ModelStats]:
        """A copy of the counters of every version this process has counted, taken at once."""
        with self._lock:
            return [_copy(stats) for stats in self._stats.values()]


def _copy(stats: ModelStats) -> ModelStats:
    return stats.merged(ModelStats(stats.name, stats.version))


def merge_records(*groups: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `to_record` lists of several processes added up per model version, as one list.

    The gunicorn master folds a dead worker's last counters into the server's retired totals
    with it (`app.control.retire`).
    """
    totals: dict[tuple[str, str], ModelStats] = {}
    for records in groups:
        for record in records:
            stats = ModelStats.from_record(record)
            key = (stats.name, stats.version)
            totals[key] = totals[key].merged(stats) if key in totals else stats
    return [stats.to_record() for stats in totals.values()]
