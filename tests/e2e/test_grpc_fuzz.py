"""hypothesis-generated ModelInferRequests against a real gRPC sidecar (issue 15).

Any message a client can build, sent to well-behaved models (tests/data/openapi.yaml, as the
schemathesis run uses): zero INTERNAL or UNKNOWN answers unless a model itself raised (its
message says "model '<name>' failed"), and the server is ready after every one. The same
messages are also mangled at the byte level (truncated, bytes flipped): those may only get
grpcio's own answer to undecodable bytes (INTERNAL "Exception deserializing request!",
tests/e2e/test_grpc_errors.py) or the answers above.

`make test` runs MODELPORT_FUZZ_EXAMPLES (default 150) of each; `make soak` runs 5,000.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from tests.grpc_support import start_server
from tests.server import ROOT

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("MODELPORT_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 500,  # `make test`: the same examples every run
    suppress_health_check=list(HealthCheck),
    database=None,
)
INFER = "/inference.GRPCInferenceService/ModelInfer"
UNDECODABLE = "Exception deserializing request!"
DATATYPES = [
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES", "BF16", "", "fp32", "STRING",
]  # fmt: skip
#: Where each datatype's values go in InferTensorContents, and what they are made of.
CONTENTS = {
    "bool_contents": st.booleans(),
    "int_contents": st.integers(-(2**31), 2**31 - 1),
    "int64_contents": st.integers(-(2**63), 2**63 - 1),
    "uint_contents": st.integers(0, 2**32 - 1),
    "uint64_contents": st.integers(0, 2**64 - 1),
    "fp32_contents": st.floats(width=32, allow_nan=True, allow_infinity=True),
    "fp64_contents": st.floats(allow_nan=True, allow_infinity=True),
    "bytes_contents": st.binary(max_size=16),
}
NAMES = st.sampled_from(["iris", "echo", "sum", "nope", ""]) | st.text(max_size=8)
TENSOR_NAMES = st.sampled_from(["input-0", "x", "a", "predictions", ""]) | st.text(max_size=6)
# Mostly small dimensions (so data can match), sometimes absurd ones.
DIMS = st.integers(-2, 5) | st.sampled_from([0, 2**31, 2**62, -(2**63)])


PARAMETER_KEYS = st.sampled_from(
    ["timeout", "binary_data_output", "k", "priority", "sequence_id", "content_type"]
) | st.text(max_size=5)
PARAMETER_VALUES = {
    "bool_param": st.booleans(),
    "int64_param": st.integers(-(2**63), 2**63 - 1),
    "string_param": st.text(max_size=8),
    "double_param": st.floats(),
    "uint64_param": st.integers(0, 2**64 - 1),
}


@st.composite
def parameters(draw: st.DrawFn, message: object) -> None:
    """Fill `message.parameters` (a request's or a tensor's) with a few of any kind."""
    for key in draw(st.lists(PARAMETER_KEYS, max_size=3)):
        kind = draw(st.sampled_from(sorted(PARAMETER_VALUES)))
        setattr(message.parameters[key], kind, draw(PARAMETER_VALUES[kind]))  # type: ignore[attr-defined]  # a request or a tensor


@st.composite
def infer_requests(draw: st.DrawFn) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(
        model_name=draw(NAMES),
        model_version=draw(st.sampled_from(["", "1", "2", "9"]) | st.text(max_size=3)),
        id=draw(st.text(max_size=8)),
    )
    raw = draw(st.booleans())
    for _ in range(draw(st.integers(0, 3))):
        tensor = request.inputs.add(
            name=draw(TENSOR_NAMES),
            datatype=draw(st.sampled_from(DATATYPES)),
            shape=draw(st.lists(DIMS, max_size=4)),
        )
        draw(parameters(tensor))
        if raw:
            request.raw_input_contents.append(draw(st.binary(max_size=64)))
        else:
            field = draw(st.sampled_from(sorted(CONTENTS)))
            getattr(tensor.contents, field).extend(draw(st.lists(CONTENTS[field], max_size=12)))
    if draw(st.booleans()):  # raw contents that do not match the inputs
        request.raw_input_contents.extend(draw(st.lists(st.binary(max_size=32), max_size=2)))
    for _ in range(draw(st.integers(0, 2))):
        output = request.outputs.add(name=draw(TENSOR_NAMES))
        if draw(st.booleans()):
            output.parameters["binary_data"].bool_param = draw(st.booleans())
    draw(parameters(request))
    return request


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    wire = bytearray(draw(infer_requests()).SerializeToString())
    for _ in range(draw(st.integers(1, 4))):
        if not wire:
            break
        where = draw(st.integers(0, len(wire) - 1))
        if draw(st.booleans()):
            wire[where] = draw(st.integers(0, 255))
        else:
            del wire[where:]
    return bytes(wire)


@pytest.fixture(scope="module")
def channel() -> Iterator[grpc.Channel]:
    server = start_server(workers=1, config=ROOT / "tests" / "data" / "openapi.yaml")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            yield channel
    finally:
        server.stop()


def allowed(error: grpc.RpcError, undecodable_ok: bool) -> bool:
    """Whether an error answer is one the server may give (not a bug of the server)."""
    code, details = error.code(), error.details() or ""
    if code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        return True
    if code == grpc.StatusCode.INTERNAL and details.startswith("model '") and " failed" in details:
        return True  # the model's own error (DESIGN §5: 500 / INTERNAL with its message)
    return undecodable_ok and code == grpc.StatusCode.INTERNAL and details == UNDECODABLE


def send(channel: grpc.Channel, wire: bytes, undecodable_ok: bool) -> None:
    call = channel.unary_unary(INFER)  # bytes in, bytes out
    try:
        pb.ModelInferResponse.FromString(call(wire, timeout=60))
    except grpc.RpcError as error:
        assert allowed(error, undecodable_ok), (error.code(), error.details(), wire[:400])
    ready = pb_grpc.GRPCInferenceServiceStub(channel).ServerReady(
        pb.ServerReadyRequest(), timeout=60
    )
    assert ready.ready


def test_generated_infer_requests(channel: grpc.Channel) -> None:
    sent = []

    @FUZZ
    @given(infer_requests())
    def check(request: pb.ModelInferRequest) -> None:
        sent.append(1)
        send(channel, request.SerializeToString(), undecodable_ok=False)

    check()
    print(f"\ngRPC fuzz: {len(sent)} generated ModelInferRequests, no server error")


def test_mangled_infer_bytes(channel: grpc.Channel) -> None:
    sent = []

    @FUZZ
    @given(mangled())
    def check(wire: bytes) -> None:
        sent.append(1)
        send(channel, wire, undecodable_ok=True)

    check()
    print(f"\ngRPC fuzz: {len(sent)} mangled ModelInferRequests, no server error")
