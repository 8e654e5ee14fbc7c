"""`wsgi.input`: a request's body, the rest of it read from the socket as the app asks.

A small body is read by the worker's loop before the app runs; a large, chunked or
`Expect: 100-continue` one is read here, in the pool thread, as the app reads it. So the app
sees `Content-Length` first and can refuse a body (413) before any of it is read, and
`100 Continue` goes out only when the app starts reading.

The rest of a `Content-Length` body is received around the parser (`Connection.took_body`):
llhttp only counts such a body, and feeding it through would copy every byte once more into
`on_body`'s bytes. `readinto` receives it straight into the caller's buffer, so a 4 MiB tensor
crosses from the kernel into the array the model reads with no copy in user space at all.
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

    def _open(self) -> bool:
        """Whether more of the body can come from the socket; sends `100 Continue` once."""
        request, connection = self._request, self._connection
        if request.complete or connection.broken:
            return False
        if request.expect_continue and not connection.continue_sent:
            connection.continue_sent = True
            connection.sock.sendall(_CONTINUE)
        return True

    def _left(self) -> int | None:
        """Bytes of a `Content-Length` body not received yet; None for a chunked one."""
        request = self._request
        if request.chunked or request.content_length is None:
            return None
        return request.content_length - request.body_bytes

    def _more(self) -> bool:
        """Receive more of the body from the socket; False at its end."""
        if not self._open():
            return False
        connection, left = self._connection, self._left()
        if left is not None:  # exactly what is left: a pipelined request behind stays unread
            data = connection.sock.recv(min(left, BODY_RECV_BYTES))
            if not self._took(len(data)):
                return False
            self._parts.append(data)
            self._size += len(data)
            return True
        data = connection.sock.recv(RECV_BYTES)
        if not data:
            connection.broken = "eof"
            return False
        request = self._request
        before = request.body_bytes
        connection.feed(data)  # chunked: the parser takes the framing off
        if request.body:
            self._parts.extend(request.body)
            self._size += request.body_bytes - before
            request.body.clear()
        return True

    def _took(self, count: int) -> bool:
        """Count `count` bytes of a `Content-Length` body just received; False at an early EOF."""
        if not count:
            self._connection.broken = "eof"
            return False
        self._connection.took_body(self._request, count)
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

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` (any writable buffer) with the next body bytes; how many (0 at the end).

        Buffered bytes first, then a `Content-Length` body's rest received into `buffer`
        itself: fewer than `len(buffer)` only where the body ends (or its client stops).
        """
        view = memoryview(buffer).cast("B")
        filled = self._give(view)
        left = self._left()
        if left is None:  # chunked: through the parser, a part at a time
            while filled < len(view) and self._more():
                filled += self._give(view[filled:])
            return filled
        connection = self._connection
        while filled < len(view) and left > 0 and self._open():
            count = connection.sock.recv_into(view[filled:], min(len(view) - filled, left))
            if not self._took(count):
                break
            filled += count
            left -= count
        return filled

    def _give(self, view: memoryview) -> int:
        """Move buffered bytes into the front of `view`; how many."""
        given = 0
        while self._parts and given < len(view):
            part = self._parts[0]
            count = min(len(part), len(view) - given)
            view[given : given + count] = memoryview(part)[:count]
            if count == len(part):
                self._parts.pop(0)
            else:
                self._parts[0] = part[count:]
            given += count
        self._size -= given
        return given

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
