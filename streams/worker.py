"""gunicorn glue: the configured stream consumers run in every worker, like the gRPC sidecar.

gunicorn.conf.py calls `start` (post_worker_init) and `stop` (worker_exit, worker_int). At
SIGTERM a consumer stops taking messages at once (a chained signal handler, as the sidecar
drains its health), while the worker finishes its HTTP requests; `stop` then gives what was
taken the rest of the grace period to be answered and acknowledged.

Not under the gevent worker: confluent-kafka blocks in C, and the pool is real threads calling
into the data plane; the log says so and the worker serves HTTP and gRPC only.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from flask import Flask

from config.streams import StreamSettings
from streams.core import Consumer

log = logging.getLogger("modelport.streams")
_ATTRIBUTE = "modelport_streams"
#: What `stop` keeps of the grace period for the rest of worker_exit.
EXIT_RESERVE_SECONDS = 1.0
_sigterm_at: float | None = None


def consumer_for(app: Flask, stream: StreamSettings, slot_dir: Path) -> Consumer:
    """The consumer of one `streams:` entry (its broker client is imported only if used)."""
    if stream.kind == "mqtt":
        from streams.mqtt import MqttConsumer

        return MqttConsumer(app, stream, slot_dir)
    if stream.kind == "redis":
        from streams.redis_streams import RedisConsumer

        return RedisConsumer(app, stream)
    from streams.kafka import KafkaConsumer

    return KafkaConsumer(app, stream)


def start(worker: Any) -> None:
    """Start this worker's consumers (nothing when `streams:` is empty)."""
    app = worker.wsgi
    core = getattr(app, "extensions", {}).get("modelport")
    if core is None or not core.settings.streams:
        return
    if type(worker).__module__ in ("app.gevent_worker", "gunicorn.workers.ggevent"):
        log.error("streams are not consumed under the gevent worker; use gthread or sync")
        return
    slot_dir = Path(os.environ.get("MODELPORT_STATE_DIR") or tempfile.gettempdir()) / "slots"
    consumers = []
    for stream in core.settings.streams:
        try:
            consumer = consumer_for(app, stream, slot_dir)
        except ImportError as exc:
            log.error(
                "stream %s needs its client: pip install 'modelport[streams]' (%s)",
                stream.name,
                exc,
            )
            continue
        consumer.start()
        consumers.append(consumer)
    setattr(worker, _ATTRIBUTE, consumers)
    _stop_taking_on_sigterm(consumers)


def _stop_taking_on_sigterm(consumers: list[Consumer]) -> None:
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        global _sigterm_at
        if _sigterm_at is None:
            _sigterm_at = time.monotonic()
        for consumer in consumers:
            consumer.stop_taking()  # sets an Event: safe in a signal handler
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn set it: signal() resets it


def stop(worker: Any, grace: float | None = None) -> None:
    """Stop every consumer, giving taken messages what is left of the grace period."""
    consumers: list[Consumer] = getattr(worker, _ATTRIBUTE, None) or []
    setattr(worker, _ATTRIBUTE, None)
    if not consumers:
        return
    if grace is None:
        grace = float(worker.cfg.graceful_timeout)
        if _sigterm_at is not None:
            grace -= time.monotonic() - _sigterm_at
        grace = max(0.0, grace - EXIT_RESERVE_SECONDS)
    for consumer in consumers:
        consumer.stop_taking()
    threads = [
        threading.Thread(target=consumer.stop, args=(grace,), daemon=True) for consumer in consumers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(grace + EXIT_RESERVE_SECONDS / 2)
