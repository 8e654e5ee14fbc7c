"""Slow and broken clients against a real gunicorn (gthread, gevent, httptools workers), issue 15.

Slow headers (a byte a second), a body that stops halfway, a client gone before its answer,
1,000 idle keep-alive connections, a gRPC stream that never sends and a cancelled gRPC call:
other clients keep being served meanwhile, and each such connection is closed by the server
within the configured timeouts (short ones here: 2 s headers and body, 3 s keep-alive, 2 s
stream idle). Waits are polls with generous deadlines; nothing is timed.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
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
  http: {header_timeout_s: 2, body_timeout_s: 2}
  grpc: {port: '${MODELPORT_GRPC_PORT:-0}', stream_idle_timeout_s: 2}
  omi: {port: 0}
models:
  - {name: echo, runtime: python, class: 'examples.echo:EchoModel'}
  - {name: slow, runtime: python, class: 'tests.models:SlowModel'}
"""
ECHO = b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [2.0]}]}'
#: Far more than any configured timeout: a connection still open after this was never closed.
CLOSED_WITHIN = 60.0


@pytest.fixture(scope="module", params=["gthread", "gevent", "httptools"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    path: Path = tmp_path_factory.mktemp(request.param) / "models.yaml"
    path.write_text(CONFIG)
    # Two threads a worker: two slow clients would be enough to starve gunicorn's own gthread.
    env = {"MODELPORT_THREADS": "2", "MODELPORT_KEEPALIVE": "3"}
    running = start_server(request.param, workers=2, config=path, env=env)
    yield running
    running.stop()


def served(server: GunicornServer, count: int = 20) -> None:
    """`count` ordinary requests, each on its own connection, all answered 200."""
    for _ in range(count):
        answer = requests.post(f"{server.url}/v2/models/echo/infer", data=ECHO, timeout=30)
        assert answer.status_code == 200, answer.text


def connect(server: GunicornServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=CLOSED_WITHIN)
    return sock


def closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server still sends, until it closes the connection (fails if it never
    does within CLOSED_WITHIN)."""
    sock.settimeout(CLOSED_WITHIN)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open; it sent {received[:200]!r}")
    finally:
        sock.close()
    return received


def test_slow_headers_are_closed_and_others_are_served(server: GunicornServer) -> None:
    request = b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
    socks = [connect(server) for _ in range(6)]  # more than the threads of both workers
    stop = threading.Event()

    def trickle(sock: socket.socket) -> None:
        for byte in request:
            if stop.is_set():
                return
            try:
                sock.send(bytes([byte]))
            except OSError:  # closed by the server: what we wait for
                return
            stop.wait(1.0)

    senders = [threading.Thread(target=trickle, args=(sock,)) for sock in socks]
    for sender in senders:
        sender.start()
    try:
        time.sleep(0.5)  # every slow client has started its headers
        served(server)
        for sock in socks:
            assert b"200 OK" not in closed_by_server(sock)
    finally:
        stop.set()
        for sender in senders:
            sender.join(30)
    served(server)


def test_a_body_that_stops_halfway_is_answered_400_or_closed(server: GunicornServer) -> None:
    socks = []
    for _ in range(4):
        sock = connect(server)
        sock.sendall(
            b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
            + b"x" * 500
        )
        socks.append(sock)
    served(server)
    for sock in socks:
        answer = closed_by_server(sock)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:300]
    served(server)


def test_a_client_gone_before_its_answer_costs_nothing(server: GunicornServer) -> None:
    body = (
        b'{"parameters": {"delay_ms": 500}, "inputs": [{"name": "x", "shape": [1], '
        b'"datatype": "FP32", "data": [1.0]}]}'
    )
    for _ in range(6):
        sock = connect(server)
        sock.sendall(
            b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        sock.close()
    served(server)
    time.sleep(1.0)  # their answers were written to closed connections by now
    served(server)
    assert "Traceback" not in server.log()


def test_1000_idle_keep_alive_connections(server: GunicornServer) -> None:
    request = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    socks = [connect(server) for _ in range(1000)]
    for sock in socks:
        sock.sendall(request)
    for sock in socks:  # each answered, and left open and idle
        sock.settimeout(CLOSED_WITHIN)
        head = b""
        while b"\r\n\r\n" not in head or not head.endswith(b"}"):
            chunk = sock.recv(4096)
            assert chunk, f"closed before its answer: {head!r}"
            head += chunk
        assert head.startswith(b"HTTP/1.1 200")
    served(server)  # while all 1,000 are open
    for sock in socks:  # the keep-alive timeout closes every one
        closed_by_server(sock)
    served(server)


def test_grpc_stream_that_never_sends_ends_and_a_cancel_costs_nothing(
    server: GunicornServer,
) -> None:
    never = threading.Event()

    def silent() -> Iterator[pb.ModelInferRequest]:
        never.wait(CLOSED_WITHIN)
        return
        yield  # a generator that sends nothing

    request = pb.ModelInferRequest(model_name="slow")
    request.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(1.0)
    request.parameters["delay_ms"].int64_param = 3000
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        streams = [stub.ModelStreamInfer(silent(), timeout=CLOSED_WITHIN) for _ in range(4)]
        cancelled = [stub.ModelInfer.future(request) for _ in range(4)]
        time.sleep(0.3)
        for call in cancelled:
            call.cancel()
        quick = pb.ModelInferRequest(model_name="echo")
        quick.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(2.0)
        for _ in range(10):
            assert stub.ModelInfer(quick, timeout=30).outputs
        for stream in streams:
            with pytest.raises(grpc.RpcError) as ended:
                list(stream)
            assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "stream_idle_timeout_s" in (ended.value.details() or "")
        never.set()
        for _ in range(10):
            assert stub.ModelInfer(quick, timeout=30).outputs
    served(server)
