"""A service's method handlers, built from its descriptor, with a request reader per method.

The generated `add_*Servicer_to_server` functions register `FromString` for every method. The
sidecar builds the same handlers from the service descriptor instead, so a method can read its
request its own way (ModelInfer: `app.codec.proto_wire.read_infer_call`, which keeps raw
tensors uncopied) and its servicer method always receives that one type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

Reader = Callable[[bytes], Any]
#: grpcio's handler constructor per (request streaming, response streaming).
_KINDS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def method_handlers(
    service: ServiceDescriptor, servicer: object, readers: Mapping[str, Reader] | None = None
) -> dict[str, grpc.RpcMethodHandler]:
    """One handler per method of `service`, calling the servicer method of the same name.

    `readers` maps a method name to the function that reads its request bytes; the others
    read theirs with the generated message's `FromString`.
    """
    readers = readers or {}
    return {
        method.name: _handler(method, getattr(servicer, method.name), readers.get(method.name))
        for method in service.methods
    }


def add_service(
    server: grpc.Server,
    service: ServiceDescriptor,
    servicer: object,
    readers: Mapping[str, Reader] | None = None,
) -> None:
    """Serve `servicer` as `service` on `server`, as the generated function would register it."""
    handlers = method_handlers(service, servicer, readers)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    server.add_registered_method_handlers(service.full_name, handlers)


def _handler(
    method: MethodDescriptor, behaviour: Callable[..., Any], reader: Reader | None
) -> grpc.RpcMethodHandler:
    request = message_factory.GetMessageClass(method.input_type)
    response = message_factory.GetMessageClass(method.output_type)
    make = _KINDS[(method.client_streaming, method.server_streaming)]
    return make(
        behaviour,
        request_deserializer=reader or request.FromString,
        response_serializer=response.SerializeToString,
    )


def behaviour_of(handler: grpc.RpcMethodHandler) -> Callable[..., Any]:
    """The function a handler calls, whatever its kind."""
    behaviour: Callable[..., Any] = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    return behaviour


def with_behaviour(
    handler: grpc.RpcMethodHandler, behaviour: Callable[..., Any]
) -> grpc.RpcMethodHandler:
    """A handler of the same kind and (de)serializers as `handler` that calls `behaviour`."""
    make = _KINDS[(handler.request_streaming, handler.response_streaming)]
    return make(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
