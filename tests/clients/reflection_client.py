"""List the services of a gRPC server through server reflection (v1alpha and v1), as JSON.

Uses only grpcio and grpcio-reflection, in a child process so that the descriptors it receives
do not meet Modelport's generated ones. Usage: python reflection_client.py HOST:PORT
"""

from __future__ import annotations

import json
import sys

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


def ask(channel: grpc.Channel, path: str, request: reflection_pb2.ServerReflectionRequest):
    call = channel.stream_stream(
        path,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return next(iter(call(iter([request]), timeout=10)))


def main() -> int:
    target = sys.argv[1]
    channel = grpc.insecure_channel(target)
    out: dict[str, object] = {}
    for label, path in (
        ("v1alpha", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
        ("v1", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
    ):
        response = ask(channel, path, reflection_pb2.ServerReflectionRequest(list_services=""))
        out[label] = sorted(s.name for s in response.list_services_response.service)
    files = {}
    for symbol in ("ModzyModel", "inference.GRPCInferenceService"):
        response = ask(
            channel,
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol),
        )
        proto = descriptor_pb2.FileDescriptorProto.FromString(
            response.file_descriptor_response.file_descriptor_proto[0]
        )
        files[symbol] = {"file": proto.name, "package": proto.package}
    out["files"] = files
    assert reflection_pb2_grpc  # the generated stub module imports cleanly
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
