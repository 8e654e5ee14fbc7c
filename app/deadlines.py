"""The client's deadline of the request being served, as the front-ends read it off the wire.

Front-ends know deadlines in their own terms (REST's `X-Request-Timeout` header, a gRPC call's
`time_remaining()`); the data plane only needs an instant. A context variable carries it from
the front-end's per-request hook to the data plane, so every route and RPC that reaches a model
(v1, v2, the routed form, explain, OMI) honours it without threading an argument through each.
gthread reuses threads and gRPC reuses its pool's, so each request sets it (None included).
"""

from __future__ import annotations

import contextvars
import math
import time

from app.errors import InvalidInput

#: `time.monotonic()` seconds by which the current request must be answered; None = no deadline.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "modelport_deadline", default=None
)


def set_deadline(deadline: float | None) -> contextvars.Token[float | None]:
    """Make `deadline` (monotonic seconds, or None) the current request's; returns the token."""
    return _deadline.set(deadline)


def reset(token: contextvars.Token[float | None]) -> None:
    """Restore the deadline `set_deadline` replaced."""
    _deadline.reset(token)


def current() -> float | None:
    """The current request's client deadline (monotonic seconds), if it has one."""
    return _deadline.get()


def from_milliseconds(value: str | None, what: str = "X-Request-Timeout") -> float | None:
    """The deadline `value` milliseconds from now; None for no value (or 0, Triton's "none").

    Raises `InvalidInput` for a value that is not a finite number of milliseconds >= 0.
    """
    if value is None or value == "":
        return None
    try:
        milliseconds = float(value)
    except ValueError:
        raise InvalidInput(f"{what} must be a number of milliseconds, got '{value}'") from None
    if not math.isfinite(milliseconds) or milliseconds < 0:
        raise InvalidInput(f"{what} must be a number of milliseconds >= 0, got '{value}'")
    return time.monotonic() + milliseconds / 1000 if milliseconds else None


#: A deadline further away than this is no deadline: a thread's timed wait cannot take one of
#: centuries (grpcio's "infinite" deadline, a client's 1e300 ms).
FOREVER_SECONDS = 86400.0


def earliest(*deadlines: float | None) -> float | None:
    """The first of the given deadlines; None when none is set (or all are over a day away)."""
    horizon = time.monotonic() + FOREVER_SECONDS
    chosen = [d for d in deadlines if d is not None and d < horizon]
    return min(chosen) if chosen else None
