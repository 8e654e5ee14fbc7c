"""`wsgi.input` of the httptools worker over a real socket pair: the body received around the
parser (`Content-Length`) or through it (chunked), and what stays on the socket behind it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from app.httpworker.body import Body
from app.httpworker.connection import Connection, Request

BODY = bytes(range(256)) * 8192  # 2 MiB, every offset's byte known
NEXT = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def pair() -> Iterator[tuple[Connection, socket.socket]]:
    """The server's connection and the client's socket."""
    server, client = socket.socketpair()
    server.settimeout(10)
    connection = Connection(server, "peer", "local")
    yield connection, client
    connection.close()
    client.close()


def send(client: socket.socket, data: bytes) -> threading.Thread:
    """Send from another thread: a socket pair buffers far less than a body."""
    thread = threading.Thread(target=client.sendall, args=(data,), daemon=True)
    thread.start()
    return thread


def head(connection: Connection, client: socket.socket, head: bytes, ahead: int) -> Request:
    """Send `head` and the body's first `ahead` bytes; the loop's part: feed what came."""
    client.sendall(head + BODY[:ahead])
    received = b""
    while len(received) < len(head) + ahead:
        received += connection.sock.recv(1 << 20)
    connection.feed(received)
    return connection.requests.popleft()


def length_head(size: int = len(BODY)) -> bytes:
    return b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size


def test_readinto_takes_the_body_and_leaves_the_next_request(
    pair: tuple[Connection, socket.socket],
) -> None:
    connection, client = pair
    request = head(connection, client, length_head(), 100_000)
    body = Body(connection, request)
    send(client, BODY[100_000:] + NEXT)
    buffer = bytearray(len(BODY))
    assert body.readinto(buffer) == len(BODY)
    assert buffer == BODY and request.complete and connection.current is None
    assert body.readinto(bytearray(10)) == 0  # at its end
    connection.feed(connection.sock.recv(1024))  # the new parser takes the next request whole
    assert [r.url for r in connection.requests] == [b"/next"] and connection.broken is None


def test_read_in_pieces_stops_at_the_body_end(pair: tuple[Connection, socket.socket]) -> None:
    connection, client = pair
    request = head(connection, client, length_head(), 5)
    body = Body(connection, request)
    send(client, BODY[5:] + NEXT)
    pieces = [body.read(3), body.read(700_000), body.read()]
    assert b"".join(pieces) == BODY and body.read() == b""
    connection.feed(connection.sock.recv(1024))
    assert [r.url for r in connection.requests] == [b"/next"]


def test_readinto_a_small_buffer_then_read_the_rest(pair: tuple[Connection, socket.socket]) -> None:
    connection, client = pair
    request = head(connection, client, length_head(), 1000)
    body = Body(connection, request)
    send(client, BODY[1000:])
    first = bytearray(600)  # less than what is buffered: the rest stays buffered, in order
    assert body.readinto(first) == 600
    second = memoryview(bytearray(len(BODY) - 600))
    assert body.readinto(second) == len(BODY) - 600
    assert bytes(first) + second.tobytes() == BODY


def test_readinto_a_chunked_body_goes_through_the_parser(
    pair: tuple[Connection, socket.socket],
) -> None:
    connection, client = pair
    chunked = b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = Body(connection, head(connection, client, chunked, 0))
    send(client, b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY))
    buffer = bytearray(len(BODY) + 10)
    assert body.readinto(buffer) == len(BODY) and buffer[: len(BODY)] == BODY


def test_a_body_cut_short_marks_the_connection(pair: tuple[Connection, socket.socket]) -> None:
    connection, client = pair
    request = head(connection, client, length_head(), 10)
    body = Body(connection, request)
    client.sendall(BODY[10:1000])  # fits the socket buffer: sent before the shutdown
    client.shutdown(socket.SHUT_WR)
    assert body.readinto(bytearray(len(BODY))) == 1000
    assert connection.broken == "eof" and not request.complete


def test_expect_100_continue_is_sent_when_the_body_is_first_read(
    pair: tuple[Connection, socket.socket],
) -> None:
    connection, client = pair
    expect = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    body = Body(connection, head(connection, client, expect, 0))
    client.sendall(b"abcd")
    buffer = bytearray(4)
    assert body.readinto(buffer) == 4 and buffer == b"abcd"
    assert client.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"
