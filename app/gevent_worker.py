"""gunicorn's gevent worker, closing idle keep-alive connections when it stops, as gthread does,
with deadlines on reading requests (`app.slow_clients`), as `app.gthread_worker` has.

gunicorn's async workers decide whether a connection stays open when a request starts (`if not
self.alive: resp.force_close()`), then wait up to `keepalive` seconds for the next request.
The worker only exits once no connection is left, so one client holding a kept-alive connection
(a requests.Session, tritonclient, a balancer's pool) held a stopping gevent worker for all of
`graceful_timeout`: 30.3 s with an idle Session, 2.7 s with gthread (tests/e2e/test_lifecycle.py).

Here, once the worker stops (SIGTERM, a HUP's SIGTERM, `max_requests`), a connection waits
for its next request `LINGER_SECONDS` more at most: a request already on its way is still
answered (with `Connection: close`), and then the connection closes, as gunicorn's gthread
worker does with its STOP_KEEPALIVE_LINGER. gunicorn.conf.py selects this class for
`MODELPORT_WORKER_CLASS=gevent`.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventWorker as GunicornGeventWorker

from app.slow_clients import GuardedSocket, timeouts

#: How long a stopping worker keeps waiting for the next request on a kept-alive connection.
LINGER_SECONDS = 2.0


class GeventWorker(GunicornGeventWorker):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's gevent worker whose kept-alive connections end soon after it stops."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._waits: set[_NextRequest] = set()
        self._linger_until = 0.0
        super().__init__(*args, **kwargs)

    @property
    def alive(self) -> bool:
        """gunicorn's flag: False once the worker stops. Setting it False starts the linger."""
        return self._alive

    @alive.setter
    def alive(self, value: bool) -> None:
        stopping = getattr(self, "_alive", False) and not value
        self._alive = value
        if stopping:  # may run in a signal handler: only schedule (no greenlet switch)
            self._linger_until = time.monotonic() + LINGER_SECONDS
            gevent.get_hub().loop.timer(LINGER_SECONDS).start(self._end_waits)

    def timeout_ctx(self) -> _NextRequest:
        """What gunicorn's keep-alive loop waits for each next request in."""
        if self.alive:
            seconds = float(self.cfg.keepalive)
        else:
            seconds = max(0.0, self._linger_until - time.monotonic())
        return _NextRequest(self._waits, seconds)

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        """Serve a connection (in its greenlet) through a `GuardedSocket`."""
        header_timeout, body_timeout = timeouts(self.wsgi)
        client.setblocking(1)
        super().handle(listener, GuardedSocket(client, header_timeout, body_timeout), addr)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> None:
        """Serve one request whose headers are in; the next bytes are the next request's."""
        if isinstance(sock, GuardedSocket):
            sock.headers_done()
        try:
            super().handle_request(listener_name, req, sock, addr)
        finally:
            if isinstance(sock, GuardedSocket):
                sock.begin_request()

    def _end_waits(self) -> None:
        """End every wait still going at the end of the linger (the hub runs this)."""
        for wait in list(self._waits):
            wait.end()


class _NextRequest:
    """A connection's wait for its next request: `seconds` at most, or until `end`.

    Either way its own silent timeout is raised in the waiting greenlet, which gunicorn takes
    as "no request came" and closes the connection.
    """

    def __init__(self, waits: set[_NextRequest], seconds: float) -> None:
        self._waits = waits
        self._timeout = gevent.Timeout(seconds, False)
        self._greenlet: gevent.Greenlet | None = None

    def __enter__(self) -> _NextRequest:
        self._greenlet = gevent.getcurrent()
        self._timeout.start()
        self._waits.add(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        self._waits.discard(self)
        self._greenlet = None
        return bool(self._timeout.__exit__(kind, value, traceback))

    def end(self) -> None:
        """Stop waiting now. Called by the hub: the waiting greenlet is parked in its read, and
        switches back to the hub once it has closed the connection (as gevent's kill does)."""
        if self._greenlet is not None:
            self._greenlet.throw(self._timeout)
