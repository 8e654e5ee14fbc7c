"""/metrics from a 2-worker gunicorn counts exactly the requests sent, across workers.

Workers buffer their counts and write them every `metrics.FLUSH_SECONDS` (app/metrics.py), so a
scrape is repeated until the other worker's last counts are in, then compared exactly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from app import metrics
from tests.server import GunicornServer

pytestmark = pytest.mark.e2e

ROWS = [[6.8, 2.8, 4.8, 1.4]]
V2 = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": ROWS}]}


@pytest.fixture(scope="module")
def metered() -> Iterator[GunicornServer]:
    with GunicornServer(workers=2, grpc=True) as running:
        yield running


def samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """`name{labels} value` lines as {labels: value}."""
    found = {}
    for labels, value in re.findall(rf"^{name}(?:\{{(.*?)\}})? (\S+)$", text, re.M):
        pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels))
        found[pairs] = float(value)
    return found


def count(text: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(
        value
        for pairs, value in samples(text, "modelport_requests_total").items()
        if wanted <= pairs
    )


def scrape(url: str, ready: Callable[[str], bool], timeout: float = 10.0) -> str:
    """/metrics once `ready` holds for it (or the last scrape when it never does)."""
    deadline = time.monotonic() + timeout
    while True:
        text = requests.get(f"{url}/metrics", timeout=10).text
        if ready(text) or time.monotonic() > deadline:
            return text
        time.sleep(metrics.FLUSH_SECONDS / 2)


def test_counts_equal_the_requests_sent(metered: GunicornServer) -> None:
    url = metered.url

    def v1(_: int) -> int:
        return requests.post(
            f"{url}/v1/models/iris:predict", json={"instances": ROWS}, timeout=10
        ).status_code

    def v2(_: int) -> int:
        return requests.post(f"{url}/v2/models/iris/infer", json=V2, timeout=10).status_code

    def bad(_: int) -> int:
        return requests.post(f"{url}/v2/models/iris/infer", data=b"{", timeout=10).status_code

    def missing(_: int) -> int:
        return requests.get(f"{url}/v2/models/nope", timeout=10).status_code

    # New connections each time, so both workers answer some of them.
    with ThreadPoolExecutor(8) as pool:
        statuses = {
            "v1": list(pool.map(v1, range(40))),
            "v2": list(pool.map(v2, range(30))),
            "bad": list(pool.map(bad, range(20))),
            "missing": list(pool.map(missing, range(10))),
        }
    assert set(statuses["v1"]) == {200} and set(statuses["v2"]) == {200}
    assert set(statuses["bad"]) == {400} and set(statuses["missing"]) == {404}

    # An unknown name never becomes a label: its 404s count under model="".
    expected = {
        ("iris", "v1", "200"): 40,
        ("iris", "v2", "200"): 30,
        ("iris", "v2", "400"): 20,
        ("", "v2", "404"): 10,
    }

    def counts(text: str) -> dict[tuple[str, str, str], float]:
        return {key: count(text, model=key[0], protocol=key[1], status=key[2]) for key in expected}

    # Every row must be in, not just a total: /metrics scrapes count too, so a sum can reach
    # its figure while the other worker's last buffered counts are still on their way.
    text = scrape(url, lambda text: all(counts(text)[k] >= n for k, n in expected.items()))
    assert counts(text) == expected
    assert "nope" not in text
    latency = samples(text, "modelport_request_duration_seconds_count")
    assert sum(v for k, v in latency.items() if ("model", "iris") in k) == 90
    assert sum(samples(text, "modelport_bytes_total").values()) > 0
    assert samples(text, "modelport_models_loaded")[frozenset()] >= 8
    ready = samples(text, "modelport_model_ready")
    assert ready[frozenset({("model", "iris"), ("version", "2")})] == 1
    assert ready[frozenset({("model", "broken"), ("version", "1")})] == 0


def test_grpc_calls_are_counted_too(metered: GunicornServer) -> None:
    import grpc

    from protos import grpc_service_pb2 as pb
    from protos import grpc_service_pb2_grpc as pb_grpc

    with grpc.insecure_channel(f"127.0.0.1:{metered.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for _ in range(5):
            stub.ModelMetadata(pb.ModelMetadataRequest(name="iris"))
        with pytest.raises(grpc.RpcError):
            stub.ModelMetadata(pb.ModelMetadataRequest(name="nope"))
    text = scrape(
        metered.url, lambda text: count(text, model="", protocol="grpc", status="NOT_FOUND") >= 1
    )
    assert count(text, model="iris", protocol="grpc", status="OK") == 5
    assert count(text, model="", protocol="grpc", status="NOT_FOUND") == 1


def test_concurrent_requests_join_batches_and_sizes_are_exported(metered: GunicornServer) -> None:
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}

    def call(_: int) -> int:
        url = f"{metered.url}/v2/models/slow-batched/infer"
        return requests.post(url, json=body, timeout=10).status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(call, range(48))) == {200}
    text = scrape(
        metered.url,
        lambda text: (
            samples(text, "modelport_batch_size_sum").get(frozenset({("model", "slow-batched")}), 0)
            >= 48
        ),
    )
    buckets = samples(text, "modelport_batch_size_bucket")
    single = sum(v for k, v in buckets.items() if {("model", "slow-batched"), ("le", "1.0")} <= k)
    total = sum(v for k, v in buckets.items() if {("model", "slow-batched"), ("le", "+Inf")} <= k)
    rows = samples(text, "modelport_batch_size_sum")[frozenset({("model", "slow-batched")})]
    assert rows == 48  # every row was executed exactly once
    assert total < 48 and single < total  # fewer executions than requests: batches formed
