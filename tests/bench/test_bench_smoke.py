"""`make bench BENCH_ARGS=--quick` runs end to end against Modelport and writes its table.

A smoke test of the harness only: it checks the table's shape and that every answer was right,
never how fast anything was (speed is what `make bench` reports, not what a test asserts).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import COLUMNS
from tests.server import ROOT

pytestmark = pytest.mark.e2e


def test_quick_run_writes_the_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--workloads", "W1,W2,W4-bin"]
        + ["--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    header = "| " + " | ".join(COLUMNS) + " |"
    assert header in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("| W")]
    assert [row.split(" | ")[0:2] for row in rows] == [
        ["| W1", "8"],
        ["| W2", "8"],
        ["| W4-bin", "8"],
    ]
    assert all(len(row.split(" | ")) == len(COLUMNS) for row in rows)
    (report,) = tmp_path.glob("*-quick.md")
    assert header in report.read_text()
    (raw,) = tmp_path.glob("*-quick.json")
    points = json.loads(raw.read_text())["points"]
    assert {p["workload"] for p in points} == {"W1", "W2", "W4-bin"}
    assert all(p["rps"] and p["failures"] == 0 for p in points)
    assert all(p["server_cpu"] is not None for p in points)
