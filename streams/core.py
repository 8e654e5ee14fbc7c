"""What every stream consumer shares: one message becomes one answer, on a bounded pool.

`Answerer.answer` reads a message body as REST reads a body-routed request (`app.routed`),
inside the Flask app's context, so a failure gets the very `{"error": ...}` body and status the
REST front-end gives (`app.codec.rest.error_to_json`, in the configured `errors:` form). A
consumer counts what it takes and answers (`streams.metrics`, `app.metrics`), and acknowledges
a message only once its answer is published: at-least-once, never at-most-once.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from flask import Flask

from app import metrics as app_metrics
from app.codec.rest import error_to_json, new_id, parse_json
from app.codec.routed import route_from_body
from app.errors import ModelportError, PayloadTooLarge
from app.routed import serve
from config.streams import StreamSettings
from streams import metrics

log = logging.getLogger("modelport.streams")

#: Seconds between two attempts to reach a broker that failed.
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one message: its request id, the REST status, and the REST body."""

    id: str
    status: int
    body: bytes
    json_length: int | None = None  # binary outputs follow this many bytes of JSON
    model: str = ""  # the metrics label: a configured model name, else ""
    received: int = 0  # the message's size, for the byte counters
    started: float = 0.0  # perf_counter when it was taken

    @property
    def content_type(self) -> str:
        """The answer's media type, as REST would send it."""
        return "application/json" if self.json_length is None else "application/octet-stream"


class Answerer:
    """Turns a message body into a `Reply` through the app's data plane, never raising."""

    def __init__(self, app: Flask, stream: StreamSettings) -> None:
        self.app = app
        self.stream = stream
        self._core = app.extensions["modelport"]

    def answer(
        self,
        body: bytes,
        transport_id: str | None = None,
        defaults: Mapping[str, str] | None = None,
    ) -> Reply:
        """The answer to one message; `defaults` fill routing keys the body leaves out
        (MLServer's `mlserver-model` header), `transport_id` wins over the body's `id`."""
        started = time.perf_counter()
        metrics.RECEIVED.labels(self.stream.name).inc()
        request_id, model = transport_id, ""
        limits, errors = self._core.settings.server.limits, self._core.settings.server.errors
        with self.app.app_context():
            try:
                if len(body) > limits.max_request_bytes:
                    raise PayloadTooLarge(
                        f"message is larger than limits.max_request_bytes "
                        f"({len(body)} > {limits.max_request_bytes} bytes)"
                    )
                payload = parse_json(body)
                if defaults and isinstance(payload, dict):
                    payload = {**defaults, **payload}
                request_id = request_id or _body_id(payload)
                route = route_from_body(payload, transport_id)
                request_id = route.id
                model = route.model if self._core.manager.has(route.model) else ""
                answer = serve(
                    self._core.dataplane,
                    route,
                    data_roots=limits.data_roots,
                    limit=limits.max_request_bytes,
                )
                status, reply_body, json_length = 200, answer.body, answer.json_length
            except ModelportError as exc:
                if exc.http_status >= 500:
                    log.error("stream %s -> %d: %s", self.stream.name, exc.http_status, exc)
                status, json_length = exc.http_status, None
                reply_body = error_to_json(
                    errors, exc.http_status, exc.reason, exc.message, exc.details
                )
            except Exception:  # the REST handler's 500: no internals for the client
                log.exception("stream %s: a message failed", self.stream.name)
                status, json_length = 500, None
                reply_body = error_to_json(errors, 500, "internal", "internal server error")
        return Reply(
            request_id or new_id(), status, reply_body, json_length, model, len(body), started
        )

    def answered(self, reply: Reply) -> None:
        """Count a reply once it is published (a failure is an answer too)."""
        name = self.stream.name
        metrics.ANSWERED.labels(name, str(reply.status)).inc()
        if reply.status >= 400:
            metrics.FAILED.labels(name).inc()
        app_metrics.observe_request(
            reply.model,
            self.stream.kind,
            str(reply.status),
            time.perf_counter() - reply.started,
            reply.received,
            len(reply.body),
        )


def _body_id(payload: Any) -> str | None:
    """The body's own id, for answering a body that cannot be routed."""
    if isinstance(payload, Mapping) and isinstance(payload.get("id"), str):
        return payload["id"] or None
    return None


class Pool:
    """At most `size` messages answered at once, each on a thread of its own."""

    def __init__(self, size: int, name: str) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._executor = ThreadPoolExecutor(size, thread_name_prefix=f"modelport-stream-{name}")
        self._idle = threading.Condition()
        self._busy = 0

    def acquire(self, timeout: float | None) -> bool:
        """Wait up to `timeout` seconds (None: as long as it takes) for a free slot; True when
        one was taken."""
        return self._slots.acquire(timeout=timeout)

    def release(self) -> None:
        """Give back a slot taken by `acquire` that `submit` did not use."""
        self._slots.release()

    def submit(self, function: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Run `function` in the slot taken by `acquire`; the slot frees when it ends."""
        with self._idle:
            self._busy += 1
        self._executor.submit(self._run, function, args, kwargs)

    def _run(
        self, function: Callable[..., None], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        try:
            function(*args, **kwargs)
        except Exception:  # a consumer's own handler must not lose the slot
            log.exception("stream handler failed")
        finally:
            self._slots.release()
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every submitted message to finish."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def shutdown(self) -> None:
        """Stop the threads (after `wait_idle`, none is busy)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class Consumer(ABC):
    """One stream in one worker: a thread that takes messages while not stopping.

    Subclasses implement `run` (take, hand to `pool`, answer, acknowledge) and `close`; the
    base retries a broker that fails, and stops in two steps: `stop_taking` at SIGTERM, then
    `stop` once the worker exits, which lets what was taken finish within the grace it gets.
    """

    def __init__(self, app: Flask, stream: StreamSettings) -> None:
        self.stream = stream
        self.answerer = Answerer(app, stream)
        self.pool = Pool(stream.concurrency, stream.name)
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start consuming in a background thread."""
        self._thread = threading.Thread(
            target=self._run_until_stopped, name=f"modelport-stream-{self.stream.name}", daemon=True
        )
        self._thread.start()

    def _run_until_stopped(self) -> None:
        attempt = 0
        while not self.stopping.is_set():
            try:
                self.run()
                attempt = 0
            except Exception as exc:
                delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                log.warning(
                    "stream %s: %s; retrying in %.1f s", self.stream.name, exc or type(exc), delay
                )
                attempt += 1
                self.stopping.wait(delay)

    def handle(self, body: bytes, publish: Callable[[Reply], None], **message: Any) -> None:
        """Answer one message (on a pool thread) and hand the reply to `publish`."""
        metrics.IN_FLIGHT.labels(self.stream.name).inc()
        try:
            publish(self.answerer.answer(body, **message))
        finally:
            metrics.IN_FLIGHT.labels(self.stream.name).dec()

    def stop_taking(self) -> None:
        """Take no new message (SIGTERM): what was taken is still answered."""
        self.stopping.set()

    def stop(self, grace: float) -> None:
        """Stop taking, let taken messages finish within `grace` seconds, then disconnect."""
        deadline = time.monotonic() + grace
        self.stop_taking()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        if not self.pool.wait_idle(max(0.0, deadline - time.monotonic())):
            log.warning("stream %s: messages still in flight at exit", self.stream.name)
        try:
            self.close(max(0.0, deadline - time.monotonic()))
        finally:
            self.pool.shutdown()

    @abstractmethod
    def run(self) -> None:
        """Connect and consume until `stopping` is set; raise to be retried."""

    @abstractmethod
    def close(self, grace: float) -> None:
        """Acknowledge what is answered and disconnect (after the pool is idle)."""
