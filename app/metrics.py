"""Prometheus metrics, correct across gunicorn workers (prometheus-client's multiprocess mode).

Multiprocess mode is on when PROMETHEUS_MULTIPROC_DIR is set before this module is imported
(gunicorn.conf.py sets it in the master, so every worker inherits it); a single process without
it uses the default registry.
"""

from __future__ import annotations

import os
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


# `labels()` looks its child up under a lock on every call: a third of what recording a request
# cost (bench/, cProfile). Children never change once made, so each is looked up once here; a
# race only makes two lookups of the same child.
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
    requests.inc()
    latency.observe(seconds)
    if bytes_in:
        received.inc(bytes_in)
    if bytes_out:
        sent.inc(bytes_out)


def observe_batch(model: str, rows: int) -> None:
    """Record the rows of one model execution."""
    child = _batch_children.get(model)
    if child is None:
        child = _batch_children[model] = BATCH_SIZE.labels(model)
    child.observe(rows)


def observe_models(states: Iterable[tuple[str, str, bool]]) -> None:
    """Publish which (model, version) are ready in this worker."""
    ready = 0
    for name, version, is_ready in states:
        MODEL_READY.labels(name, version).set(1 if is_ready else 0)
        ready += is_ready
    MODELS_LOADED.set(ready)


def exposition() -> bytes:
    """The Prometheus text of every worker (multiprocess) or of this process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
