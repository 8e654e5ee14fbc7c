"""HTTP/1.1 as the httptools worker (app/httpworker/) speaks it, over raw sockets.

The lifecycle, auth, binary and compression e2e tests run on it too (tests/server.py's
HTTP_WORKER_CLASSES); these are the wire details a client library hides: pipelining, chunked
bodies, `Expect: 100-continue`, a body refused before it is read, slow clients, keep-alive.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.server import ROOT, GunicornServer

pytestmark = pytest.mark.e2e

BODY = b'{"inputs": [[6.8, 2.8, 4.8, 1.4]]}'
INFER = "/v2/models/iris/infer"


@pytest.fixture(scope="module")
def server() -> Iterator[GunicornServer]:
    """One worker with one pool thread (so a stuck thread would show), keep-alive 2 s."""
    env = {"MODELPORT_THREADS": "1", "GUNICORN_CMD_ARGS": "--keep-alive 2"}
    with GunicornServer(workers=1, worker_class="httptools", env=env) as running:
        yield running


def connect(server: GunicornServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=30)
    return sock


def read_answers(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """`count` answers read off the socket (Content-Length framed, or up to its close)."""
    buffer = b""
    answers = []
    while len(answers) < count:
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(65536)
            if not data:
                raise AssertionError(f"closed after {len(answers)} answers: {buffer!r}")
            buffer += data
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if status == 100:
            continue
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            data = sock.recv(65536)
            if not data:
                raise AssertionError("closed inside a body")
            buffer += data
        answers.append((status, headers, buffer[:length]))
        buffer = buffer[length:]
    return answers


def closed(sock: socket.socket, within: float = 10.0) -> bool:
    """Whether the server closes the connection within `within` seconds (sending nothing)."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def infer_head(length: int, extra: str = "") -> bytes:
    return (f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n{extra}\r\n").encode()


def predictions(body: bytes) -> list[int]:
    return list(json.loads(body)["outputs"][0]["data"])


def test_pipelined_requests_are_answered_in_order(server: GunicornServer) -> None:
    with connect(server) as sock:
        sock.sendall(
            infer_head(len(BODY))
            + BODY
            + b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
            + infer_head(len(BODY))
            + BODY
        )
        answers = read_answers(sock, 3)
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert predictions(answers[0][2]) == [1] and predictions(answers[2][2]) == [1]
    assert json.loads(answers[1][2]) == {"live": True}


def test_a_chunked_body_is_read_whole(server: GunicornServer) -> None:
    chunks = [BODY[:10], BODY[10:25], BODY[25:]]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    head = f"POST {INFER} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    with connect(server) as sock:
        sock.sendall(head + framed[:7])
        time.sleep(0.2)  # the rest comes later: the worker waits for it
        sock.sendall(framed[7:])
        ((status, _, body),) = read_answers(sock, 1)
    assert status == 200 and predictions(body) == [1]


def test_expect_100_continue_is_answered_before_the_body_comes(server: GunicornServer) -> None:
    with connect(server) as sock:
        sock.sendall(infer_head(len(BODY), "Expect: 100-continue\r\n"))
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(BODY)
        ((status, _, body),) = read_answers(sock, 1)
    assert status == 200 and predictions(body) == [1]


def test_a_body_over_the_limit_is_refused_before_it_is_read(server: GunicornServer) -> None:
    """413 from the declared length: no 100 Continue, the body never sent, connection closed."""
    with connect(server) as sock:
        sock.sendall(infer_head(64 * 1024 * 1024, "Expect: 100-continue\r\n"))
        ((status, headers, body),) = read_answers(sock, 1)
        assert status == 413 and b"max_request_bytes" in body
        assert headers["connection"] == "close"
        assert closed(sock)


def sum_request(rows: np.ndarray, extra: str = "") -> tuple[bytes, bytes]:
    """A binary `sum` request for a float32 [1, n] tensor: its head, and its body."""
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "datatype": "FP32",
                    "shape": list(rows.shape),
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ]
        }
    ).encode()
    body = header + rows.tobytes()
    head = (
        f"POST /v2/models/sum/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        f"Inference-Header-Content-Length: {len(header)}\r\n{extra}\r\n"
    ).encode()
    return head, body


def test_a_large_body_then_a_pipelined_request_both_answered(server: GunicornServer) -> None:
    """A 3 MiB body is received around the parser; the request behind it is parsed after it."""
    rows = np.arange(768 * 1024, dtype=np.float32).reshape(1, -1) % 7
    head, body = sum_request(rows)
    stream = head + body + infer_head(len(BODY)) + BODY
    with connect(server) as sock:
        for start in range(0, len(stream), 700_001):  # pieces cut across the body's end
            sock.sendall(stream[start : start + 700_001])
            time.sleep(0.01)
        answers = read_answers(sock, 2)
    assert [status for status, _, _ in answers] == [200, 200]
    assert json.loads(answers[0][2])["outputs"][0]["data"] == [float(rows.sum())]
    assert predictions(answers[1][2]) == [1]


def test_a_large_body_after_100_continue_keeps_the_connection(server: GunicornServer) -> None:
    rows = np.ones((1, 512 * 1024), dtype=np.float32)
    head, body = sum_request(rows, "Expect: 100-continue\r\n")
    with connect(server) as sock:
        for _ in range(2):  # the second on the same connection: the parser was renewed
            sock.sendall(head)
            assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            sock.sendall(body)
            ((status, headers, answer),) = read_answers(sock, 1)
            assert status == 200 and "connection" not in headers
            assert json.loads(answer)["outputs"][0]["data"] == [512 * 1024.0]


def test_a_large_body_cut_short_ends_only_its_connection(server: GunicornServer) -> None:
    head, body = sum_request(np.ones((1, 512 * 1024), dtype=np.float32))
    with connect(server) as sock:
        sock.sendall(head + body[: len(body) // 2])
        sock.shutdown(socket.SHUT_WR)  # the client gives up half way
        ((status, headers, answer),) = read_answers(sock, 1)
        assert status == 400 and b"ended after" in answer
        assert headers["connection"] == "close" and closed(sock)
    rows = np.full((1, 512 * 1024), 2, dtype=np.float32)
    head, body = sum_request(rows)
    with connect(server) as sock:
        sock.sendall(head + body)
        ((status, _, answer),) = read_answers(sock, 1)
    assert status == 200 and json.loads(answer)["outputs"][0]["data"] == [1024 * 1024.0]


def test_a_large_json_body_is_read_whole(server: GunicornServer) -> None:
    """Over `READINTO_BYTES`, as JSON: read into a bytearray, its `data` parsed by simdjson."""
    tensor = {"name": "input-0", "datatype": "FP32", "shape": [80_000, 4]}
    body = json.dumps({"inputs": [{**tensor, "data": [6.8, 2.8, 4.8, 1.4] * 80_000}]}).encode()
    assert len(body) > 1024 * 1024
    with connect(server) as sock:
        sock.sendall(infer_head(len(body)) + body)
        ((status, _, answer),) = read_answers(sock, 1)
    assert status == 200 and set(predictions(answer)) == {1}


def test_a_slow_client_does_not_hold_the_only_thread(server: GunicornServer) -> None:
    with connect(server) as slow:
        slow.sendall(infer_head(len(BODY))[:20])  # half a head, then nothing for a while
        answer = requests.post(server.url + INFER, data=BODY, timeout=10)
        assert answer.status_code == 200
        slow.sendall(infer_head(len(BODY))[20:] + BODY)
        ((status, _, _),) = read_answers(slow, 1)
    assert status == 200


def test_http_1_0_and_connection_close_end_the_connection(server: GunicornServer) -> None:
    for request in (
        b"GET /v2/health/live HTTP/1.0\r\n\r\n",
        b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ):
        with connect(server) as sock:
            sock.sendall(request)
            ((status, headers, _),) = read_answers(sock, 1)
            assert status == 200 and headers["connection"] == "close"
            assert closed(sock)


def test_an_idle_connection_is_closed_after_keepalive(server: GunicornServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        ((status, headers, _),) = read_answers(sock, 1)
        assert status == 200 and "connection" not in headers
        assert closed(sock, within=15)  # keep-alive is 2 s here


def test_a_request_that_cannot_be_parsed_gets_400(server: GunicornServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        ((status, headers, _),) = read_answers(sock, 1)
        assert status == 400 and headers["connection"] == "close"
    assert requests.get(server.url + "/v2/health/live", timeout=10).status_code == 200


def test_max_requests_recycles_the_worker_without_failing_a_request(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(
        "server:\n  grpc: {port: 0}\n  omi: {port: 0}\nmodels:\n"
        f"  - {{name: iris, runtime: sklearn, uri: {ROOT / 'models' / 'iris.joblib'}}}\n"
    )
    env = {"GUNICORN_CMD_ARGS": "--max-requests 5"}
    with GunicornServer(config, workers=1, worker_class="httptools", env=env) as server:
        # Two recycles' worth; the replacement's requests wait in the listen backlog while it
        # loads its models, hence the generous timeout.
        statuses = [
            requests.post(server.url + INFER, data=BODY, timeout=60).status_code for _ in range(12)
        ]
        assert server.log().count("Autorestarting worker") >= 2
    assert statuses == [200] * 12
