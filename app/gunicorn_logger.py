"""gunicorn's logger without its own access line, unless `--access-logfile` asks for one.

gunicorn writes an access line per request whenever any logconfig is given, `accesslog` set or
not, by asking `Logger._compute_access_log_enabled`, a private method overridden here. The
access log is Modelport's own (`modelport.access`, with model, protocol and request id), so
gunicorn's is a second line per request: with it, W1 (iris [1,4] REST JSON, c=8) served 22 %
fewer requests (1,026 vs 1,309 req/s, 12 interleaved rounds of 2 s, bench/). Written for
gunicorn 27.0.1 (`WRITTEN_FOR`); the pin test fails on any other version.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

#: The library version this override was written for (tests/app/test_library_pins.py).
WRITTEN_FOR = ("gunicorn", "27.0.1")


class QuietAccessLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type information
    """gunicorn's `Logger`, writing access lines only for an explicit `--access-logfile`."""

    def _compute_access_log_enabled(self) -> bool:
        return bool(self.cfg.accesslog)
