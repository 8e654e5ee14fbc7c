"""perf_analyzer's figures are set beside the load generator's point for the same request."""

from __future__ import annotations

from bench.report import Point, Run, cross_check, parse_perf_analyzer, targets
from bench.workloads import WORKLOADS

_OUTPUT = """
Request concurrency: 8
  Client:
    Request count: 4000
    Throughput: {rps} infer/sec
    p99 latency: 17281 usec
"""


def _run(http_rps: float, grpc_rps: float | None) -> Run:
    checks = [parse_perf_analyzer("http", _OUTPUT.format(rps=http_rps), 0)]
    if grpc_rps is not None:
        checks.append(parse_perf_analyzer("grpc", _OUTPUT.format(rps=grpc_rps), 0))
    points = [
        Point("modelport", "W1", 8, rps=1700.0),  # JSON, one output: not what perf_analyzer sends
        Point("modelport", "W1-bin", 8, rps=1000.0),
        Point("modelport", "W2", 8, rps=800.0),
    ]
    return Run(points, {}, list(WORKLOADS), {}, {"perf_analyzer": checks})


def test_the_same_request_is_compared_and_judged_within_15_percent() -> None:
    run = _run(http_rps=1100.0, grpc_rps=600.0)
    lines = cross_check(run)
    assert "W1-bin c=8: +10%, agrees" in lines[0]
    assert "W2 c=8: -25%, DISAGREES" in lines[1]
    verdicts = [line for line in targets(run) if "perf_analyzer" in line]
    assert verdicts[0].startswith("- met — perf_analyzer http against our W1-bin c=8: +10%")
    assert verdicts[1].startswith("- NOT met — perf_analyzer grpc against our W2 c=8: -25%")


def test_a_failed_perf_analyzer_run_says_why_and_judges_nothing() -> None:
    run = _run(http_rps=1000.0, grpc_rps=None)
    run.extra["perf_analyzer"].append(parse_perf_analyzer("grpc", "error: no server\n", 1))
    lines = cross_check(run)
    assert lines[1] == "- grpc: perf_analyzer did not measure: ['error: no server']"
    assert [line for line in targets(run) if "perf_analyzer" in line] == [
        "- met — perf_analyzer http against our W1-bin c=8: +0% (1,000 vs 1,000 req/s); "
        "target within 15 %"
    ]
