"""The one place where gRPC errors are made, and calls are counted: every RPC passes here.

A `ModelportError` becomes the status named by its `grpc_code` (DESIGN §5) with its message; any
other exception becomes INTERNAL "internal server error" and its traceback goes to the log only.
Wrapping the method handlers (instead of decorating servicer methods one by one) is what makes
it impossible to forget one; `tests/grpc_service/test_server.py` walks the descriptors to prove
it. Credentials are checked by `grpc_service.auth.AuthInterceptor`, inside this one, so its
refusals are mapped and counted like any other error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from app import deadlines, metrics
from app.errors import ModelOverloaded, ModelportError

log = logging.getLogger("modelport.grpc")

#: Whether a model name is configured: only those become metric labels (clients cannot add any).
KnownModel = Callable[[str], bool]

#: Metric `protocol` label by service prefix; health and reflection are not counted.
_PROTOCOLS = {"/inference.GRPCInferenceService/": "grpc", "/ModzyModel/": "omi"}


def status_of(exc: BaseException, method: str = "") -> tuple[grpc.StatusCode, str]:
    """The gRPC status and message a client sees for an exception (5xx are logged)."""
    if isinstance(exc, ModelportError):
        code = getattr(grpc.StatusCode, exc.grpc_code, grpc.StatusCode.INTERNAL)
        if exc.http_status >= 500:
            log.error("%s -> %s: %s", method, code.name, exc.message)
        return code, exc.message
    log.error("%s failed", method, exc_info=exc)
    return grpc.StatusCode.INTERNAL, "internal server error"


class ErrorInterceptor(grpc.ServerInterceptor):
    """Runs the handler, turns whatever it raises into a gRPC status, and counts the call.

    grpcio asks the interceptors for a handler on every call. The handler a method resolves
    to is the same object call after call (registered once; `AuthInterceptor` keeps its own
    per method too), so its wrapper is built once and kept beside it: building it per call
    (closures and grpcio's handler tuple) was 8 % of the instructions of a W2 call from the
    interceptors to the answer's bytes (callgrind: 331k -> 305k).
    """

    def __init__(self, known_model: KnownModel | None = None) -> None:
        self._known_model = known_model or (lambda name: False)
        # method -> (the handler found for it, its wrapper); a race only wraps it twice.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        """Wrap the behaviour of the handler the server found for this call."""
        handler = continuation(handler_call_details)
        if handler is None:
            return None  # grpcio answers UNIMPLEMENTED itself
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _wrap(handler, method, self._known_model)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def _protocol(method: str) -> str | None:
    return next((p for prefix, p in _PROTOCOLS.items() if method.startswith(prefix)), None)


def _observe(
    protocol: str | None,
    known_model: KnownModel,
    request: Any,
    sizes: list[int],
    context: grpc.ServicerContext,
    started: float,
) -> None:
    """Count one call by model, protocol and gRPC code, with its message sizes (`sizes`)."""
    if protocol is None:
        return
    name = getattr(request, "model_name", "") or getattr(request, "name", "")
    code = context.code() or grpc.StatusCode.OK
    size_in, size_out = sizes
    metrics.observe_request(
        name if known_model(name) else "",
        protocol,
        code.name if isinstance(code, grpc.StatusCode) else str(code),
        time.perf_counter() - started,
        size_in,
        size_out,
    )


def _set_deadline(context: grpc.ServicerContext) -> None:
    """The call's gRPC deadline becomes the request's (`app.deadlines`), for the data plane.

    Set on every call, None included: grpcio's pool threads serve one call after another.
    A call without a deadline has a "remaining" time of centuries (grpcio's infinite future),
    too far for a thread's timed wait: anything past a day counts as none.
    """
    remaining = context.time_remaining()
    if remaining is None or remaining > deadlines.FOREVER_SECONDS:
        deadlines.set_deadline(None)
    else:
        deadlines.set_deadline(time.monotonic() + remaining)


def _wrap(
    handler: grpc.RpcMethodHandler, method: str, known_model: KnownModel
) -> grpc.RpcMethodHandler:
    protocol = _protocol(method)

    def abort(context: grpc.ServicerContext, exc: Exception) -> None:
        if type(exc) is Exception and context.code() is not None:
            raise exc  # the handler aborted with its own status already: keep it
        code, message = status_of(exc, method)
        if isinstance(exc, ModelOverloaded):
            context.set_trailing_metadata((("retry-after", str(exc.retry_after)),))
        context.abort(code, message)

    # Message sizes come from the wire: the handler gets the request's bytes and returns the
    # response's, and (de)serializes them itself. upb's `ByteSize()` serializes the message to
    # count it: 11 ms for a 4 MiB tensor, half of what a 4 MiB ModelInfer cost (bench/, py-spy).
    # Failures to (de)serialize answer what grpcio answers for them. The deserializer is the
    # one registered for the method (`grpc_service.handlers`), ModelInfer's zero-copy reader.
    deserialize = handler.request_deserializer
    serialize = handler.response_serializer

    def unary_unary(
        behaviour: Callable[[Any, grpc.ServicerContext], Any],
    ) -> Callable[[bytes, grpc.ServicerContext], Any]:
        def call(data: bytes, context: grpc.ServicerContext) -> Any:
            try:
                request = deserialize(data) if deserialize is not None else data
            except Exception:
                log.exception("%s: exception deserializing message", method)
                context.abort(grpc.StatusCode.INTERNAL, "Exception deserializing request!")
            return respond(behaviour, request, context, len(data))

        return call

    def stream_unary(
        behaviour: Callable[[Any, grpc.ServicerContext], Any],
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        def call(requests: Any, context: grpc.ServicerContext) -> Any:
            return respond(behaviour, requests, context, 0)

        return call

    def respond(
        behaviour: Callable[[Any, grpc.ServicerContext], Any],
        request: Any,
        context: grpc.ServicerContext,
        received: int,
    ) -> Any:
        started = time.perf_counter()
        sizes = [received, 0]
        _set_deadline(context)
        try:
            response = behaviour(request, context)
            if serialize is None:
                return response
            try:
                data = serialize(response)
            except Exception:
                log.exception("%s: exception serializing message", method)
                context.abort(grpc.StatusCode.INTERNAL, "Failed to serialize response!")
            sizes[1] = len(data)
            return data
        except Exception as exc:
            abort(context, exc)
        finally:
            _observe(protocol, known_model, request, sizes, context, started)

    def streaming(
        behaviour: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            _set_deadline(context)
            try:
                yield from behaviour(request, context)
            except Exception as exc:
                abort(context, exc)

        return call

    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary_unary(handler.unary_unary))
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            stream_unary(handler.stream_unary), request_deserializer=deserialize
        )
    serializers = {"request_deserializer": deserialize, "response_serializer": serialize}
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **serializers)
    return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **serializers)
