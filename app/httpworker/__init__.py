"""Modelport's default gunicorn worker: HTTP/1.1 parsed by httptools (llhttp, in C).

gunicorn's gthread worker parses requests and writes responses in pure Python: about half of a
small REST inference's time under it (issue 16). This worker keeps gunicorn's master, hooks,
signals, `--check-config`, worker replacement and logging (it is a `gunicorn.workers.base.Worker`,
chosen by `MODELPORT_WORKER_CLASS=httptools` in gunicorn.conf.py, which names
`app.httpworker.worker.HttptoolsWorker`) and does what gthread does for Modelport, in two kinds
of threads:

- The main thread runs one selector loop: it accepts, reads and parses every connection that is
  not being served, so a slow client holds a socket, never a thread. A request whose head is
  complete goes to the pool with its body once the body has arrived too; a large body
  (`Content-Length` over `connection.READ_AHEAD_BYTES`), a chunked one or one behind `Expect:
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
stops accepting, keeps idle connections `worker.LINGER_SECONDS` more at most (a request on
its way is answered, with `Connection: close`, as gthread's STOP_KEEPALIVE_LINGER does), and
waits up to `graceful_timeout` for the requests being served.
The gRPC sidecar runs beside it as under gthread (gunicorn.conf.py's hooks).

Not served, unlike gthread: TLS, HTTP/2, gunicorn's own access log (Modelport writes its own,
`modelport.access`), `forwarded_allow_ips`/`secure_scheme_headers` and sendfile; header names
with an underscore are dropped, as gunicorn's `header_map = drop` does.

One job a module, each importing only those above it:

- `connection`: a client socket, its httptools parser and the requests parsed off it.
- `body`: `wsgi.input`, the rest of a body read from the socket as the app asks for it.
- `environ`: the WSGI environ of a parsed request.
- `answer`: `start_response`, and the status line, headers and body written to the socket.
- `worker`: the gunicorn worker: the selector loop (accept, read, keep-alive, drain) and the
  pool threads that run the app.

The modules that call httptools (`connection`, `environ`) carry `WRITTEN_FOR`; the pin test
(tests/app/test_library_pins.py) fails on another httptools.
"""
