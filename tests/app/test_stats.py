"""Statistics arithmetic: what each worker counts, carried as records and added up."""

from __future__ import annotations

import orjson

from app.codec.statistics import stats_to_json
from app.stats import Duration, ModelStats, StatsRegistry, merge_records


def counted(*requests: tuple[int, int, int]) -> ModelStats:
    registry = StatsRegistry()
    for batch_size, total_ns, infer_ns in requests:
        registry.record_success("m", "1", batch_size, total_ns, infer_ns)
    registry.record_failure("m", "1", 7)
    return registry.snapshot("m", "1")


def test_records_round_trip_through_json() -> None:
    stats = counted((2, 100, 40), (1, 50, 20), (2, 60, 30))
    record = orjson.loads(orjson.dumps(stats.to_record()))
    assert ModelStats.from_record(record) == stats


def test_merged_adds_counts_and_times_and_keeps_the_latest_inference() -> None:
    one = counted((2, 100, 40))
    two = counted((2, 60, 30), (4, 10, 5))
    two.last_inference = one.last_inference + 5
    total = one.merged(two)
    assert (total.inference_count, total.execution_count) == (8, 3)
    assert total.success == Duration(3, 170) and total.fail == Duration(2, 14)
    assert total.compute_infer == Duration(3, 75)
    assert total.batches == {2: Duration(2, 70), 4: Duration(1, 5)}
    assert total.last_inference == two.last_inference
    assert stats_to_json(total)["inference_stats"]["queue"] == {"count": 3, "ns": 0}
    # Neither side is changed, and the total shares no counter with them.
    total.success.add(1)
    assert one.success == Duration(1, 100) and two.success == Duration(2, 70)


def test_snapshot_all_copies_every_counted_version() -> None:
    registry = StatsRegistry()
    registry.record_success("a", "1", 1, 10, 5)
    registry.record_success("b", "2", 1, 10, 5)
    snapshots = registry.snapshot_all()
    assert sorted((s.name, s.version) for s in snapshots) == [("a", "1"), ("b", "2")]
    registry.record_success("a", "1", 1, 10, 5)
    assert next(s for s in snapshots if s.name == "a").success.count == 1


def test_changes_count_every_record_and_merge_records_adds_per_version() -> None:
    registry = StatsRegistry()
    assert registry.changes == 0
    registry.record_success("a", "1", 2, 10, 5)
    registry.record_failure("a", "1", 3)
    registry.record_success("b", "1", 1, 10, 5)
    assert registry.changes == 3
    records = [s.to_record() for s in registry.snapshot_all()]
    merged = merge_records(records, records[:1], [])
    totals = {(r["name"], r["version"]): ModelStats.from_record(r) for r in merged}
    assert totals[("a", "1")].success == Duration(2, 20) and totals[("a", "1")].fail.count == 2
    assert totals[("b", "1")].success == Duration(1, 10)
    assert merge_records() == []
