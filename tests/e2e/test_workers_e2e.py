"""Repository changes and statistics are server-wide with 2 gunicorn workers (app/workers.py).

The `pid` models answer the pid of the worker that served them, so each test can show that both
workers answered. Requests go on new connections, several at a time, so both workers take some.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from app import control
from tests.grpc_support import run_client, start_server
from tests.server import DEFAULT_WORKER_CLASS, GunicornServer

pytestmark = pytest.mark.e2e

BODY: dict[str, Any] = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}


def write_config(directory: Path) -> Path:
    """`pid` is unloaded and loaded, `probe` always serves, `counted` only counts, `marked` fails
    to load in the workers whose pid is a file in `marks/`."""
    marks = directory / "marks"
    marks.mkdir()
    models = [
        "  - {name: pid, runtime: python, class: 'tests.models:PidModel'}",
        "  - {name: probe, runtime: python, class: 'tests.models:PidModel'}",
        "  - {name: counted, runtime: python, class: 'tests.models:PidModel'}",
        "  - {name: marked, runtime: python, class: 'tests.models:MarkedBrokenModel', "
        f"parameters: {{marks: '{marks}'}}}}",
    ]
    path = directory / "models.yaml"
    path.write_text(
        "server:\n  grpc: {port: '${MODELPORT_GRPC_PORT:-0}'}\n  omi: {port: 0}\nmodels:\n"
        + "\n".join(models)
        + "\n"
    )
    return path


def start(directory: Path, worker_class: str = DEFAULT_WORKER_CLASS) -> GunicornServer:
    return start_server(worker_class, workers=2, config=write_config(directory))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    running = start(tmp_path_factory.mktemp("workers"))
    yield running
    running.stop()


def infer(server: GunicornServer, model: str) -> tuple[int, int | None, str]:
    """One request on a new connection: its status, the pid that served it, and its error."""
    answer = requests.post(f"{server.url}/v2/models/{model}/infer", json=BODY, timeout=30)
    if answer.status_code != 200:
        return answer.status_code, None, answer.json()["error"]
    return 200, answer.json()["outputs"][0]["data"][0], ""


def spread(server: GunicornServer, model: str, count: int) -> list[tuple[int, int | None, str]]:
    """At least `count` requests to `model`, each followed by one to `probe`, 8 at a time.

    Goes on until both workers answered probes (so both had their turn with `model`), and both
    answered `model` if it answered at all. Fails after a minute of one worker serving alone.
    """
    answers: list[tuple[int, int | None, str]] = []
    probes: set[int] = set()
    deadline = time.monotonic() + 60

    def both_served() -> bool:
        served = {pid for _, pid, _ in answers if pid is not None}
        return len(probes) == 2 and len(served) in (0, 2)

    while len(answers) < count or not both_served():
        assert time.monotonic() < deadline, f"one worker served alone: {probes}"
        with ThreadPoolExecutor(8) as pool:
            pairs = list(
                pool.map(lambda _: (infer(server, model), infer(server, "probe")), range(8))
            )
        answers += [answer for answer, _ in pairs]
        probes |= {pid for _, (_, pid, _) in pairs if pid is not None}
    return answers


def worker_pids(server: GunicornServer) -> set[int]:
    """The pids of both workers, from the probe model (new connections until both answered).

    Waits up to a minute, which also covers a killed worker's replacement booting.
    """
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    while len(pids) < 2 and time.monotonic() < deadline:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: infer(server, "probe"), range(16)))
        pids |= {pid for _, pid, _ in answers if pid is not None}
    assert len(pids) == 2, pids
    return pids


def rest_success_count(server: GunicornServer, model: str) -> int:
    answer = requests.get(f"{server.url}/v2/models/{model}/stats", timeout=30)
    assert answer.status_code == 200, answer.text
    return sum(s["inference_stats"]["success"]["count"] for s in answer.json()["model_stats"])


def count_on_both(server: GunicornServer) -> list[int | None]:
    """At least 40 requests to `counted`, until both workers served some; the pids that did."""
    sent: list[int | None] = []
    while len(set(sent)) < 2 or len(sent) < 40:
        assert len(sent) < 1000, "one worker served everything"
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: infer(server, "counted"), range(20)))
        assert {status for status, _, _ in answers} == {200}
        sent += [pid for _, pid, _ in answers]
    return sent


def replaced_after_hup(server: GunicornServer) -> set[int]:
    """Send the master a HUP and wait until two new workers answer, and only they."""
    old = worker_pids(server)
    server.signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while True:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: infer(server, "probe"), range(16)))
        pids = {pid for _, pid, _ in answers if pid is not None}
        if len(pids) == 2 and not pids & old:
            return pids
        assert time.monotonic() < deadline, "the HUP did not replace the workers"
        time.sleep(0.2)


def test_statistics_are_exact_totals_over_workers(server: GunicornServer) -> None:
    sent = count_on_both(server)
    assert [rest_success_count(server, "counted") for _ in range(6)] == [len(sent)] * 6
    everything = requests.get(f"{server.url}/v2/models/stats", timeout=30).json()["model_stats"]
    counted = next(s for s in everything if s["name"] == "counted")
    assert counted["inference_count"] == counted["execution_count"] == len(sent)
    grpc = run_client("triton_grpc.py", "stats", f"127.0.0.1:{server.grpc_port}", "counted")
    assert grpc["success_counts"] == [len(sent)] * 6


def test_unload_then_load_over_rest_reaches_every_worker(server: GunicornServer) -> None:
    assert requests.post(f"{server.url}/v2/repository/models/pid/unload", timeout=60).ok
    answers = spread(server, "pid", 40)
    assert {status for status, _, _ in answers} == {503}
    assert {error for _, _, error in answers} == {"model 'pid' version '1' is not ready (unloaded)"}
    index = requests.post(f"{server.url}/v2/repository/index", timeout=30).json()
    assert {e["name"]: e["state"] for e in index}["pid"] == "UNAVAILABLE"

    assert requests.post(f"{server.url}/v2/repository/models/pid/load", timeout=60).ok
    answers = spread(server, "pid", 40)
    assert {status for status, _, _ in answers} == {200}
    assert len({pid for _, pid, _ in answers}) == 2


def test_unload_then_load_over_grpc_reaches_every_worker(server: GunicornServer) -> None:
    grpc_url = f"127.0.0.1:{server.grpc_port}"
    assert run_client("triton_grpc.py", "unload", grpc_url, "pid") == {"error": None}
    assert {status for status, _, _ in spread(server, "pid", 40)} == {503}
    assert run_client("triton_grpc.py", "load", grpc_url, "pid") == {"error": None}
    assert {status for status, _, _ in spread(server, "pid", 40)} == {200}


def loads(server: GunicornServer) -> dict[int, int]:
    """Which load of `marked` each worker serves: pid -> the time it was loaded (ns)."""
    served: dict[int, int] = {}
    deadline = time.monotonic() + 60
    while len(served) < 2:
        assert time.monotonic() < deadline, f"one worker served alone: {served}"
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: infer_outputs(server, "marked"), range(16)))
        served |= {pid: loaded for pid, loaded in answers}
    return served


def infer_outputs(server: GunicornServer, model: str) -> tuple[int, int]:
    answer = requests.post(f"{server.url}/v2/models/{model}/infer", json=BODY, timeout=30)
    assert answer.status_code == 200, answer.text
    pid, loaded = (output["data"][0] for output in answer.json()["outputs"])
    return pid, loaded


def test_a_load_that_fails_in_one_worker_is_rolled_back_in_all(server: GunicornServer) -> None:
    marks = server.config.parent / "marks"
    before = loads(server)
    _, broken = sorted(before)
    (marks / str(broken)).touch()
    try:
        # Whichever worker takes the request, the answer names the failure in the other, and
        # both keep serving the load they had: not the new one, and not nothing.
        for _ in range(6):
            answer = requests.post(f"{server.url}/v2/repository/models/marked/load", timeout=60)
            assert answer.status_code == 503
            assert answer.json()["error"] == (
                "model 'marked' version '1' failed to load: "
                f"OSError: weights are corrupt in {broken} (in worker {broken}); "
                "the load was rolled back in every worker"
            )
            assert loads(server) == before
        grpc_url = f"127.0.0.1:{server.grpc_port}"
        failed = run_client("triton_grpc.py", "load", grpc_url, "marked")["error"]
        assert failed["status"] == "StatusCode.UNAVAILABLE"
        assert f"(in worker {broken}); the load was rolled back" in failed["message"]
        assert loads(server) == before

        # Unloaded first, a failed load leaves it unloaded everywhere: nobody serves the new one.
        assert requests.post(f"{server.url}/v2/repository/models/marked/unload", timeout=60).ok
        answer = requests.post(f"{server.url}/v2/repository/models/marked/load", timeout=60)
        assert answer.status_code == 503, answer.text
        assert {status for status, _, _ in spread(server, "marked", 20)} == {503}
    finally:
        (marks / str(broken)).unlink()
    assert requests.post(f"{server.url}/v2/repository/models/marked/load", timeout=60).ok
    after = loads(server)
    assert after.keys() == before.keys() and all(after[pid] > before[pid] for pid in before)


def test_a_killed_worker_is_replaced_and_follows_the_current_state(
    server: GunicornServer,
) -> None:
    assert requests.post(f"{server.url}/v2/repository/models/pid/unload", timeout=60).ok
    survivor, victim = sorted(worker_pids(server))
    os.kill(victim, signal.SIGKILL)
    pids = worker_pids(server)  # waits until the replacement serves too
    assert survivor in pids and victim not in pids
    assert {status for status, _, _ in spread(server, "pid", 40)} == {503}  # not resurrected

    assert requests.post(f"{server.url}/v2/repository/models/pid/load", timeout=60).ok
    answers = spread(server, "pid", 40)
    assert {status for status, _, _ in answers} == {200}
    assert {pid for _, pid, _ in answers} == pids


def test_workers_started_by_a_hup_follow_the_current_state(server: GunicornServer) -> None:
    assert requests.post(f"{server.url}/v2/repository/models/pid/unload", timeout=60).ok
    replaced_after_hup(server)
    assert {status for status, _, _ in spread(server, "pid", 40)} == {503}
    assert requests.post(f"{server.url}/v2/repository/models/pid/load", timeout=60).ok
    assert {status for status, _, _ in spread(server, "pid", 40)} == {200}


def totals(server: GunicornServer) -> tuple[list[int], list[int]]:
    """`counted`'s success count, asked 4 times over REST and 6 over gRPC (tritonclient)."""
    grpc = run_client("triton_grpc.py", "stats", f"127.0.0.1:{server.grpc_port}", "counted")
    return [rest_success_count(server, "counted") for _ in range(4)], grpc["success_counts"]


def test_counts_of_workers_that_exit_stay_in_the_totals(server: GunicornServer) -> None:
    before = rest_success_count(server, "counted")
    sent = count_on_both(server)
    # A SIGKILLed worker keeps the counts it wrote out, which it does at least every
    # FORCED_SECONDS while they change: wait for that, with nobody asking for statistics.
    time.sleep(2 * control.FORCED_SECONDS + 0.5)
    victim = sent[-1]
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    assert victim not in worker_pids(server)  # once its replacement serves too
    total = before + len(sent)
    assert totals(server) == ([total] * 4, [total] * 6)

    # A HUP stops every worker gracefully: each writes its counts as it exits, so all stay.
    more = count_on_both(server)
    replaced_after_hup(server)
    total += len(more)
    assert totals(server) == ([total] * 4, [total] * 6)


@pytest.mark.parametrize("worker_class", ["sync", "gevent", "httptools"])
def test_other_worker_classes_follow_too(tmp_path: Path, worker_class: str) -> None:
    server = start(tmp_path, worker_class)
    try:
        assert requests.post(f"{server.url}/v2/repository/models/pid/unload", timeout=60).ok
        assert {status for status, _, _ in spread(server, "pid", 20)} == {503}
        assert requests.post(f"{server.url}/v2/repository/models/pid/load", timeout=60).ok
        answers = spread(server, "pid", 20)
        assert {status for status, _, _ in answers} == {200}
        assert rest_success_count(server, "pid") == len(answers)
    finally:
        server.stop()
