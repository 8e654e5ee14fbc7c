"""The soak (`make soak`, never `make test`): 200,000 mixed requests on 2 workers (issue 15).

Four client processes send the mix of tests/soak/load.py (v1, v2 JSON, binary, infer_dict, OIP
gRPC, OMI, and the error rows on purpose) to a real gunicorn with 2 workers of the default class
(httptools; MODELPORT_TEST_WORKER_CLASS picks another). Zero
unexpected answers; the workers' resident memory after the whole run is less than 5 % above what
it was after the first 20,000 requests; their file descriptors do not grow; no worker restarted.
The figures are printed (`make soak` runs pytest with -s) for the issue's closing note.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from tests.grpc_support import start_server
from tests.server import DEFAULT_WORKER_CLASS, GunicornServer
from tests.soak import load

pytestmark = pytest.mark.soak

TOTAL = int(os.environ.get("MODELPORT_SOAK_REQUESTS", "200000"))
WARMUP = TOTAL // 10  # the baseline is taken after the first 20,000
CLIENTS = 4


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def snapshot(server: GunicornServer) -> dict[str, object]:
    pids = sorted(server.worker_pids())
    return {
        "pids": pids,
        "rss_kib": sum(rss_kib(pid) for pid in pids),
        "fds": sum(fds(pid) for pid in pids),
        "master_fds": fds(server.process.pid),  # type: ignore[union-attr]  # started
    }


def test_200000_mixed_requests_on_2_workers() -> None:
    server = start_server(DEFAULT_WORKER_CLASS, workers=2)
    context = multiprocessing.get_context("spawn")  # gRPC channels only after the start
    progress = context.Value("q", 0)
    results = context.Queue()
    per_client = TOTAL // CLIENTS
    processes = [
        context.Process(
            target=load.run, args=(server.url, server.grpc_port, per_client, progress, results)
        )
        for _ in range(CLIENTS)
    ]
    started = time.monotonic()
    try:
        for process in processes:
            process.start()
        while progress.value < WARMUP:
            assert all(p.is_alive() for p in processes) or progress.value >= WARMUP
            time.sleep(0.2)
        baseline = snapshot(server)
        reports = [json.loads(results.get(timeout=3600)) for _ in processes]
        for process in processes:
            process.join(60)
        elapsed = time.monotonic() - started
        time.sleep(2.0)  # the clients' connections are closed by now
        final = snapshot(server)
    finally:
        server.stop()

    bad = sum(report["bad"] for report in reports)
    counts: dict[str, int] = {}
    for report in reports:
        for key, value in report["counts"].items():
            counts[key] = counts.get(key, 0) + value
    growth = (final["rss_kib"] - baseline["rss_kib"]) / baseline["rss_kib"]  # type: ignore[operator]
    print(
        f"\nsoak: {sum(counts.values())} requests in {elapsed:.0f} s "
        f"({sum(counts.values()) / elapsed:.0f}/s), {bad} unexpected\n"
        f"  workers' RSS after {WARMUP}: {baseline['rss_kib']} KiB, at the end: "
        f"{final['rss_kib']} KiB ({growth:+.2%})\n"
        f"  workers' fds after {WARMUP}: {baseline['fds']}, at the end: {final['fds']}; "
        f"master's: {baseline['master_fds']} -> {final['master_fds']}\n"
        f"  answers: {json.dumps(dict(sorted(counts.items())))}"
    )
    assert bad == 0, [line for report in reports for line in report["unexpected"]]
    assert sum(counts.values()) == per_client * CLIENTS
    assert final["pids"] == baseline["pids"], "a worker was restarted during the soak"
    assert growth < 0.05
    assert final["fds"] <= baseline["fds"]  # type: ignore[operator]
    assert final["master_fds"] <= baseline["master_fds"]  # type: ignore[operator]
