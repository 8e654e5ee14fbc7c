"""Streams end to end: real brokers, a real `gunicorn wsgi:app` with 2 workers, real clients.

Per broker (mosquitto, redis-server, Tansu for Kafka): 1,000 body-routed requests over three
models and every operation, malformed ones among them, all answered on the output topic with
what the URL form of each request answers over REST (matched by id); then a worker is SIGKILLed
with 500 requests in flight, and every one of them is still answered.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import yaml
from flask.testing import FlaskClient

from blueprints.factory import create_app
from tests.brokers import Broker
from tests.server import ROOT, GunicornServer
from tests.stream_clients import (
    Collector,
    KafkaClient,
    Message,
    MqttClient,
    RedisClient,
    create_kafka_topics,
)

pytestmark = pytest.mark.e2e

MODELS = ROOT / "models"
ROWS = [[6.8, 2.8, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
KINDS = ["mqtt", "redis", "kafka"]


def write_config(folder: Path, kind: str, url: str) -> Path:
    """Three models (two runtimes with explainers), the slow model, and one stream."""
    background = str(MODELS / "iris_background.npy")
    stream: dict[str, Any] = {
        "name": f"{kind}-scores",
        "kind": kind,
        "url": url,
        "input": "requests",
        "output": "answers",
        "group": "scorers",
        "concurrency": 8,
    }
    if kind == "redis":
        stream["claim_idle_ms"] = 1500
    if kind == "kafka":
        stream["options"] = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    config = {
        "server": {"name": "modelport-streams", "grpc": {"port": 0}, "omi": {"port": 0}},
        "models": [
            {
                "name": "iris",
                "runtime": "sklearn",
                "uri": str(MODELS / "iris.joblib"),
                "features": FEATURES,
                "explain": {"background": background},
            },
            {
                "name": "iris-xgboost",
                "runtime": "xgboost",
                "uri": str(MODELS / "iris.xgboost.json"),
            },
            {
                "name": "iris-onnx",
                "runtime": "onnx",
                "uri": str(MODELS / "iris.onnx"),
                "explain": {"background": background},
            },
            {"name": "slow", "runtime": "python", "class": "tests.models:SlowModel"},
        ],
        "streams": [stream],
    }
    path = folder / "streams.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def templates() -> list[tuple[dict[str, Any] | bytes, str, str, Any, str | None]]:
    """(stream body, REST method, REST path, REST body, Kafka model header) per request kind.

    The REST side is the URL form of the same request; its answer is the expected one.
    """
    found: list[tuple[dict[str, Any] | bytes, str, str, Any, str | None]] = []
    for model in ("iris", "iris-xgboost", "iris-onnx"):
        tensor = {"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": ROWS[:2]}
        found += [
            ({"model": model, "inputs": [tensor]}, "POST", f"/v2/models/{model}/infer",
             {"inputs": [tensor]}, None),
            ({"model": model, "operation": "predict", "inputs": ROWS}, "POST",
             f"/v2/models/{model}/predict", {"inputs": ROWS}, None),
            ({"model": f"{model}:1", "operation": "ready"}, "GET",
             f"/v2/models/{model}/versions/1/ready", None, None),
            ({"model": model, "operation": "metadata"}, "GET", f"/v2/models/{model}", None, None),
            ({"model": model, "instances": ROWS[1:]}, "POST", f"/v1/models/{model}:predict",
             {"instances": ROWS[1:]}, None),
            # MLServer's Kafka form: a plain v2 request, the model in a header (Kafka only).
            ({"inputs": [tensor]}, "POST", f"/v2/models/{model}/infer", {"inputs": [tensor]},
             model),
        ]  # fmt: skip
    records = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
    found += [
        ({"model": "iris", "operation": "infer_dict", "inputs": records}, "POST",
         "/v2/models/iris/infer_dict", {"inputs": records}, None),
        ({"model": "iris", "operation": "explain", "inputs": ROWS[:1]}, "POST",
         "/v2/models/iris/explain", {"inputs": ROWS[:1]}, None),
        ({"model": "iris-onnx", "operation": "explain", "instances": ROWS[:1]}, "POST",
         "/v1/models/iris-onnx:explain", {"instances": ROWS[:1]}, None),
        # Malformed: not JSON, an unknown model, a tensor whose data does not fit its shape.
        (b"{not json", "POST", "/v2/models/iris/infer", b"{not json", None),
        ({"model": "nope", "inputs": ROWS}, "POST", "/v2/models/nope/infer", {"inputs": ROWS},
         None),
        ({"model": "iris", "inputs": [{**tensor, "data": [1.0, 2.0]}]}, "POST",
         "/v2/models/iris/infer", {"inputs": [{**tensor, "data": [1.0, 2.0]}]}, None),
    ]  # fmt: skip
    return found


def expected(client: FlaskClient, method: str, path: str, body: Any, request_id: str) -> Any:
    """The REST answer to the URL form, with `request_id` as its id: (status, JSON body)."""
    if isinstance(body, dict) and "inputs" in body and "/v1/" not in path:
        body = {**body, "id": request_id}
    data = body if isinstance(body, bytes) else (orjson.dumps(body) if body else None)
    response = client.open(path, method=method, data=data)
    return response.status_code, orjson.loads(response.data)


def client_for(kind: str, port: int) -> Collector:
    if kind == "mqtt":
        return MqttClient(port, "requests", "answers")
    if kind == "redis":
        return RedisClient(port, "requests", "answers")
    create_kafka_topics(port, {"requests": 4, "answers": 1})
    return KafkaClient(port, "requests", "answers")


@pytest.fixture(scope="module", params=KINDS)
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    kind = request.param
    folder = tmp_path_factory.mktemp(f"streams-{kind}")
    broker = Broker(kind, folder).start()
    try:
        client = client_for(kind, broker.port)
        config = write_config(folder, kind, broker.url)
        server = GunicornServer(config=config, workers=2).start()
        try:
            yield kind, broker, server, client, config
        finally:
            server.stop()
            client.close()
    finally:
        broker.stop()


def wait_for_consumers(server: GunicornServer, client: Collector, kind: str) -> None:
    """One warm-up request per worker until both answered (Kafka's group forms first)."""
    body = orjson.dumps({"model": "iris", "operation": "ready"})
    sent: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        request_id = f"warmup-{len(sent)}"
        sent.append(request_id)
        client.publish([(request_id, body, None)])
        if not client.wait_for(sent, 1.0):
            return
    pytest.fail(f"{kind}: no answer to a warm-up request:\n{server.log()[-3000:]}")


def metric(text: str, name: str, stream: str, **labels: str) -> float:
    """The sum of a metric's samples for a stream (and labels)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and f'stream="{stream}"' in line:
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_thousand_requests_are_answered_as_rest_answers(running) -> None:
    kind, _broker, server, client, config = running
    wait_for_consumers(server, client, kind)
    rest = create_app(config, {"TESTING": True}).test_client()
    kinds = [t for t in templates() if t[4] is None or kind == "kafka"]
    messages: list[Message] = []
    wanted: dict[str, Any] = {}
    answers_of: dict[int, Any] = {}
    for number in range(1000):
        index = number % len(kinds)
        body, method, path, rest_body, header = kinds[index]
        request_id = f"{kind}-{number}"
        if index not in answers_of:
            answers_of[index] = expected(rest, method, path, rest_body, "ID")
        wanted[request_id] = answers_of[index]
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        messages.append((request_id, data, header))
    started = time.perf_counter()
    client.publish(messages)
    missing = client.wait_for(list(wanted), 120)
    seconds = time.perf_counter() - started
    assert not missing, f"{len(missing)} unanswered, e.g. {sorted(missing)[:5]}"
    print(f"\n{kind}: 1000 messages answered in {seconds:.2f} s ({1000 / seconds:.0f}/s)")
    failures = 0
    for request_id, (status, body) in wanted.items():
        # At least once: a group that rebalances while it forms may answer a record twice.
        for got_status, got_body in client.answers[request_id]:
            got = orjson.loads(got_body)
            if isinstance(got, dict) and "model_name" in got:
                assert got.pop("id") == request_id
                got["id"] = "ID"
            assert (got_status, got) == (status, body), request_id
        failures += status >= 400
    assert failures >= 3 * (1000 // len(kinds))  # the three malformed kinds, every round
    scrape = requests.get(f"{server.url}/metrics", timeout=10).text
    name = f"{kind}-scores"
    answered = {i: len(client.answers[i]) for i in wanted}
    assert metric(scrape, "modelport_stream_messages_received_total", name) >= 1000
    assert metric(scrape, "modelport_stream_messages_answered_total", name, status="404") == sum(
        answered[i] for i, (status, _) in wanted.items() if status == 404
    )
    assert metric(scrape, "modelport_stream_messages_failed_total", name) == sum(
        answered[i] for i, (status, _) in wanted.items() if status >= 400
    )
    # Stream traffic is in the per-model request metrics too, under the broker's name.
    assert f'modelport_requests_total{{model="iris",protocol="{kind}",status="200"}}' in scrape
    if kind == "redis":  # the broker tells the group's lag and pending counts
        assert "modelport_stream_lag{" in scrape and "modelport_stream_pending{" in scrape


def test_a_killed_worker_loses_no_message(running) -> None:
    kind, _broker, server, client, _config = running
    assert server.process is not None
    before = server.worker_pids()
    assert len(before) == 2, before
    messages: list[Message] = []
    for number in range(500):
        tensor = {"name": "x", "shape": [1], "datatype": "FP32", "data": [number]}
        body = {"model": "slow", "inputs": [tensor], "parameters": {"delay_ms": 20}}
        messages.append((f"{kind}-fault-{number}", orjson.dumps(body), None))
    ids = [request_id for request_id, _, _ in messages]
    client.publish(messages)
    deadline = time.monotonic() + 30
    while sum(1 for i in ids if i in client.answers) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    answered_at_kill = sum(1 for i in ids if i in client.answers)
    assert answered_at_kill < 450, "the requests were answered before the kill: nothing in flight"
    missing = client.wait_for(ids, 120)
    after = server.worker_pids()
    assert not missing, f"{len(missing)} lost, e.g. {sorted(missing)[:5]}\n{server.log()[-3000:]}"
    assert len(after) == 2 and victim not in after, (before, after)
    for number, request_id in enumerate(ids):
        for status, body in client.answers[request_id]:
            assert status == 200, body
            assert orjson.loads(body)["outputs"][0]["data"] == [float(number)]
    duplicates = sum(len(client.answers[i]) - 1 for i in ids)
    print(f"\n{kind}: killed at {answered_at_kill}/500 answered; {duplicates} answered twice")
