"""A gunicorn worker whose HTTP/1.1 is parsed by httptools (llhttp, in C), for Modelport.

gunicorn's gthread worker parses requests and writes responses in pure Python: about half of a
small REST inference's time under it (issue 16). This worker keeps gunicorn's master, hooks,
signals, `--check-config`, worker replacement and logging (it is a `gunicorn.workers.base.Worker`,
chosen by `MODELPORT_WORKER_CLASS=httptools` in gunicorn.conf.py) and does what gthread does for
Modelport, in two kinds of threads:

- The main thread runs one selector loop: it accepts, reads and parses every connection that is
  not being served, so a slow client holds a socket, never a thread. A request whose head is
  complete goes to the pool with its body once the body has arrived too; a large body
  (`Content-Length` over `READ_AHEAD_BYTES`), a chunked one or one behind `Expect:
  100-continue` goes with its head alone, and the pool thread reads the rest as the app reads
  `wsgi.input`. So the app sees `Content-Length` before any of a large body is read, and
  refuses one over `limits.max_request_bytes` (413) without reading it; `100 Continue` is
  sent only when the app starts reading.
- `threads` pool threads run the app and write the answers. A pool thread serves the pipelined
  requests it finds already parsed behind the one it answered, in order, then hands the
  connection back to the loop.

Slow clients (issue 15, as `app.slow_clients` does for gthread and gevent): a request's head
must be in within `server.http.header_timeout_s` of its first byte however slowly it trickles,
and a body may pause `server.http.body_timeout_s` at most (in the loop and in a pool thread's
reads alike); past either the connection is closed.

Keep-alive: an idle connection is closed after `keepalive` seconds; `keepalive = 0`, HTTP/1.0
without `Connection: keep-alive`, `Connection: close`, a body left unread, and a stopping
worker all close the connection after the answer. SIGTERM (also a HUP's, and `max_requests`)
stops accepting, keeps idle connections `LINGER_SECONDS` more at most (a request already on
its way is answered, with `Connection: close`, as gthread's STOP_KEEPALIVE_LINGER does), and
waits up to `graceful_timeout` for the requests being served.
The gRPC sidecar runs beside it as under gthread (gunicorn.conf.py's hooks).

Not served, unlike gthread: TLS, HTTP/2, gunicorn's own access log (Modelport writes its own,
`modelport.access`), `forwarded_allow_ips`/`secure_scheme_headers` and sendfile; header names
with an underscore are dropped, as gunicorn's `header_map = drop` does.

Written for httptools 0.9.0 and gunicorn 27.0.1's `Worker` (`WRITTEN_FOR`; the pin test fails
on another httptools).
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from queue import SimpleQueue
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools
from gunicorn.workers.base import Worker

from app.slow_clients import timeouts

#: The library versions this worker was written and measured for (tests/app/test_library_pins.py).
WRITTEN_FOR = ("httptools", "0.9.0")
#: A body up to this size is read by the loop before the app runs (no thread waits for it).
READ_AHEAD_BYTES = 256 * 1024
#: Bytes one `recv` asks for; up to `BODY_RECV_BYTES` while a large body is still coming.
RECV_BYTES = 256 * 1024
BODY_RECV_BYTES = 8 * 1024 * 1024
#: The most bytes a request's line and headers may take (gunicorn: 4094 + 100 x 8190).
MAX_HEAD_BYTES = 64 * 1024
#: How long a stopping worker keeps an idle connection, for a request already on its way.
LINGER_SECONDS = 2.0

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_NO_BODY_STATUSES = (b"1", b"204", b"304")
_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding"})


class _Request:
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


class _Connection:
    """A client connection and its parser; touched by one thread at a time (loop or pool)."""

    __slots__ = (
        "sock",
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
        self.peer = peer
        self.local = local
        self.parser = httptools.HttpRequestParser(self)
        self.requests: deque[_Request] = deque()  # heads complete, oldest first
        self.current: _Request | None = None  # being parsed
        self.head_bytes = 0
        self.head_started = 0.0  # when the first byte of the head being parsed arrived
        self.deadline = 0.0
        self.closed = False
        self.broken: str | None = None  # why the stream cannot be parsed further
        self.continue_sent = False

    # -- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.current = _Request()
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
            raise _HeadTooLarge()

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
            self.broken = "431" if isinstance(exc.__context__, _HeadTooLarge) else "400"
        except (_HeadTooLarge, httptools.HttpParserError, ValueError):
            self.broken = "431" if self.head_bytes > MAX_HEAD_BYTES else "400"

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


class _HeadTooLarge(Exception):
    """A request line and headers over `MAX_HEAD_BYTES`."""


class _Body:
    """`wsgi.input`: what the loop read already, then the rest read from the socket as asked.

    Received parts are kept as they come and joined once per read, so reading a 64 MiB body
    in one `read(length)` copies it once, not once per `recv`.
    """

    def __init__(self, connection: _Connection, request: _Request) -> None:
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


class _Answer:
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
_HEADER_KEYS: dict[bytes, str | None] = {}


def _environ_key(name: bytes) -> str | None:
    """The environ key of a header name (None: dropped), remembered per spelling."""
    key = _HEADER_KEYS.get(name)
    if key is None and name not in _HEADER_KEYS:
        text = name.decode("latin-1")
        if "_" in text:
            key = None
        else:
            upper = text.upper().replace("-", "_")
            key = upper if upper in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + upper
        if len(_HEADER_KEYS) < 4096:  # clients choose names: keep the table bounded
            _HEADER_KEYS[name] = key
    return key


class HttptoolsWorker(Worker):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn worker: a selector loop on httptools, and a pool of threads running the app."""

    def init_process(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._handback: SimpleQueue[_Connection] = SimpleQueue()
        self._work: SimpleQueue[_Connection | None] = SimpleQueue()
        self._idle: dict[_Connection, None] = {}  # in the loop, oldest deadline first-ish
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
        self._threads = [
            threading.Thread(target=self._serve, name=f"http-{n}", daemon=True)
            for n in range(max(1, int(self.cfg.threads)))
        ]
        for thread in self._threads:
            thread.start()
        self._selector.register(self.PIPE[0], selectors.EVENT_READ, None)
        for listener in self.sockets:
            listener.setblocking(False)
        self._accept_enabled(True)
        ppid = self.ppid
        while self.alive:
            self.notify()
            self._accept_enabled(self._connections < self.cfg.worker_connections)
            self._poll(1.0)
            self._expire(time.monotonic())
            if os.getppid() != ppid:
                self.log.info("Parent changed, shutting down: %s", self)
                break
        self._drain()

    # -- the loop -------------------------------------------------------------------------

    def _accept_enabled(self, enabled: bool) -> None:
        if enabled == self._accepting:
            return
        for listener in self.sockets:
            if enabled:
                self._selector.register(listener, selectors.EVENT_READ, listener)
            else:
                self._selector.unregister(listener)
        self._accepting = enabled

    def _poll(self, timeout: float) -> None:
        try:
            events = self._selector.select(timeout)
        except OSError as exc:
            if exc.errno != errno.EINTR:
                raise
            return
        for key, _ in events:
            data = key.data
            if data is None:
                self._wakeup()
            elif isinstance(data, _Connection):
                self._readable(data)
            else:
                self._accept(data)

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
            self._watch(_Connection(sock, peer, listener.getsockname()))

    def _watch(self, connection: _Connection) -> None:
        """The loop reads this connection (again) until a request is ready."""
        if connection.closed:
            self._connections -= 1
            return
        now = time.monotonic()
        if self.alive:
            connection.deadline = now + float(self.cfg.keepalive)
        else:  # stopping (maybe since a moment, before `_drain` began): linger at most
            connection.deadline = now + min(float(self.cfg.keepalive), LINGER_SECONDS)
            if self._linger_end:
                connection.deadline = min(connection.deadline, self._linger_end)
        if connection.reading_head():  # a pipelined request's head, begun behind the last
            connection.deadline = min(
                connection.deadline, connection.head_started + self._header_timeout
            )
        self._idle[connection] = None
        self._selector.register(connection.sock, selectors.EVENT_READ, connection)

    def _readable(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(RECV_BYTES)
        except (TimeoutError, BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._unwatch(connection)
            self._close(connection)
            return
        connection.feed(data)
        if connection.ready() or connection.broken:
            self._unwatch(connection)
            self._dispatch(connection)
        elif connection.reading_head():
            connection.deadline = connection.head_started + self._header_timeout
        elif connection.requests:  # a head is in, its (small) body still coming
            connection.deadline = time.monotonic() + self._body_timeout

    def _unwatch(self, connection: _Connection) -> None:
        self._idle.pop(connection, None)
        try:
            self._selector.unregister(connection.sock)
        except (KeyError, ValueError):
            pass

    def _dispatch(self, connection: _Connection) -> None:
        with self._busy_lock:
            self._busy += 1
        self._work.put(connection)

    def _close(self, connection: _Connection) -> None:
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

    def _serve_connection(self, connection: _Connection) -> bool:
        """Answer the requests ready on the connection; whether it stays open."""
        while True:
            if not connection.requests:
                if connection.broken in ("400", "431"):
                    self._refuse(connection, connection.broken)
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

    def _refuse(self, connection: _Connection, status: str) -> None:
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

    def _environ(self, connection: _Connection, request: _Request, body: _Body) -> dict[str, Any]:
        path, _, query = request.url.partition(b"?")
        if not path.startswith(b"/"):  # absolute form: http://host/path
            parsed = httptools.parse_url(request.url)
            path, query = parsed.path or b"/", parsed.query or b""
        local, peer = connection.local, connection.peer
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"),
            "RAW_URI": request.url.decode("latin-1"),
            "SERVER_PROTOCOL": f"HTTP/{request.version}",
            "SERVER_NAME": str(local[0]) if isinstance(local, tuple) else "localhost",
            "SERVER_PORT": str(local[1]) if isinstance(local, tuple) else "80",
            "REMOTE_ADDR": str(peer[0]) if isinstance(peer, tuple) else "",
            "REMOTE_PORT": str(peer[1]) if isinstance(peer, tuple) else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": self.cfg.workers > 1,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "gunicorn.socket": connection.sock,
        }
        for name, value in request.headers:
            key = _environ_key(name)
            if key is None:
                continue
            text = value.decode("latin-1")
            if key in environ:
                text = f"{environ[key]},{text}"
            environ[key] = text
        if request.chunked:
            environ.pop("CONTENT_LENGTH", None)
        return environ

    def _answer(self, connection: _Connection, request: _Request) -> bool:
        """Run the app for one request and write its answer; whether the connection stays."""
        self.cfg.pre_request(self, request)
        body = _Body(connection, request)
        environ = self._environ(connection, request, body)
        answer = _Answer(request.method == "HEAD", request.version == "1.0")
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        answer.close = not (request.keep_alive and self.alive and self.cfg.keepalive)
        try:
            result = self.wsgi(environ, answer.start_response)
            if not request.complete:
                # The app answers without reading all of the body (a 413, say): the rest is
                # never read, so the connection ends with this answer.
                answer.close = True
            try:
                self._write(connection, answer, result)
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
            self._write_error(connection)
            return False
        finally:
            try:
                self.cfg.post_request(self, request, environ, answer)
            except Exception:
                self.log.exception("Exception in post_request hook")
        return not answer.close

    def _write(self, connection: _Connection, answer: _Answer, result: Iterable[bytes]) -> None:
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
        head = self._head(answer, len(first) if rest is None else None)
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

    def _head(self, answer: _Answer, single: int | None) -> bytes:
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

    def _write_error(self, connection: _Connection) -> None:
        body = b"Internal Server Error"
        try:
            connection.sock.sendall(
                b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n"
                b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            )
        except OSError:
            pass
