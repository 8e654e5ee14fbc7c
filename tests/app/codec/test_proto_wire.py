"""`read_infer_call` reads exactly what protobuf reads, with raw tensors as views (no copy)."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from app.codec.proto_wire import InferCall, read_infer_call
from protos import grpc_service_pb2 as pb


def _rebuilt(call: InferCall) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest()
    message.CopyFrom(call.message)
    message.raw_input_contents.extend(bytes(view) for view in call.raw)
    return message


def _request(raw: list[bytes], **fields: object) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="m", model_version="2", id="r", **fields)
    for index, entry in enumerate(raw):
        tensor = message.inputs.add(name=f"in{index}", datatype="UINT8", shape=[len(entry)])
        tensor.parameters["p"].int64_param = index
    message.parameters["sequence_id"].int64_param = 7
    message.outputs.add(name="out").parameters["binary_data"].bool_param = True
    message.raw_input_contents.extend(raw)
    return message


@pytest.mark.parametrize(
    "raw",
    [[], [b""], [b"abc"], [bytes(range(256)) * 300, b"x", b""]],
    ids=["none", "empty", "one", "three"],
)
def test_same_message_as_protobuf(raw: list[bytes]) -> None:
    message = _request(raw)
    call = read_infer_call(message.SerializeToString())
    assert _rebuilt(call) == message
    assert not call.message.raw_input_contents or not raw
    assert [bytes(view) for view in call.raw] == raw
    assert call.model_name == "m"


def test_raw_tensors_are_views_of_the_received_bytes() -> None:
    array = np.arange(1 << 16, dtype=np.float32)
    data = _request([array.tobytes()]).SerializeToString()
    call = read_infer_call(data)
    assert call.raw[0].obj is data  # a view: the 256 KiB were not copied
    assert np.array_equal(np.frombuffer(call.raw[0], dtype=np.float32), array)


def test_fields_in_any_order_and_unknown_fields_are_kept() -> None:
    message = _request([b"one", b"two"])
    parts = [
        pb.ModelInferRequest(raw_input_contents=[b"one"]).SerializeToString(),
        pb.ModelInferRequest(model_name="m").SerializeToString(),
        bytes([0xF8, 0x07, 0x2A]),  # field 127, varint 42: unknown
        bytes([0xF9, 0x07]) + bytes(8),  # field 127, fixed64
        bytes([0xFD, 0x07]) + bytes(4),  # field 127, fixed32
        pb.ModelInferRequest(raw_input_contents=[b"two"]).SerializeToString(),
        message.SerializeToString(),
    ]
    data = b"".join(parts)
    call = read_infer_call(data)
    assert _rebuilt(call) == pb.ModelInferRequest.FromString(data)
    assert [bytes(view) for view in call.raw] == [b"one", b"two", b"one", b"two"]


@pytest.mark.parametrize(
    "data",
    [
        b"\x3a\x05abc",  # raw_input_contents claims 5 bytes, 3 follow
        b"\x3a",  # a key and nothing after it
        b"\x0a\x80",  # a truncated length varint
        b"\x09\x00\x00",  # a fixed64 field cut short
        b"\x0b\x0c",  # a group (deprecated wire type)
        b"\x0f",  # wire type 7 does not exist
    ],
)
def test_malformed_data_fails_as_protobuf_fails(data: bytes) -> None:
    try:
        want: pb.ModelInferRequest | None = pb.ModelInferRequest.FromString(data)
    except DecodeError:
        want = None
    if want is None:
        with pytest.raises(DecodeError):
            read_infer_call(data)
    else:
        assert _rebuilt(read_infer_call(data)) == want


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_parse_as_protobuf_parses_them(data: bytes) -> None:
    try:
        want = pb.ModelInferRequest.FromString(data)
    except DecodeError:
        with pytest.raises(DecodeError):
            read_infer_call(data)
        return
    assert _rebuilt(read_infer_call(data)) == want


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=4), st.text(max_size=20))
def test_any_request_round_trips(raw: list[bytes], name: str) -> None:
    message = _request(raw)
    message.model_name = name
    assert _rebuilt(read_infer_call(message.SerializeToString())) == message
