"""`wsgi.input`: a request's body, the rest of it read from the socket as the app asks.

A small body is read by the worker's loop before the app runs; a large, chunked or
`Expect: 100-continue` one is read here, in the pool thread, as the app reads it. So the app
sees `Content-Length` first and can refuse a body (413) before any of it is read, and
`100 Continue` goes out only when the app starts reading.
"""

from __future__ import annotations

from typing import Any

from app.httpworker.connection import BODY_RECV_BYTES, RECV_BYTES, Connection, Request

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Body:
    """`wsgi.input`: what the loop read already, then the rest read from the socket as asked.

    Received parts are kept as they come and joined once per read, so reading a 64 MiB body
    in one `read(length)` copies it once, not once per `recv`.
    """

    def __init__(self, connection: Connection, request: Request) -> None:
        self._connection = connection
        self._request = request
        self._parts: list[bytes] = list(request.body)  # not yet read by the app, in order
        self._size = request.body_bytes  # bytes in `_parts`
        request.body.clear()

    def _more(self) -> bool:
        """Read and parse more of the body from the socket; False at its end."""
        request, connection = self._request, self._connection
        if request.complete or connection.broken:
            return False
        if request.expect_continue and not connection.continue_sent:
            connection.continue_sent = True
            connection.sock.sendall(_CONTINUE)
        left = (request.content_length or 0) - request.body_bytes
        data = connection.sock.recv(min(max(left, RECV_BYTES), BODY_RECV_BYTES))
        if not data:
            connection.broken = "eof"
            return False
        before = request.body_bytes
        connection.feed(data)
        if request.body:
            self._parts.extend(request.body)
            self._size += request.body_bytes - before
            request.body.clear()
        return True

    def _take(self, size: int) -> bytes:
        """The first `size` buffered bytes (all of them when there are fewer)."""
        parts = self._parts
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if len(data) > size:
            self._parts = [data[size:]]
            data = data[:size]
        else:
            self._parts = []
        self._size -= len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._more():
                pass
            return self._take(self._size)
        while self._size < size and self._more():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        while True:
            buffered = self._take(self._size)
            self._parts, self._size = ([buffered] if buffered else []), len(buffered)
            end = buffered.find(b"\n")
            if end >= 0 or not self._more():
                break
        stop = self._size if end < 0 else end + 1
        if size is not None and size >= 0:
            stop = min(stop, size)
        return self._take(stop)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")
