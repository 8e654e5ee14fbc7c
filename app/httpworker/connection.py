"""A client connection, its httptools parser, and the requests parsed off it.

The worker's loop and its pool threads take turns on a connection (never both at once): the
loop feeds it what arrives until a request is ready, a pool thread answers and may receive more
of a large body (a chunked one through the parser, a `Content-Length` one around it:
`took_body`). Here is what both need to know of it: the parser's callbacks filling in each
request's head and body, the head size limit (431), why a stream cannot be parsed further, and
when the oldest request may go to a pool thread.

Written for httptools 0.9.0 (`WRITTEN_FOR`; the pin test fails on another httptools): its
`HttpRequestParser` callbacks, `get_method`, `get_http_version`, `should_keep_alive`, and the
exceptions `feed_data` raises on an Upgrade, in a callback and on a malformed stream.
"""

from __future__ import annotations

import socket
import time
from collections import deque
from typing import Any

import httptools

#: The library versions this module was written and measured for (tests/app/test_library_pins.py).
WRITTEN_FOR = ("httptools", "0.9.0")
#: A body up to this size is read by the loop before the app runs (no thread waits for it).
READ_AHEAD_BYTES = 256 * 1024
#: Bytes one `recv` asks for; up to `BODY_RECV_BYTES` while a large body is still coming.
RECV_BYTES = 256 * 1024
BODY_RECV_BYTES = 8 * 1024 * 1024
#: The most bytes a request's line and headers may take (gunicorn: 4094 + 100 x 8190).
MAX_HEAD_BYTES = 64 * 1024


class HeadTooLarge(Exception):
    """A request line and headers over `MAX_HEAD_BYTES`."""


class Request:
    """One request's head as parsed, its body so far, and where it stands."""

    __slots__ = (
        "method",
        "url",
        "headers",
        "body",
        "body_bytes",
        "complete",
        "keep_alive",
        "expect_continue",
        "content_length",
        "chunked",
        "version",
        "head_done",
    )

    def __init__(self) -> None:
        self.method = ""
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.complete = False
        self.keep_alive = True
        self.expect_continue = False
        self.content_length: int | None = None
        self.chunked = False
        self.version = "1.1"
        self.head_done = False

    # What gunicorn's pre_request hook logs.
    @property
    def path(self) -> str:
        return self.url.partition(b"?")[0].decode("latin-1")

    @property
    def uri(self) -> str:
        return self.url.decode("latin-1")


class Connection:
    """A client connection and its parser; touched by one thread at a time (loop or pool)."""

    __slots__ = (
        "sock",
        "fd",
        "peer",
        "local",
        "parser",
        "requests",
        "current",
        "head_bytes",
        "head_started",
        "deadline",
        "closed",
        "broken",
        "continue_sent",
    )

    def __init__(self, sock: socket.socket, peer: Any, local: Any) -> None:
        self.sock = sock
        self.fd = sock.fileno()  # kept: a closed socket's fileno() is -1
        self.peer = peer
        self.local = local
        self.parser = httptools.HttpRequestParser(self)
        self.requests: deque[Request] = deque()  # heads complete, oldest first
        self.current: Request | None = None  # being parsed
        self.head_bytes = 0
        self.head_started = 0.0  # when the first byte of the head being parsed arrived
        self.deadline = 0.0
        self.closed = False
        self.broken: str | None = None  # why the stream cannot be parsed further
        self.continue_sent = False

    # -- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.current = Request()
        self.head_bytes = 0
        self.head_started = time.monotonic()

    def on_url(self, url: bytes) -> None:
        request = self.current
        assert request is not None
        request.url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.current
        assert request is not None
        request.headers.append((name, value))
        self._count_head(len(name) + len(value))

    def _count_head(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > MAX_HEAD_BYTES:
            raise HeadTooLarge()

    def on_headers_complete(self) -> None:
        request = self.current
        assert request is not None
        parser = self.parser
        request.method = parser.get_method().decode("latin-1")
        request.version = parser.get_http_version()
        request.keep_alive = parser.should_keep_alive()
        request.head_done = True
        for name, value in request.headers:
            lower = name.lower()
            if lower == b"content-length":
                request.content_length = int(value)
            elif lower == b"transfer-encoding" and b"chunked" in value.lower():
                request.chunked = True
            elif lower == b"expect" and value.lower() == b"100-continue":
                request.expect_continue = True
        self.requests.append(request)

    def on_body(self, body: bytes) -> None:
        request = self.current
        assert request is not None
        request.body.append(body)
        request.body_bytes += len(body)

    def on_message_complete(self) -> None:
        request = self.current
        assert request is not None
        request.complete = True
        self.current = None

    # -- reading ------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Parse what arrived; a stream that cannot be parsed is marked `broken`."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # An Upgrade (h2c, websocket) is not taken: the request is served as HTTP/1.1,
            # and nothing after it is read (llhttp stops at the end of its head).
            self.broken = "upgrade"
            request = self.requests[-1] if self.requests else None
            if request is not None and not request.complete:
                request.complete = not request.chunked and not request.content_length
        except httptools.HttpParserCallbackError as exc:
            self.broken = "431" if isinstance(exc.__context__, HeadTooLarge) else "400"
        except (HeadTooLarge, httptools.HttpParserError, ValueError):
            self.broken = "431" if self.head_bytes > MAX_HEAD_BYTES else "400"

    def took_body(self, request: Request, size: int) -> None:
        """`size` more bytes of `request`'s `Content-Length` body were received, not parsed.

        The parser only counts such a body, so it is not fed: at the body's end the request is
        complete and a new parser starts at the next request's first byte (the old one would
        take those bytes for body).
        """
        request.body_bytes += size
        if request.body_bytes >= (request.content_length or 0):
            request.complete = True
            self.current = None
            self.parser = httptools.HttpRequestParser(self)

    def reading_head(self) -> bool:
        """Whether a request's head has begun and is not complete yet."""
        return self.current is not None and not self.current.head_done

    def ready(self) -> bool:
        """Whether the oldest request can go to a pool thread now."""
        if not self.requests:
            return False
        request = self.requests[0]
        return (
            request.complete
            or request.chunked
            or request.expect_continue
            or (request.content_length or 0) > READ_AHEAD_BYTES
        )

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass
