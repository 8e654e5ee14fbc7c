"""A workload measured longer than the rest says so in the report's header (bench/report.py)."""

from __future__ import annotations

from bench.report import stretched
from bench.workloads import WORKLOADS


def _by_key(*keys: str) -> list:
    return [w for w in WORKLOADS if w.key in keys]


def test_the_64_mib_point_is_named_with_its_factor() -> None:
    assert stretched(_by_key("W1", "W4-bin64")) == "; W4-bin64 4× that"


def test_a_run_without_stretched_workloads_adds_nothing() -> None:
    assert stretched(_by_key("W1", "W2", "W4-bin")) == ""
