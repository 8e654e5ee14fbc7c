"""Process lifecycle: SIGTERM drains health and finishes in-flight requests; SIGHUP remounts."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from tests.grpc_support import SIDECAR_LINE
from tests.server import HTTP_WORKER_CLASSES, ROOT, GunicornServer

pytestmark = pytest.mark.e2e

SLOW = {
    "parameters": {"delay_ms": 1500},
    "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}],
}
MODELS = ROOT / "models"


def config(tmp_path: Path, *names: str) -> Path:
    entries = {
        "iris": f"  - {{name: iris, runtime: sklearn, uri: {MODELS / 'iris.joblib'}}}",
        "slow": "  - {name: slow, runtime: python, class: 'tests.models:SlowModel'}",
        "echo": "  - {name: echo, runtime: python, class: 'examples.echo:EchoModel'}",
        "sum": "  - {name: sum, runtime: python, class: 'examples.tensor_sum:SumModel'}",
    }
    path = tmp_path / "models.yaml"
    text = "server:\n  grpc: {port: '${MODELPORT_GRPC_PORT:-0}'}\n  omi: {port: 0}\nmodels:\n"
    path.write_text(text + "\n".join(entries[n] for n in names) + "\n")
    return path


@pytest.mark.parametrize("worker_class", HTTP_WORKER_CLASSES)
def test_sigterm_finishes_50_in_flight_requests(tmp_path: Path, worker_class: str) -> None:
    server = GunicornServer(
        config(tmp_path, "slow"),
        workers=2,
        worker_class=worker_class,
        env={"MODELPORT_THREADS": "32"},
    ).start()
    url = f"{server.url}/v2/models/slow/infer"
    with ThreadPoolExecutor(50) as pool:
        futures = [pool.submit(requests.post, url, json=SLOW, timeout=30) for _ in range(50)]
        time.sleep(0.7)  # all 50 are inside the model now (1.5 s each)
        server.signal(signal.SIGTERM)
        statuses = [future.result().status_code for future in futures]
    assert statuses == [200] * 50
    assert server.stop() == 0
    # And it really stopped: nothing answers any more.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/v2/health/live", timeout=2)


@pytest.mark.parametrize("worker_class", HTTP_WORKER_CLASSES)
def test_sigterm_turns_grpc_health_not_serving_and_finishes_in_flight_calls(
    tmp_path: Path, worker_class: str
) -> None:
    server = GunicornServer(config(tmp_path, "slow"), grpc=True, worker_class=worker_class).start()
    deadline = time.monotonic() + 60
    while SIDECAR_LINE not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    serving, not_serving = (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    slow_grpc = pb.ModelInferRequest(model_name="slow")
    slow_grpc.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(1.0)
    slow_grpc.parameters["delay_ms"].int64_param = 2000
    # A slower REST request keeps the worker in its drain (it exits once HTTP is done), so
    # the sidecar can be asked what it reports while the gRPC call is still in flight.
    slow_rest = {**SLOW, "parameters": {"delay_ms": 4000}}
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=20)
            assert next(watch).status == serving
            with ThreadPoolExecutor(1) as pool:
                rest = pool.submit(
                    requests.post, f"{server.url}/v2/models/slow/infer", json=slow_rest, timeout=30
                )
                call = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer.future(
                    slow_grpc, timeout=30
                )
                time.sleep(0.7)  # both are inside the model now
                server.signal(signal.SIGTERM)
                assert [answer.status for answer in watch] == [not_serving]  # then it ends
                for name in ("", "inference.GRPCInferenceService", "ModzyModel"):
                    check = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
                    assert check.status == not_serving, name
                assert list(call.result().outputs[0].contents.fp32_contents) == [1.0]
                assert rest.result().status_code == 200
        assert server.stop() == 0
    finally:
        server.stop()


@pytest.mark.parametrize("worker_class", HTTP_WORKER_CLASSES)
def test_sighup_remounts_the_config_without_dropping_requests(
    tmp_path: Path, worker_class: str
) -> None:
    path = config(tmp_path, "iris", "echo")
    server = GunicornServer(path, workers=2, worker_class=worker_class).start()
    failures: list[str] = []
    sent = 0
    stop = threading.Event()
    body = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
    # gunicorn stops the old workers as soon as it has spawned the new ones, so requests wait
    # in the listen backlog while the new workers load their models: seconds on a loaded host.
    # The test is about none being dropped, so timeouts are generous.

    def load() -> None:
        nonlocal sent
        session = requests.Session()
        while not stop.is_set():
            try:
                answer = session.post(f"{server.url}/v1/models/iris:predict", json=body, timeout=30)
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text}")
            except requests.RequestException as exc:
                failures.append(repr(exc))
            sent += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        config(tmp_path, "iris", "sum")  # echo goes, sum comes
        server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            sum_ready = requests.get(f"{server.url}/v2/models/sum/ready", timeout=30).status_code
            echo_gone = requests.get(f"{server.url}/v2/models/echo", timeout=30).status_code
            if sum_ready == 200 and echo_gone == 404:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the reloaded config was not mounted")
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        server.stop()
    assert sent > 50
    assert failures == []


@pytest.mark.parametrize("worker_class", [*HTTP_WORKER_CLASSES, "gevent"])
def test_an_idle_keep_alive_connection_does_not_hold_sigterm(
    tmp_path: Path, worker_class: str
) -> None:
    """A client's kept-alive connection (a requests.Session) is closed soon after SIGTERM; a
    request sent on it meanwhile is still answered, with `Connection: close`."""
    server = GunicornServer(
        config(tmp_path, "echo"),
        worker_class=worker_class,
        env={"MODELPORT_GRACEFUL_TIMEOUT": "30"},
    ).start()
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    url = f"{server.url}/v2/models/echo/infer"
    try:
        with requests.Session() as idle, requests.Session() as busy:
            for session in (idle, busy):  # two kept-alive connections
                assert session.post(url, json=body, timeout=10).headers.get("Connection") != "close"
            stopping = time.monotonic()
            server.signal(signal.SIGTERM)
            time.sleep(0.5)  # the worker is stopping; both connections are still open
            answer = busy.post(url, json=body, timeout=10)
            assert answer.status_code == 200 and answer.headers["Connection"] == "close"
            assert server.process is not None
            server.process.wait(timeout=60)
            # Well within graceful_timeout (30 s), which gunicorn's gevent worker waited out
            # for the idle connection.
            assert time.monotonic() - stopping < 10
    finally:
        server.stop()


@pytest.mark.parametrize("worker_class", HTTP_WORKER_CLASSES)
def test_grpc_calls_get_what_is_left_of_the_grace_period(tmp_path: Path, worker_class: str) -> None:
    """The HTTP drain and the gRPC drain share one graceful_timeout, counted from SIGTERM.

    A HUP stops the old worker with SIGTERM; a REST request keeps its HTTP drain busy for
    about 2.3 s; a gRPC call that needs longer than the whole period is then cut when what is
    left runs out (10 s after SIGTERM at the latest), not a whole period after the HTTP drain.
    """
    graceful = 10.0
    server = GunicornServer(
        config(tmp_path, "slow"),
        grpc=True,
        worker_class=worker_class,
        env={"MODELPORT_GRACEFUL_TIMEOUT": f"{graceful:g}"},
    ).start()
    deadline = time.monotonic() + 60
    while SIDECAR_LINE not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    endless = pb.ModelInferRequest(model_name="slow")
    endless.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(1.0)
    endless.parameters["delay_ms"].int64_param = 15_000
    try:
        with (
            grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
            ThreadPoolExecutor(1) as pool,
        ):
            slow_rest = {**SLOW, "parameters": {"delay_ms": 3000}}
            rest = pool.submit(
                requests.post, f"{server.url}/v2/models/slow/infer", json=slow_rest, timeout=30
            )
            call = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer.future(endless, timeout=30)
            time.sleep(0.7)  # both are inside the model now
            sigterm = time.monotonic()
            server.signal(signal.SIGHUP)
            assert rest.result().status_code == 200
            error = call.exception(timeout=30)
            assert error is not None  # cut, not finished
            cut = time.monotonic() - sigterm
        # 1 s of the period is kept for the rest of worker_exit; before, gRPC got all 10 s
        # again after the HTTP drain and was cut at about 12.3 s.
        assert graceful / 2 < cut < graceful, (cut, error)
    finally:
        server.stop()
