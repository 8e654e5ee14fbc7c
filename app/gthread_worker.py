"""gunicorn's gthread worker, with deadlines on reading requests (`app.slow_clients`).

Two changes, both about clients that send slowly or not at all:

- Each connection's socket is a `GuardedSocket`: headers must arrive within
  `header_timeout_s` of their first byte, a body may pause `body_timeout_s` at most.
- A new connection with nothing to read yet waits on the worker's poller, not in a thread:
  gunicorn hands every new connection to a thread that waits up to 5 s for its first byte, so
  a few hundred connections that never send held a 2-thread worker for minutes. A connection
  that sends nothing for `header_timeout_s` is closed.

gunicorn.conf.py selects this class for `MODELPORT_WORKER_CLASS=gthread` (the default).
"""

from __future__ import annotations

import errno
import select
import selectors
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn
from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker

from app.slow_clients import GuardedSocket, timeouts


class ThreadWorker(GunicornThreadWorker):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's gthread worker whose connections have read deadlines."""

    def accept(self, listener: Any) -> None:
        """Accept a connection; serve it now if it has sent something, else wait on the poller."""
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        header_timeout, body_timeout = timeouts(self.wsgi)
        client_sock.setblocking(True)
        guarded = GuardedSocket(client_sock, header_timeout, body_timeout)
        conn = TConn(self.cfg, guarded, client_addr, listener.getsockname())
        if _readable(client_sock):
            conn.data_ready = True
            self.enqueue_req(conn)
            return
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + header_timeout
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )

    def handle(self, conn: TConn) -> Any:
        """Serve one request of `conn` (in a pool thread): its headers' deadline starts anew."""
        if isinstance(conn.sock, GuardedSocket):
            conn.sock.begin_request()
        return super().handle(conn)

    def handle_request(self, req: Any, conn: TConn) -> Any:
        """The headers are in: the body's reads have their own deadline."""
        if isinstance(conn.sock, GuardedSocket):
            conn.sock.headers_done()
        return super().handle_request(req, conn)


def _readable(sock: Any) -> bool:
    """Whether the socket has bytes to read right now (without waiting)."""
    poller = select.poll()  # not select(): a worker may hold more than 1,024 descriptors
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))
