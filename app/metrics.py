"""Prometheus metrics, correct across gunicorn workers (prometheus-client's multiprocess mode).

Multiprocess mode is on when PROMETHEUS_MULTIPROC_DIR is set before this module is imported
(gunicorn.conf.py sets it in the master, so every worker inherits it); a single process without
it uses the default registry.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app import prometheus_histogram

#: Content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REQUESTS = Counter(
    "modelport_requests",
    "Requests answered, by model, protocol and status (HTTP status or gRPC code)",
    ["model", "protocol", "status"],
)
LATENCY = Histogram(
    "modelport_request_duration_seconds",
    "Time from request received to response ready, by model and protocol",
    ["model", "protocol"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "modelport_batch_size",
    "Rows per model execution (a dynamic batch counts once, with all its rows)",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024),
)
BYTES = Counter(
    "modelport_bytes",
    "Request and response body bytes, by protocol and direction (in, out)",
    ["protocol", "direction"],
)
MODEL_READY = Gauge(
    "modelport_model_ready",
    "1 when a model version is loaded and ready in the workers, else 0",
    ["model", "version"],
    multiprocess_mode="livemax",
)
MODELS_LOADED = Gauge(
    "modelport_models_loaded",
    "Model versions loaded and ready",
    multiprocess_mode="livemax",
)

ABANDONED_CALLS = Gauge(
    "modelport_abandoned_calls",
    "Model calls still running whose request was answered 504 at its deadline (hung calls), "
    "by model and version: each holds one of the model's max_concurrency slots",
    ["model", "version"],
    multiprocess_mode="livesum",
)


# Recording straight into prometheus-client's multiprocess files costs a locked mmap write per
# counter and two per histogram observation: seven per inference (W1 serves 10 % fewer requests
# that way; app/prometheus_histogram.py has the figures). So a request only adds to this
# process's buffer (one lock, a few dict updates), and the buffer is written to the files every
# FLUSH_SECONDS by a thread, before this worker answers a scrape, and when the worker exits.
# Another worker's last quarter second may be missing from a scrape; nothing is ever lost or
# counted twice.
FLUSH_SECONDS = 0.25


class _Buffer:
    """What this process observed since its last flush: counter amounts, histogram buckets."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counters: dict[Any, float] = {}  # counter child -> amount
        self.histograms: dict[Any, list[float]] = {}  # child -> [sum, count per bucket...]
        self.flushing = False  # this process's flusher thread is running

    def count(self, child: Any, amount: float) -> None:
        """Add to a counter child (caller holds the lock)."""
        self.counters[child] = self.counters.get(child, 0.0) + amount

    def observe(self, child: Any, bounds: list[float], value: float) -> None:
        """Add one observation to a histogram child (caller holds the lock)."""
        entry = self.histograms.get(child)
        if entry is None:
            entry = self.histograms[child] = [0.0] * (len(bounds) + 1)
        entry[0] += value
        # prometheus-client puts a value in the first bucket whose bound is >= it (le).
        entry[1 + bisect.bisect_left(bounds, value)] += 1

    def take(self) -> tuple[dict[Any, float], dict[Any, list[float]]]:
        """Everything buffered so far, leaving the buffer empty."""
        with self.lock:
            counters, histograms = self.counters, self.histograms
            self.counters, self.histograms = {}, {}
        return counters, histograms

    def ensure_flusher(self) -> None:
        """Start this process's flusher thread on its first observation."""
        if self.flushing:
            return
        with self.lock:
            if self.flushing:
                return
            self.flushing = True
        threading.Thread(target=_flush_forever, name="metrics-flush", daemon=True).start()

    def after_fork(self) -> None:
        """In a forked child: no flusher thread, a fresh lock, and none of the parent's counts
        (they are the parent's to write). Done once at fork, not checked on every request."""
        self.lock = threading.Lock()
        self.counters, self.histograms = {}, {}
        self.flushing = False


_buffer = _Buffer()
os.register_at_fork(after_in_child=_buffer.after_fork)


def flush() -> None:
    """Write what this process buffered into prometheus-client's values (and files)."""
    counters, histograms = _buffer.take()
    for child, amount in counters.items():
        child.inc(amount)
    for child, entry in histograms.items():
        prometheus_histogram.add(child, entry[0], entry[1:])


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        try:
            flush()
        except Exception:  # a metrics failure must never take the worker down
            logging.getLogger("modelport.metrics").exception("flushing metrics failed")


# `labels()` looks its child up under a lock on every call, so each child is looked up once
# here; a race only makes two lookups of the same child.
_request_children: dict[tuple[str, str, str], tuple[Any, Any, Any, Any]] = {}
_batch_children: dict[str, Any] = {}


def observe_request(
    model: str, protocol: str, status: str, seconds: float, bytes_in: int, bytes_out: int
) -> None:
    """Record one answered request (front-ends call this once per request)."""
    key = (model, protocol, status)
    children = _request_children.get(key)
    if children is None:
        children = _request_children[key] = (
            REQUESTS.labels(model, protocol, status),
            LATENCY.labels(model, protocol),
            BYTES.labels(protocol, "in"),
            BYTES.labels(protocol, "out"),
        )
    requests, latency, received, sent = children
    _buffer.ensure_flusher()
    with _buffer.lock:
        _buffer.count(requests, 1.0)
        _buffer.observe(latency, prometheus_histogram.upper_bounds(latency), seconds)
        if bytes_in:
            _buffer.count(received, bytes_in)
        if bytes_out:
            _buffer.count(sent, bytes_out)


def observe_batch(model: str, rows: int) -> None:
    """Record the rows of one model execution."""
    child = _batch_children.get(model)
    if child is None:
        child = _batch_children[model] = BATCH_SIZE.labels(model)
    _buffer.ensure_flusher()
    with _buffer.lock:
        _buffer.observe(child, prometheus_histogram.upper_bounds(child), rows)


def observe_models(states: Iterable[tuple[str, str, bool]]) -> None:
    """Publish which (model, version) are ready in this worker."""
    ready = 0
    for name, version, is_ready in states:
        MODEL_READY.labels(name, version).set(1 if is_ready else 0)
        ready += is_ready
    MODELS_LOADED.set(ready)


def observe_abandoned(model: str, version: str, calls: int) -> None:
    """Publish how many of this worker's calls of a model version are abandoned (rare: set
    straight into the gauge, not buffered)."""
    ABANDONED_CALLS.labels(model, version).set(calls)


def exposition() -> bytes:
    """The Prometheus text of every worker (multiprocess) or of this process."""
    flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped in prometheus-client
        return generate_latest(registry)
    return generate_latest(REGISTRY)
