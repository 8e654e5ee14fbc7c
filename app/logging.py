"""One JSON object a line for every log record, with the request id of the request it serves."""

from __future__ import annotations

import contextvars
import logging
import sys

from pythonjsonlogger.orjson import OrjsonFormatter

#: The id of the request being served on this thread or greenlet ("" outside requests).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


class _RequestIdFilter(logging.Filter):
    """Stamp every record with the current request id, so handlers need not know requests."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


def json_formatter() -> logging.Formatter:
    """The formatter every Modelport log line uses (gunicorn's too, through its logconfig)."""
    return OrjsonFormatter(
        "{asctime}{levelname}{name}{message}{request_id}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def configure(level: int = logging.INFO) -> None:
    """Send the `modelport` loggers to stderr as JSON lines; idempotent."""
    logger = logging.getLogger("modelport")
    if any(getattr(h, "_modelport", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    handler.addFilter(_RequestIdFilter())
    handler._modelport = True  # type: ignore[attr-defined]  # marks our handler for idempotence
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
