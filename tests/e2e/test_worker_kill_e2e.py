"""SIGKILL one worker while 8 clients (4 REST, 4 gRPC) send: only its in-flight requests fail.

Each REST request opens its own connection (a kept-alive one to the dead worker would fail on
its next request, which is the client's pool, not the server); each gRPC client keeps its
channel, as real ones do, and reconnects through grpcio when its worker dies. Every request is
recorded with when it started and ended: a failure must have been in flight when the worker
died, and for gRPC on a channel that the dead worker served. The master starts a new worker,
which serves, and nothing else fails.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import requests

from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from tests.grpc_support import start_server
from tests.server import GunicornServer

pytestmark = pytest.mark.e2e

CONFIG = """\
server:
  grpc: {port: '${MODELPORT_GRPC_PORT:-0}'}
  omi: {port: 0}
models:
  - {name: pid, runtime: python, class: 'tests.models:SlowPidModel', parameters: {delay_ms: 50}}
"""
BODY = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}


@dataclass
class Sent:
    """One request: which client, when (monotonic), how it ended, and the pid that answered."""

    client: str
    started: float
    ended: float
    ok: bool
    pid: int | None = None
    channel_pid: int | None = None  # gRPC: the pid its channel answered from last
    error: str = ""


def gone(pid: int) -> bool:
    """The process has exited (gone, or a zombie its master has not reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def rest_client(server: GunicornServer, name: str, stop: threading.Event, out: list[Sent]) -> None:
    url = f"{server.url}/v2/models/pid/infer"
    while not stop.is_set():
        started = time.monotonic()
        try:
            answer = requests.post(url, json=BODY, timeout=60)
            ok = answer.status_code == 200
            pid = answer.json()["outputs"][0]["data"][0] if ok else None
            out.append(Sent(name, started, time.monotonic(), ok, pid, error=answer.text[:200]))
        except requests.RequestException as exc:
            out.append(Sent(name, started, time.monotonic(), False, error=repr(exc)[:200]))


def grpc_client(server: GunicornServer, name: str, stop: threading.Event, out: list[Sent]) -> None:
    request = pb.ModelInferRequest(model_name="pid")
    request.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(1.0)
    last: int | None = None
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        while not stop.is_set():
            started = time.monotonic()
            try:
                answer = stub.ModelInfer(request, timeout=60)
                pid = answer.outputs[0].contents.int64_contents[0]
                out.append(Sent(name, started, time.monotonic(), True, pid, last))
                last = pid
            except grpc.RpcError as exc:
                error = f"{exc.code().name}: {exc.details()}"
                out.append(Sent(name, started, time.monotonic(), False, None, last, error))


@pytest.mark.parametrize("worker_class", ["httptools", "gthread", "gevent"])
def test_sigkill_fails_only_the_requests_in_flight_on_that_worker(
    tmp_path: Path, worker_class: str
) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(CONFIG)
    server = start_server(worker_class, workers=2, config=path, env={"MODELPORT_THREADS": "4"})
    stop = threading.Event()
    sent: list[Sent] = []
    clients = [
        threading.Thread(target=rest_client, args=(server, f"rest-{i}", stop, sent))
        for i in range(4)
    ] + [
        threading.Thread(target=grpc_client, args=(server, f"grpc-{i}", stop, sent))
        for i in range(4)
    ]
    try:
        for client in clients:
            client.start()
        # Wait until both workers answered REST, and some gRPC channel sits on each worker.
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "both workers never served"
            served = {s.pid for s in list(sent) if s.ok}
            by_grpc = {s.pid for s in list(sent) if s.ok and s.client.startswith("grpc")}
            if len(served) == 2 and by_grpc:
                break
            time.sleep(0.1)
        victim = next(iter(by_grpc))  # a worker that has gRPC channels on it
        before = server.worker_pids()
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        while not gone(victim):
            time.sleep(0.005)
        dead_at = time.monotonic()
        # The master starts a new worker, and it serves.
        deadline = time.monotonic() + 90
        while True:
            assert time.monotonic() < deadline, f"no new worker served: {server.worker_pids()}"
            fresh = server.worker_pids() - before
            if fresh and any(s.ok and s.pid in fresh for s in list(sent)):
                break
            time.sleep(0.1)
        time.sleep(1.0)  # and a while more of everyone being served
    finally:
        stop.set()
        for client in clients:
            client.join(90)
        server.stop()

    failed = [s for s in sent if not s.ok]
    # A gRPC channel on the killed worker learns of it when its connection drops, which can
    # be a call or two after the process is gone: until its first answer after the kill, its
    # calls still went to the dead worker's connection.
    answered_after = [s for s in sent if s.ok and s.ended > killed_at]
    reconnected = {
        client: min((s.started for s in answered_after if s.client == client), default=math.inf)
        for client in {s.client for s in sent}
    }
    for s in failed:
        assert s.ended >= killed_at, s  # nothing failed before the kill
        if s.client.startswith("rest"):  # a new connection each: in flight when it died
            assert s.started <= dead_at, s
        else:  # on a channel the killed worker served, before it reconnected
            assert s.channel_pid in (victim, None) and s.started < reconnected[s.client], s
    # Everything else was answered: REST sent after the worker was gone, gRPC once reconnected.
    after = [
        s
        for s in sent
        if s.started > (dead_at if s.client.startswith("rest") else reconnected[s.client])
    ]
    assert after and all(s.ok for s in after)
    rest = sum(s.client.startswith("rest") for s in failed)
    print(
        f"\n{worker_class}: {len(failed)} of {len(sent)} requests failed with the worker kill "
        f"({rest} REST, {len(failed) - rest} gRPC)"
    )
