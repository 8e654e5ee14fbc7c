"""Deadlines on reading a request, for gunicorn's workers: slow and broken clients (issue 15).

gunicorn reads a request's headers and body with blocking reads and no deadline of their own.
Under gthread that holds one of a worker's few threads per client: two clients sending their
headers one byte a second starve a 2-thread worker; under gevent it holds a greenlet (cheap) and
a connection for ever. `GuardedSocket` wraps each client socket so that:

- the headers of a request must all arrive within `server.http.header_timeout_s` of its first
  byte (waiting for that first byte is the keep-alive timeout's business);
- once the headers are in, each read of the body waits at most `server.http.body_timeout_s`
  for more bytes (a body that stops halfway), and each write of the answer as long;
- a read past its deadline ends the connection as if the client had closed it: gunicorn drops
  it without a traceback, or the view sees a short body (400) and the connection closes.

The workers (`app.gthread_worker`, `app.gevent_worker`) mark where the headers end and where
the next request starts; everything else is passed to the real socket.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

log = logging.getLogger("modelport.http")


class GuardedSocket:
    """A client socket whose reads (and writes) have the deadlines described above."""

    def __init__(self, sock: socket.socket, header_timeout: float, body_timeout: float) -> None:
        self._sock = sock
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._in_headers = True
        self._header_deadline: float | None = None
        self._caller_timeout: float | None = sock.gettimeout()
        #: A read passed its deadline: the connection is over, every read answers EOF.
        self.expired = False

    def begin_request(self) -> None:
        """The next bytes are a new request's headers (its deadline starts with its first)."""
        self._in_headers = True
        self._header_deadline = None

    def headers_done(self) -> None:
        """The headers are in: from now on, reads are of the body."""
        self._in_headers = False

    # -- what gunicorn calls -------------------------------------------------------------------

    def recv(self, size: int, flags: int = 0) -> bytes:
        """Up to `size` bytes, or b"" (EOF) once a deadline has passed."""
        if self.expired:
            return b""
        if not self._in_headers:
            ours: float | None = self._body_timeout
        elif self._header_deadline is None:
            ours = None  # waiting for a request to start: keep-alive handles that wait
        else:
            ours = self._header_deadline - time.monotonic()
            if ours <= 0:
                return self._expire("its headers took longer than header_timeout_s")
        self._sock.settimeout(_shorter(ours, self._caller_timeout))
        try:
            data = self._sock.recv(size, flags)
        except TimeoutError:
            if self._caller_timeout is not None and (ours is None or self._caller_timeout <= ours):
                raise  # the caller's own timeout (a non-blocking read, a graceful close)
            what = "headers" if self._in_headers else "body"
            return self._expire(f"its {what} stopped coming (header_timeout_s, body_timeout_s)")
        if data and self._in_headers and self._header_deadline is None:
            self._header_deadline = time.monotonic() + self._header_timeout
        return data

    def settimeout(self, value: float | None) -> None:
        """The caller's own timeout; reads use the shorter of it and ours."""
        self._caller_timeout = value
        self._sock.settimeout(value)

    def setblocking(self, flag: bool) -> None:
        """As `socket.setblocking`: a timeout of None (blocking) or 0 (non-blocking)."""
        self.settimeout(None if flag else 0.0)

    def gettimeout(self) -> float | None:
        """The caller's own timeout."""
        return self._caller_timeout

    def fileno(self) -> int:
        """The real socket's descriptor (selectors and pollers register it)."""
        return self._sock.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def _expire(self, why: str) -> bytes:
        self.expired = True
        try:
            peer = self._sock.getpeername()
        except OSError:
            peer = "?"
        log.info("closing the connection of %s: %s", peer, why)
        return b""


def _shorter(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(0.0, min(a, b))


def timeouts(wsgi: Any) -> tuple[float, float]:
    """`(header_timeout_s, body_timeout_s)` of the Modelport app a worker serves."""
    core = getattr(wsgi, "extensions", {}).get("modelport")
    if core is None:  # not Modelport's app: the defaults
        return 10.0, 30.0
    http = core.settings.server.http
    return float(http.header_timeout_s), float(http.body_timeout_s)
