"""The metrics buffer (app/metrics.py) writes exactly what direct recording would have."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Histogram

from app import metrics

BOUNDS = (0.001, 0.01, 0.1, 1.0)
VALUES = [0.0, 0.0005, 0.001, 0.0011, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 1e9]


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def _histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("h", "h", ["model"], buckets=BOUNDS, registry=registry)


def test_a_flushed_histogram_equals_one_fed_by_observe() -> None:
    direct, buffered = CollectorRegistry(), CollectorRegistry()
    want, got = _histogram(direct).labels("m"), _histogram(buffered).labels("m")
    for value in VALUES:
        want.observe(value)
        with metrics._buffer.lock:
            metrics._buffer.observe(got, got._upper_bounds, value)
    metrics.flush()
    assert _samples(buffered) == _samples(direct)
    # Bucket edges: a value equal to a bound is counted in that bound's bucket (`le`).
    assert _samples(buffered)[("h_bucket", (("le", "0.001"), ("model", "m")))] == 3


def test_counters_add_up_across_threads_and_flushes() -> None:
    registry = CollectorRegistry()
    child = Counter("c", "c", ["model"], registry=registry).labels("m")

    def add() -> None:
        for _ in range(2000):
            with metrics._buffer.lock:
                metrics._buffer.count(child, 1.0)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(20):
        metrics.flush()  # flushing while others add loses nothing and counts nothing twice
    for thread in threads:
        thread.join()
    metrics.flush()
    assert _samples(registry)[("c_total", (("model", "m"),))] == 8000


def test_observe_request_starts_one_flusher_per_process() -> None:
    metrics.observe_request("", "v2", "200", 0.001, 10, 20)
    metrics.observe_request("", "v2", "200", 0.001, 10, 20)
    flushers = [t for t in threading.enumerate() if t.name == "metrics-flush"]
    assert len(flushers) == 1 and flushers[0].daemon


def test_a_forked_child_starts_clean_and_runs_its_own_flusher() -> None:
    import os

    metrics.observe_request("", "v2", "200", 0.001, 10, 20)  # parent: flusher running, data held
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports what it inherited, then its state after one observation
        try:
            inherited = (metrics._buffer.flushing, len(metrics._buffer.counters))
            metrics.observe_request("", "v2", "200", 0.001, 10, 20)
            started = metrics._buffer.flushing and any(
                t.name == "metrics-flush" for t in threading.enumerate()
            )
            os.write(write, repr((inherited, started)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        report = answer.read()
    os.waitpid(pid, 0)
    assert report == "((False, 0), True)"
