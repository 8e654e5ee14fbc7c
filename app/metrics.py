"""Prometheus metrics, correct across gunicorn workers (prometheus-client's multiprocess mode).

Multiprocess mode is on when PROMETHEUS_MULTIPROC_DIR is set before this module is imported
(gunicorn.conf.py sets it in the master, so every worker inherits it); a single process without
it uses the default registry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

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


def observe_request(
    model: str, protocol: str, status: str, seconds: float, bytes_in: int, bytes_out: int
) -> None:
    """Record one answered request (front-ends call this once per request)."""
    REQUESTS.labels(model, protocol, status).inc()
    LATENCY.labels(model, protocol).observe(seconds)
    if bytes_in:
        BYTES.labels(protocol, "in").inc(bytes_in)
    if bytes_out:
        BYTES.labels(protocol, "out").inc(bytes_out)


def observe_batch(model: str, rows: int) -> None:
    """Record the rows of one model execution."""
    BATCH_SIZE.labels(model).observe(rows)


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
