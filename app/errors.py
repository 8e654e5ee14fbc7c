"""One exception hierarchy for every failure a client may see (DESIGN §5).

Each class carries its wire facts as attributes, so the Flask handler, the gRPC interceptor and the
OMI servicer all read the same table instead of keeping their own (KServe keeps two and they
disagree).
"""

from __future__ import annotations

from typing import Any


class ModelportError(Exception):
    """Base for every failure a client may see; subclasses are the rows of DESIGN §5."""

    http_status: int = 500
    grpc_code: str = "INTERNAL"  # a grpc.StatusCode name; resolved in grpc_service
    #: The machine-readable reason: `details.reason` of the `errors: detailed` REST body.
    reason: str = "internal"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        return self.message


class InvalidInput(ModelportError, ValueError):
    """Malformed body, wrong shape, datatype or size, unknown input or output."""

    http_status, grpc_code, reason = 400, "INVALID_ARGUMENT", "invalid_input"


class Unauthenticated(ModelportError):
    """Missing or wrong credentials."""

    http_status, grpc_code, reason = 401, "UNAUTHENTICATED", "unauthenticated"


class Forbidden(ModelportError):
    """The request names something it may not reach (a data_url outside the allowed roots)."""

    http_status, grpc_code, reason = 403, "PERMISSION_DENIED", "forbidden"


class ModelNotFound(ModelportError, LookupError):
    """No model, or no such version of it, is configured."""

    http_status, grpc_code, reason = 404, "NOT_FOUND", "model_not_found"


class PayloadTooLarge(ModelportError):
    """The body (or its decompressed form) is larger than `limits.max_request_bytes`."""

    http_status, grpc_code, reason = 413, "RESOURCE_EXHAUSTED", "payload_too_large"


class UnsupportedMediaType(ModelportError):
    """A content type or encoding that Modelport does not read."""

    http_status, grpc_code, reason = 415, "INVALID_ARGUMENT", "unsupported_media_type"


class ModelFailed(ModelportError):
    """The model raised while predicting; the message is the model's, the traceback is logged."""

    http_status, grpc_code, reason = 500, "INTERNAL", "model_error"


class NotImplementedByModel(ModelportError):
    """The model or server cannot do what was asked (explain without an explainer, for one)."""

    http_status, grpc_code, reason = 501, "UNIMPLEMENTED", "not_implemented"


class ModelUnavailable(ModelportError):
    """The model is loading, unloaded, failed to load, or overloaded."""

    http_status, grpc_code, reason = 503, "UNAVAILABLE", "model_unavailable"


class WorkersUnresponsive(ModelUnavailable):
    """Another gunicorn worker did not follow a repository change, or send its statistics, in time.

    The 503 row: the server cannot vouch for a state or a total that a worker has not confirmed.
    """

    reason = "workers_unresponsive"


class ModelOverloaded(ModelUnavailable):
    """The model's call pool is full and `max_queue` requests already wait for it.

    Answered at once, with `Retry-After` (HTTP header, gRPC trailing metadata `retry-after`),
    instead of letting latency grow without bound.
    """

    reason = "model_overloaded"

    def __init__(
        self, message: str, retry_after: int = 1, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details)
        #: Whole seconds a client should wait before it tries again.
        self.retry_after = retry_after


class DeadlineExceeded(ModelportError):
    """The request's deadline passed (the model's `timeout_ms`, or the client's own deadline)."""

    http_status, grpc_code, reason = 504, "DEADLINE_EXCEEDED", "deadline_exceeded"


def error_rows() -> dict[int, str]:
    """Each HTTP status a `ModelportError` answers, with what it means (DESIGN §5's rows).

    The meaning is the summary line of every class that answers the status, in the order they
    are defined here; the base class (any unexpected failure) is not a row of its own. The
    OpenAPI document describes its error responses with these, so they cannot drift.
    """
    rows: dict[int, list[str]] = {}
    pending = list(ModelportError.__subclasses__())
    while pending:
        cls = pending.pop(0)
        summary = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
        rows.setdefault(cls.http_status, []).append(summary)
        pending.extend(cls.__subclasses__())
    return {status: " ".join(rows[status]) for status in sorted(rows)}
