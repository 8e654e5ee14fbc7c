"""deploy/docker-compose.yml for real: three replicas behind nginx, Prometheus scraping them.

Everything goes through the published ports of the balancer, as a client's would, with real
clients (requests, tritonclient.grpc); which replica answered is read from each replica's own
/metrics, inside its container. The tests run in order: the kill and `down` come last.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy import IRIS_ROWS, PREFIX, V2_BODY
from tests.deploy.engine import Engine, run
from tests.deploy.images import Images
from tests.grpc_support import run_client
from tests.server import ROOT, free_port

pytestmark = pytest.mark.deploy

COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"
REPLICAS = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["modelport"]["deploy"]["replicas"]
CALLS = 30  # per protocol: enough that a replica left out by chance is 3 * (2/3)^30 unlikely
_METRICS = (
    "import urllib.request; "
    "print(urllib.request.urlopen('http://127.0.0.1:8080/metrics', timeout=10).read().decode())"
)


class Stack:
    """One compose project of deploy/docker-compose.yml, its ports published on free ones."""

    def __init__(self, engine: Engine, images: Images) -> None:
        self.engine = engine
        self.project = f"{PREFIX}{os.getpid()}"
        self.ports = {name: free_port() for name in ("REST", "GRPC", "OMI", "PROMETHEUS")}
        self.env = {
            **engine.env,
            "MODELPORT_IMAGE": images.modelport,
            "NGINX_IMAGE": images.nginx,
            "PROMETHEUS_IMAGE": images.prometheus,
            **{f"MODELPORT_PUBLISH_{name}": str(port) for name, port in self.ports.items()},
        }
        self.rest = f"http://127.0.0.1:{self.ports['REST']}"
        self.grpc = f"127.0.0.1:{self.ports['GRPC']}"
        self.prometheus = f"http://127.0.0.1:{self.ports['PROMETHEUS']}"

    def compose(self, *args: str, timeout: float = 600) -> str:
        command = [*self.engine.compose, "-p", self.project, "-f", str(COMPOSE_FILE), *args]
        return run(command, timeout=timeout, env=self.env, cwd=ROOT)

    def containers(self, *filters: str) -> list[str]:
        """Ids of this project's containers (running ones unless `--all` is passed)."""
        label = f"label=com.docker.compose.project={self.project}"
        return self.engine("ps", "-q", "--filter", label, *filters).split()

    def replicas(self) -> list[str]:
        return self.containers("--filter", "label=com.docker.compose.service=modelport")

    def address(self, container: str) -> str:
        template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        return self.engine("inspect", "-f", template, container).strip()

    def requests_served(self, container: str) -> dict[str, float]:
        """The replica's modelport_requests_total for iris, by protocol, read inside it."""
        text = self.engine("exec", container, "python", "-c", _METRICS)
        counts: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "modelport_requests_total" and sample.labels["model"] == "iris":
                    protocol = sample.labels["protocol"]
                    counts[protocol] = counts.get(protocol, 0) + sample.value
        return counts

    def served_by_replica(self, replicas: list[str] | None = None) -> dict[str, dict[str, float]]:
        """Every replica's counts once they hold still: a worker adds its last requests to the
        shared numbers up to a quarter second late (README, Metrics), so a read right after a
        call may miss it, and the next read count it."""
        replicas = self.replicas() if replicas is None else replicas
        counts = {replica: self.requests_served(replica) for replica in replicas}
        for _ in range(20):
            time.sleep(0.5)
            again = {replica: self.requests_served(replica) for replica in replicas}
            if again == counts:
                return counts
            counts = again
        raise AssertionError(f"the replicas' counts never held still: {counts}")


@pytest.fixture(scope="module")
def stack(engine: Engine, images: Images, trained_models: object) -> Iterator[Stack]:
    """The stack up (compose waits for every replica's HEALTHCHECK), and down at the end."""
    running = Stack(engine, images)
    try:
        running.compose("up", "-d", "--no-build")
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{running.rest}/v2/health/ready", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the balancer never answered:\n{running.compose('logs', '--tail=50')}")
            time.sleep(0.5)
        yield running
    finally:
        running.compose("down", "--volumes", "--timeout", "40")


def _v1(stack: Stack) -> requests.Response:
    return requests.post(
        f"{stack.rest}/v1/models/iris:predict", json={"instances": IRIS_ROWS}, timeout=30
    )


def _v2(stack: Stack) -> requests.Response:
    return requests.post(f"{stack.rest}/v2/models/iris/infer", json=V2_BODY, timeout=30)


def _grpc(stack: Stack, calls: int, *flags: str) -> dict[str, Any]:
    return run_client("triton_infer.py", stack.grpc, "iris", calls, *flags)


def test_every_replica_is_up_and_healthy(stack: Stack, engine: Engine) -> None:
    replicas = stack.replicas()
    assert len(replicas) == REPLICAS
    for replica in replicas:
        assert engine("inspect", "-f", "{{.State.Health.Status}}", replica).strip() == "healthy"
        assert engine("exec", replica, "id", "-u").strip() == "10001"


def test_rest_v1_and_v2_answer_through_the_balancer(
    stack: Stack, iris_predictions: list[int]
) -> None:
    v1 = _v1(stack)
    assert v1.status_code == 200, v1.text
    assert v1.json() == {"predictions": iris_predictions}
    v2 = _v2(stack)
    assert v2.status_code == 200, v2.text
    (output,) = [o for o in v2.json()["outputs"] if o["name"] == "predictions"]
    assert output["data"] == iris_predictions
    assert v2.headers["X-Request-ID"]  # nginx's id, which the replica logs and answers
    unknown = requests.post(f"{stack.rest}/v2/models/nope/infer", json=V2_BODY, timeout=30)
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]


def test_tritonclient_grpc_through_the_balancer(stack: Stack, iris_predictions: list[int]) -> None:
    found = _grpc(stack, 3)
    assert (found["live"], found["ready"], found["model_ready"]) == (True, True, True)
    assert found["failures"] == []
    assert found["predictions"] == [iris_predictions] * 3


def test_requests_spread_over_every_replica(stack: Stack, iris_predictions: list[int]) -> None:
    before = stack.served_by_replica()
    for _ in range(CALLS):
        assert _v2(stack).status_code == 200
    # One channel: nginx spreads its calls, not its connection. Only ModelInfer calls, so that
    # the replicas' iris counts add up to them.
    found = _grpc(stack, CALLS, "--infer-only")
    assert found["failures"] == [] and len(found["predictions"]) == CALLS
    after = stack.served_by_replica()
    for protocol in ("v2", "grpc"):
        served = {r: after[r].get(protocol, 0) - before[r].get(protocol, 0) for r in after}
        assert sum(served.values()) == CALLS, (protocol, served)
        assert all(count > 0 for count in served.values()), (protocol, served)


def test_prometheus_scrapes_every_replica(stack: Stack) -> None:
    addresses = {f"{stack.address(replica)}:8080" for replica in stack.replicas()}
    deadline = time.monotonic() + 90  # Prometheus's first scrape comes within scrape_interval
    while True:
        answer = requests.get(f"{stack.prometheus}/api/v1/query?query=up", timeout=10).json()
        up = {s["metric"]["instance"]: s["value"][1] for s in answer["data"]["result"]}
        if up == dict.fromkeys(addresses, "1") or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert up == dict.fromkeys(addresses, "1")
    assert {s["metric"]["job"] for s in answer["data"]["result"]} == {"modelport"}


def test_killing_a_replica_leaves_the_others_answering(
    stack: Stack, engine: Engine, iris_predictions: list[int]
) -> None:
    victim, *survivors = stack.replicas()
    before = stack.served_by_replica(survivors)
    engine("kill", victim)
    # At once, while nginx may still have the dead address from its DNS cache.
    for _ in range(CALLS):
        answer = _v1(stack)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": iris_predictions}
    found = _grpc(stack, CALLS, "--infer-only")
    assert found["failures"] == []
    assert found["predictions"] == [iris_predictions] * CALLS
    assert sorted(stack.replicas()) == sorted(survivors)
    after = stack.served_by_replica(survivors)
    for protocol in ("v1", "grpc"):
        served = sum(after[r].get(protocol, 0) - before[r].get(protocol, 0) for r in survivors)
        assert served == CALLS, protocol


def test_replicas_added_are_used_without_a_reload(stack: Stack, engine: Engine) -> None:
    # Back to full strength and one more: compose starts the killed replica and adds another.
    stack.compose("up", "-d", "--no-build", "--scale", f"modelport={REPLICAS + 1}")
    replicas = stack.replicas()
    assert len(replicas) == REPLICAS + 1
    deadline = time.monotonic() + 120
    while not all(
        engine("inspect", "-f", "{{.State.Health.Status}}", r).strip() == "healthy"
        for r in replicas
    ):
        assert time.monotonic() < deadline, "the new replicas never became healthy"
        time.sleep(1)
    time.sleep(6)  # nginx's cached DNS answer (valid=5s) has expired now
    before = stack.served_by_replica()
    calls = 40  # a replica left out by chance: 4 * (3/4)^40, under 1e-4
    for _ in range(calls):
        assert _v2(stack).status_code == 200
    after = stack.served_by_replica()
    served = {r: after[r].get("v2", 0) - before[r].get("v2", 0) for r in replicas}
    assert sum(served.values()) == calls and all(n > 0 for n in served.values()), served


def test_down_leaves_nothing_running(stack: Stack, engine: Engine) -> None:
    stack.compose("down", "--volumes", "--timeout", "40")
    assert stack.containers("--all") == []
    label = f"label=com.docker.compose.project={stack.project}"
    assert engine("network", "ls", "-q", "--filter", label).split() == []
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{stack.rest}/v2/health/ready", timeout=5)
