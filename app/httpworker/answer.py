"""An answer: `start_response`, then its status line, headers and body on the socket.

The head decides the framing (a length, chunked, or the end of the connection), drops the
application's hop-by-hop headers and says whether the connection stays open; the fixed
answers a pool thread writes on its own (400, 431, 500) are here too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from typing import Any

from app.httpworker.connection import Connection

_NO_BODY_STATUSES = (b"1", b"204", b"304")
_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding"})


class Answer:
    """start_response and the writing of one answer."""

    __slots__ = (
        "status",
        "headers",
        "sent",
        "chunked",
        "close",
        "head",
        "no_body",
        "length",
        "http10",
    )

    def __init__(self, head: bool, http10: bool) -> None:
        self.http10 = http10
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.sent = False
        self.chunked = False
        self.close = False
        self.head = head
        self.no_body = head
        self.length: int | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status = status
        self.headers = headers
        return self._write_unsupported

    def _write_unsupported(self, data: bytes) -> None:
        raise RuntimeError("this worker does not support the WSGI write() callable")


def _date_header() -> str:
    """The `Date` header line, made once a second."""
    now = int(time.time())
    cached = _DATE[0]
    if cached[0] != now:
        cached = _DATE[0] = (now, f"Date: {formatdate(now, usegmt=True)}\r\n")
    return cached[1]


_DATE: list[tuple[int, str]] = [(0, "")]


def write(connection: Connection, answer: Answer, result: Iterable[bytes]) -> None:
    """Write the answer the app returned: its head, then its body as the head framed it."""
    rest: Iterator[bytes] | None = None
    if isinstance(result, (list, tuple)) and len(result) == 1:
        first = result[0]  # its length is the body's, whatever the headers say
    else:
        rest = iter(result)
        first = b""
        for chunk in rest:  # the first chunk with data, or the end
            if chunk:
                first = chunk
                break
        else:
            rest = None
    if not answer.status:
        raise RuntimeError("the application did not call start_response")
    head = _head(answer, len(first) if rest is None else None)
    sock = connection.sock
    if answer.no_body:
        sock.sendall(head)
        answer.sent = True
        return
    if answer.chunked:
        sock.sendall(head + b"%x\r\n" % len(first) + first + b"\r\n" if first else head)
        answer.sent = True
        for chunk in rest or ():
            if chunk:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        return
    if len(first) < 65536:
        sock.sendall(head + first)
    else:
        sock.sendall(head)
        sock.sendall(first)
    answer.sent = True
    for chunk in rest or ():
        if chunk:
            sock.sendall(chunk)


def _head(answer: Answer, single: int | None) -> bytes:
    """The status line and headers; decides framing (length, chunked, close)."""
    status = answer.status
    lines = [f"HTTP/1.1 {status}\r\n", _date_header()]
    length: int | None = None
    for name, value in answer.headers:
        lower = name.lower()
        if lower == "content-length":
            length = int(value)
            continue
        if lower in _HOP_HEADERS:
            if lower == "connection" and "close" in value.lower():
                answer.close = True
            continue
        lines.append(f"{name}: {value}\r\n")
    no_body = status.encode("latin-1").startswith(_NO_BODY_STATUSES)
    answer.no_body = answer.head or no_body
    if length is not None:
        lines.append(f"Content-Length: {length}\r\n")
    elif no_body:
        pass
    elif single is not None:
        lines.append(f"Content-Length: {single}\r\n")
    elif answer.head or answer.http10:
        answer.close = True  # no length to give: the end of the connection ends the body
    else:
        answer.chunked = True
        lines.append("Transfer-Encoding: chunked\r\n")
    answer.length = length
    if answer.close:
        lines.append("Connection: close\r\n\r\n")
    else:
        lines.append("Connection: keep-alive\r\n\r\n" if answer.http10 else "\r\n")
    return "".join(lines).encode("latin-1")


def write_error(connection: Connection) -> None:
    """A 500 for an app that failed before any of its answer was sent; the connection ends."""
    body = b"Internal Server Error"
    try:
        connection.sock.sendall(
            b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n"
            b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
    except OSError:
        pass


def refuse(connection: Connection, status: str) -> None:
    """A 400 or 431 (`status`) for a stream that cannot be parsed; the connection ends."""
    reason = "Bad Request" if status == "400" else "Request Header Fields Too Large"
    body = reason.encode()
    try:
        connection.sock.sendall(
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    except OSError:
        pass
