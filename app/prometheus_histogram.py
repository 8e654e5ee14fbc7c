"""The two prometheus-client internals the metrics buffer needs, in one place.

`app.metrics` adds a whole flush of histogram observations at once instead of calling
`observe()` per request: a child's bucket bounds are read, and its sum and buckets incremented,
through these private attributes. That buffer is what makes recording cheap: without it (every
request writing its counters and histograms straight into the multiprocess files), W1 (iris
[1,4] REST JSON, c=8) served 10 % fewer requests (1,176 vs 1,309 req/s, 12 interleaved rounds
of 2 s, bench/). Written for prometheus-client 0.26.0 (`WRITTEN_FOR`); the pin test fails on
any other version, and tests/app/test_metrics_buffer.py checks the exposition against what
`observe()` writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The library version these internals were read from (tests/app/test_library_pins.py).
WRITTEN_FOR = ("prometheus-client", "0.26.0")


def upper_bounds(child: Any) -> list[float]:
    """The bucket upper bounds of a histogram child, `+Inf` last."""
    bounds: list[float] = child._upper_bounds
    return bounds


def add(child: Any, total: float, counts: Sequence[float]) -> None:
    """Add observations to a histogram child: their sum, and how many fell in each bucket.

    `counts` has one entry per bucket of `upper_bounds(child)`; what `observe()` does once per
    value (one `_sum.inc` and one bucket's `inc`) is done here once per flush.
    """
    child._sum.inc(total)
    for bucket, amount in zip(child._buckets, counts, strict=True):
        if amount:
            bucket.inc(amount)
