"""The gunicorn worker: one selector loop that reads and parses, a pool of threads that answer.

The loop (the main thread) accepts, reads every connection that is not being served and
feeds its parser, keeps the keep-alive, head and body deadlines, and hands a connection whose
oldest request is ready to the pool; on SIGTERM it stops accepting and drains. A pool thread
runs the app for each ready request on its connection, in order, writes the answers and hands
the connection back through a queue and gunicorn's wake-up pipe. What the worker does and does
not serve is in the package's docstring (app/httpworker/__init__.py).

Written for gunicorn 27.0.1's `Worker`: `init_process`, `run`, `handle_exit`, `notify`,
`PIPE`, `alive`, `nr`, `max_requests`, `wsgi` and the `pre_request`/`post_request` hooks.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import threading
import time
from queue import SimpleQueue
from typing import Any

from gunicorn.config import PreRequest
from gunicorn.workers.base import Worker

from app.httpworker.answer import Answer, refuse, write, write_error
from app.httpworker.body import Body
from app.httpworker.connection import RECV_BYTES, Connection, Request
from app.httpworker.environ import wsgi_environ
from app.slow_clients import timeouts

#: How long a stopping worker keeps an idle connection, for a request already on its way.
LINGER_SECONDS = 2.0

#: How often the loop tells the master it is alive and checks that its parent is.
NOTIFY_SECONDS = 1.0


class HttptoolsWorker(Worker):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn worker: a selector loop on httptools, and a pool of threads running the app."""

    def init_process(self) -> None:
        # epoll itself, not `selectors`: its Python wrapper (register/unregister/select's
        # key mapping) was a fifth of this worker's time per request (yappi). Connections are
        # watched one-shot: an event disarms the connection, so one handed to the pool costs no
        # unregister, and its handback re-arms it with one modify.
        self._epoll = select.epoll()
        self._listeners: dict[int, Any] = {}
        self._armed: dict[int, Connection] = {}  # fds in the epoll set: connection by fd
        self._handback: SimpleQueue[Connection] = SimpleQueue()
        self._work: SimpleQueue[Connection | None] = SimpleQueue()
        self._idle: dict[Connection, None] = {}  # in the loop, oldest deadline first-ish
        self._busy = 0  # connections with a pool thread
        self._busy_lock = threading.Lock()
        self._connections = 0
        self._accepting = False
        self._stopping_at = 0.0
        super().init_process()

    # -- gunicorn's hooks into the worker -----------------------------------------------

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: stop taking connections; the loop drains (gunicorn's pipe wakes it)."""
        self.alive = False

    def run(self) -> None:
        # Slow clients (issue 15), as the other workers have them (app/slow_clients.py): a
        # request's head must be in within header_timeout_s of its first byte, however slowly
        # it trickles; a body may pause body_timeout_s at most.
        self._header_timeout, self._body_timeout = timeouts(self.wsgi)
        # Each `self.cfg.x` goes through gunicorn's Config.__getattr__ and its setting's get():
        # read once here, not per request or per loop turn.
        cfg = self.cfg
        self._keepalive = float(cfg.keepalive)
        self._multiprocess = cfg.workers > 1
        self._pre_request, self._post_request = cfg.pre_request, cfg.post_request
        error_log = getattr(self.log, "error_log", None)  # gunicorn's Logger has one
        quiet = error_log is not None and not error_log.isEnabledFor(logging.DEBUG)
        if self._pre_request is PreRequest.default and quiet:
            # gunicorn's own hook only logs the request at debug level, working out its path
            # first: 6 % of this worker's time per request with the level above debug (yappi).
            self._pre_request = None
        max_connections = cfg.worker_connections
        self._threads = [
            threading.Thread(target=self._serve, name=f"http-{n}", daemon=True)
            for n in range(max(1, int(self.cfg.threads)))
        ]
        for thread in self._threads:
            thread.start()
        self._epoll.register(self.PIPE[0], select.EPOLLIN)
        for listener in self.sockets:
            listener.setblocking(False)
        self._accept_enabled(True)
        ppid = self.ppid
        checked = 0.0
        while self.alive:
            self._accept_enabled(self._connections < max_connections)
            self._poll(1.0)
            now = time.monotonic()
            self._expire(now)
            # The heartbeat (a utime of gunicorn's tmp file) and the parent check once a
            # second, not once per loop turn (about once per request under load): the
            # master's timeout is whole seconds.
            if now - checked >= NOTIFY_SECONDS:
                checked = now
                self.notify()
                if os.getppid() != ppid:
                    self.log.info("Parent changed, shutting down: %s", self)
                    break
        self._drain()

    # -- the loop -------------------------------------------------------------------------

    def _accept_enabled(self, enabled: bool) -> None:
        if enabled == self._accepting:
            return
        for listener in self.sockets:
            fd = listener.fileno()
            if enabled:
                self._epoll.register(fd, select.EPOLLIN)
                self._listeners[fd] = listener
            else:
                self._epoll.unregister(fd)
                self._listeners.pop(fd, None)
        self._accepting = enabled

    def _poll(self, timeout: float) -> None:
        try:
            events = self._epoll.poll(timeout)
        except OSError as exc:
            if exc.errno != errno.EINTR:
                raise
            return
        pipe = self.PIPE[0]
        for fd, _ in events:
            connection = self._armed.get(fd)
            if connection is not None:
                self._readable(connection)
            elif fd == pipe:
                self._wakeup()
            else:
                listener = self._listeners.get(fd)
                if listener is not None:
                    self._accept(listener)

    def _wakeup(self) -> None:
        try:
            while os.read(self.PIPE[0], 4096):
                pass
        except OSError:
            pass
        while not self._handback.empty():
            connection = self._handback.get_nowait()
            self._watch(connection)

    def _accept(self, listener: Any) -> None:
        for _ in range(64):
            if not self.alive:
                return  # stopping (max_requests, SIGTERM): the next worker takes it
            try:
                sock, peer = listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED):
                    return
                raise
            sock.settimeout(self._body_timeout)  # a pool thread's reads of a body, and writes
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._connections += 1
            self._watch(Connection(sock, peer, listener.getsockname()))

    def _watch(self, connection: Connection) -> None:
        """The loop reads this connection (again) until a request is ready."""
        if connection.closed:  # by a pool thread: epoll dropped its fd when it closed
            if self._armed.get(connection.fd) is connection:
                del self._armed[connection.fd]
            self._connections -= 1
            return
        now = time.monotonic()
        if self.alive:
            connection.deadline = now + self._keepalive
        else:  # stopping (maybe since a moment, before `_drain` began): linger at most
            connection.deadline = now + min(self._keepalive, LINGER_SECONDS)
            if self._linger_end:
                connection.deadline = min(connection.deadline, self._linger_end)
        if connection.reading_head():  # a pipelined request's head, begun behind the last
            connection.deadline = min(
                connection.deadline, connection.head_started + self._header_timeout
            )
        self._idle[connection] = None
        self._arm(connection)

    def _arm(self, connection: Connection) -> None:
        """Watch the connection for its next readable event (one event, then disarmed)."""
        fd = connection.fd
        events = select.EPOLLIN | select.EPOLLONESHOT
        if self._armed.get(fd) is connection:
            try:
                self._epoll.modify(fd, events)
                return
            except FileNotFoundError:
                pass
        # New, or its fd number is a closed connection's, which epoll dropped with it.
        self._armed[fd] = connection
        try:
            self._epoll.register(fd, events)
        except FileExistsError:
            self._epoll.modify(fd, events)

    def _readable(self, connection: Connection) -> None:
        try:
            data = connection.sock.recv(RECV_BYTES)
        except (TimeoutError, BlockingIOError, InterruptedError):
            self._arm(connection)
            return
        except OSError:
            data = b""
        if not data:
            self._unwatch(connection)
            self._close(connection)
            return
        connection.feed(data)
        if connection.ready() or connection.broken:
            self._idle.pop(connection, None)  # disarmed by its event: the pool has it now
            self._dispatch(connection)
            return
        if connection.reading_head():
            connection.deadline = connection.head_started + self._header_timeout
        elif connection.requests:  # a head is in, its (small) body still coming
            connection.deadline = time.monotonic() + self._body_timeout
        self._arm(connection)

    def _unwatch(self, connection: Connection) -> None:
        """Stop watching a connection the loop is about to close."""
        self._idle.pop(connection, None)
        fd = connection.fd
        if self._armed.get(fd) is connection:
            del self._armed[fd]
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass  # already closed: epoll dropped it

    def _dispatch(self, connection: Connection) -> None:
        with self._busy_lock:
            self._busy += 1
        self._work.put(connection)

    def _close(self, connection: Connection) -> None:
        connection.close()
        self._connections -= 1

    def _expire(self, now: float) -> None:
        expired = [c for c in self._idle if c.deadline <= now]
        for connection in expired:
            self._unwatch(connection)
            self._close(connection)

    def _drain(self) -> None:
        """Stop: no new connections, idle ones closed, those being served finished."""
        self._accept_enabled(False)
        now = time.monotonic()
        self._linger_end = now + LINGER_SECONDS
        for connection in self._idle:
            connection.deadline = min(connection.deadline, self._linger_end)
        deadline = now + float(self.cfg.graceful_timeout)
        while (self._busy or self._idle) and time.monotonic() < deadline:
            self.notify()
            self._poll(0.2)
            self._expire(time.monotonic())
        for connection in list(self._idle):
            self._unwatch(connection)
            self._close(connection)
        for _ in self._threads:
            self._work.put(None)
        for listener in self.sockets:
            listener.close()

    _linger_end = 0.0

    # -- the pool -----------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            connection = self._work.get()
            if connection is None:
                return
            try:
                keep = self._serve_connection(connection)
            except Exception:  # a bug here must not kill the thread and strand the loop
                self.log.exception("Error handling request")
                keep = False
            if not keep:
                connection.close()
            self._handback.put(connection)  # closed ones are counted out by the loop
            try:
                os.write(self.PIPE[1], b".")
            except OSError:
                pass  # the pipe is full: the loop is awake already
            with self._busy_lock:  # last: a stopping loop waits for the handback too
                self._busy -= 1

    def _serve_connection(self, connection: Connection) -> bool:
        """Answer the requests ready on the connection; whether it stays open."""
        while True:
            if not connection.requests:
                if connection.broken in ("400", "431"):
                    refuse(connection, connection.broken)
                    return False
                return connection.broken is None
            if not connection.ready():
                return connection.broken is None
            request = connection.requests.popleft()
            try:
                keep = self._answer(connection, request)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                    self.log.exception("Socket error processing request.")
                return False
            if not keep or connection.broken:
                return False
            connection.continue_sent = False

    def _answer(self, connection: Connection, request: Request) -> bool:
        """Run the app for one request and write its answer; whether the connection stays."""
        if self._pre_request is not None:
            self._pre_request(self, request)
        body = Body(connection, request)
        environ = wsgi_environ(connection, request, body, self._multiprocess)
        answer = Answer(request.method == "HEAD", request.version == "1.0")
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        answer.close = not (request.keep_alive and self.alive and self._keepalive)
        try:
            result = self.wsgi(environ, answer.start_response)
            if not request.complete:
                # The app answers without reading all of the body (a 413, say): the rest is
                # never read, so the connection ends with this answer.
                answer.close = True
            try:
                write(connection, answer, result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except (OSError, SystemExit):
            raise
        except Exception:
            self.log.exception("Error handling request %s", request.uri)
            if answer.sent:
                return False
            write_error(connection)
            return False
        finally:
            try:
                self._post_request(self, request, environ, answer)
            except Exception:
                self.log.exception("Exception in post_request hook")
        return not answer.close
