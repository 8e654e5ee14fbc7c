"""A benchmark point measured in rounds adds its rounds up (bench/report.py)."""

from __future__ import annotations

from bench.report import Point


def _round(requests: int, seconds: float, p99: float, client_cpu: float) -> dict:
    return {
        "requests": requests,
        "seconds": seconds,
        "rps": requests / seconds,
        "p50_ms": p99 / 2,
        "p90_ms": p99 * 0.8,
        "p99_ms": p99,
        "failures": 1 if requests == 300 else 0,
        "statuses": {"500": 1} if requests == 300 else {},
        "server_cpu": 0.9,
        "client_cpu": client_cpu,
    }


def test_rounds_add_up_answers_and_take_median_latencies() -> None:
    rounds = [_round(100, 1.0, 9.0, 0.2), _round(300, 2.0, 3.0, 0.9), _round(200, 1.0, 6.0, 0.3)]
    point = Point.of_rounds("modelport", "W1", 8, rounds)
    assert point.rps == 600 / 4.0  # every answer over every measured second, not a mean of rates
    assert (point.p50_ms, point.p99_ms) == (3.0, 6.0)  # the median round's percentiles
    assert point.failures == 1 and point.statuses == {"500": 1}
    assert point.server_cpu == 0.9
    assert point.client_cpu == 0.9 and point.client_bound  # one client-bound round marks it


def test_one_round_is_the_load_generator_result() -> None:
    point = Point.of_rounds("kserve", "W2", 1, [_round(50, 1.0, 2.0, 0.1)])
    assert (point.rps, point.p99_ms, point.client_cpu) == (50.0, 2.0, 0.1)
