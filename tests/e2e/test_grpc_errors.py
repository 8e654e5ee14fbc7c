"""Malformed gRPC and OMI requests get DESIGN §5's codes, and the server stays ready.

One real `gunicorn wsgi:app` (gthread, 2 workers) serves the whole table; the requests are built
with Modelport's own generated messages (no third-party protos in this process).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import omi_pb2, omi_pb2_grpc
from tests.grpc_support import start_server
from tests.server import GunicornServer

pytestmark = pytest.mark.e2e

CODE = grpc.StatusCode
IRIS_ROW = np.array([[5.1, 3.5, 1.4, 0.2]], dtype="<f4")


def _infer(
    model: str = "iris",
    version: str = "",
    inputs: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model, model_version=version, **fields)
    for spec in inputs or []:
        tensor = request.inputs.add(name=spec["name"], datatype=spec["datatype"])
        tensor.shape.extend(spec["shape"])
        for field, values in spec.get("contents", {}).items():
            getattr(tensor.contents, field).extend(values)
    return request


def _iris(**overrides: Any) -> dict[str, Any]:
    return {"name": "input-0", "datatype": "FP32", "shape": [1, 4], **overrides}


def _raw(request: pb.ModelInferRequest, *buffers: bytes) -> pb.ModelInferRequest:
    request.raw_input_contents.extend(buffers)
    return request


def _with_output(request: pb.ModelInferRequest, name: str) -> pb.ModelInferRequest:
    request.outputs.add(name=name)
    return request


ROW = IRIS_ROW.tobytes()
TYPED_ROW = {"fp32_contents": IRIS_ROW.reshape(-1).tolist()}

# (id, method, request, expected code, a word the message must contain)
OIP_TABLE: list[tuple[str, str, Any, grpc.StatusCode, str]] = [
    (
        "unknown-model",
        "ModelInfer",
        _raw(_infer("nope", inputs=[_iris()]), ROW),
        CODE.NOT_FOUND,
        "nope",
    ),
    (
        "unknown-version",
        "ModelInfer",
        _raw(_infer("iris", "9", [_iris()]), ROW),
        CODE.NOT_FOUND,
        "'9'",
    ),
    (
        "model-failed-to-load",
        "ModelInfer",
        _raw(_infer("broken", inputs=[_iris()]), ROW),
        CODE.UNAVAILABLE,
        "broken",
    ),
    ("no-inputs", "ModelInfer", _infer("iris"), CODE.INVALID_ARGUMENT, "no inputs"),
    (
        "unknown-datatype",
        "ModelInfer",
        _raw(_infer(inputs=[_iris(datatype="FP128")]), ROW),
        CODE.INVALID_ARGUMENT,
        "FP128",
    ),
    (
        "bf16-unsupported",
        "ModelInfer",
        _raw(_infer("echo", inputs=[_iris(datatype="BF16", shape=[2])]), b"\0" * 4),
        CODE.INVALID_ARGUMENT,
        "BF16",
    ),
    (
        "typed-count-mismatch",
        "ModelInfer",
        _infer(inputs=[_iris(shape=[2, 4], contents=TYPED_ROW)]),
        CODE.INVALID_ARGUMENT,
        "8 elements",
    ),
    (
        "typed-wrong-field",
        "ModelInfer",
        _infer(inputs=[_iris(contents={"fp64_contents": [1.0] * 4})]),
        CODE.INVALID_ARGUMENT,
        "fp64_contents",
    ),
    (
        "raw-wrong-size",
        "ModelInfer",
        _raw(_infer(inputs=[_iris()]), ROW[:-1]),
        CODE.INVALID_ARGUMENT,
        "16 bytes",
    ),
    (
        "raw-and-typed-mixed",
        "ModelInfer",
        _raw(_infer(inputs=[_iris(contents=TYPED_ROW)]), ROW),
        CODE.INVALID_ARGUMENT,
        "raw_input_contents",
    ),
    (
        "raw-count-mismatch",
        "ModelInfer",
        _raw(_infer(inputs=[_iris()]), ROW, ROW),
        CODE.INVALID_ARGUMENT,
        "2 raw_input_contents",
    ),
    ("no-data-at-all", "ModelInfer", _infer(inputs=[_iris()]), CODE.INVALID_ARGUMENT, "no data"),
    (
        "negative-dimension",
        "ModelInfer",
        _raw(_infer(inputs=[_iris(shape=[-1, 4])]), ROW),
        CODE.INVALID_ARGUMENT,
        "negative",
    ),
    (
        "datatype-not-the-models",
        "ModelInfer",
        _raw(_infer(inputs=[_iris(datatype="INT32")]), ROW),
        CODE.INVALID_ARGUMENT,
        "expected FP32",
    ),
    (
        "shape-not-the-models",
        "ModelInfer",
        _raw(_infer(inputs=[_iris(shape=[2, 2])]), ROW),
        CODE.INVALID_ARGUMENT,
        "shape",
    ),
    (
        "missing-input",
        "ModelInfer",
        _raw(_infer("multi", inputs=[{"name": "a", "datatype": "FP32", "shape": [1, 2]}]), ROW[:8]),
        CODE.INVALID_ARGUMENT,
        "'b' is missing",
    ),
    (
        "unknown-input",
        "ModelInfer",
        _raw(
            _infer(
                "multi",
                inputs=[
                    {"name": "a", "datatype": "FP32", "shape": [1, 2]},
                    {"name": "c", "datatype": "INT32", "shape": [1]},
                ],
            ),
            ROW[:8],
            ROW[:4],
        ),
        CODE.INVALID_ARGUMENT,
        "'c'",
    ),
    (
        "duplicate-input",
        "ModelInfer",
        _raw(_infer("echo", inputs=[_iris(), _iris()]), ROW, ROW),
        CODE.INVALID_ARGUMENT,
        "twice",
    ),
    (
        "unknown-output",
        "ModelInfer",
        _with_output(_raw(_infer(inputs=[_iris()]), ROW), "nope"),
        CODE.INVALID_ARGUMENT,
        "'nope'",
    ),
    (
        "int8-out-of-range",
        "ModelInfer",
        _infer(
            "echo",
            inputs=[
                {
                    "name": "x",
                    "datatype": "INT8",
                    "shape": [2],
                    "contents": {"int_contents": [1, 300]},
                }
            ],
        ),
        CODE.INVALID_ARGUMENT,
        "out of range",
    ),
    (
        "fp16-typed",
        "ModelInfer",
        _infer(
            "echo",
            inputs=[
                {
                    "name": "x",
                    "datatype": "FP16",
                    "shape": [1],
                    "contents": {"fp32_contents": [1.0]},
                }
            ],
        ),
        CODE.INVALID_ARGUMENT,
        "raw_input_contents",
    ),
    (
        "bytes-length-past-end",
        "ModelInfer",
        _raw(
            _infer("echo", inputs=[{"name": "x", "datatype": "BYTES", "shape": [1]}]),
            struct.pack("<I", 99) + b"abc",
        ),
        CODE.INVALID_ARGUMENT,
        "past the end",
    ),
    (
        "model-raised",
        "ModelInfer",
        _infer(
            "failing",
            inputs=[
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": [2],
                    "contents": {"fp32_contents": [1.0, -1.0]},
                }
            ],
        ),
        CODE.INTERNAL,
        "negative values",
    ),
    (
        "larger-than-limit",
        "ModelInfer",
        _raw(
            _infer("echo", inputs=[{"name": "x", "datatype": "UINT8", "shape": [9 * 2**20]}]),
            b"\0" * (9 * 2**20),
        ),
        CODE.RESOURCE_EXHAUSTED,
        "",
    ),
    (
        "metadata-unknown",
        "ModelMetadata",
        pb.ModelMetadataRequest(name="nope"),
        CODE.NOT_FOUND,
        "nope",
    ),
    (
        "metadata-not-ready",
        "ModelMetadata",
        pb.ModelMetadataRequest(name="broken"),
        CODE.UNAVAILABLE,
        "broken",
    ),
    ("config-unknown", "ModelConfig", pb.ModelConfigRequest(name="nope"), CODE.NOT_FOUND, "nope"),
    (
        "statistics-unknown",
        "ModelStatistics",
        pb.ModelStatisticsRequest(name="nope"),
        CODE.NOT_FOUND,
        "nope",
    ),
    (
        "load-unknown",
        "RepositoryModelLoad",
        pb.RepositoryModelLoadRequest(model_name="nope"),
        CODE.NOT_FOUND,
        "nope",
    ),
    (
        "load-config-override",
        "RepositoryModelLoad",
        pb.RepositoryModelLoadRequest(
            model_name="iris", parameters={"config": pb.ModelRepositoryParameter(string_param="{}")}
        ),
        CODE.INVALID_ARGUMENT,
        "config",
    ),
    (
        "load-fails",
        "RepositoryModelLoad",
        pb.RepositoryModelLoadRequest(model_name="broken"),
        CODE.UNAVAILABLE,
        "broken",
    ),
    (
        "unload-unknown",
        "RepositoryModelUnload",
        pb.RepositoryModelUnloadRequest(model_name="nope"),
        CODE.NOT_FOUND,
        "nope",
    ),
]


@pytest.fixture(scope="module")
def server() -> Iterator[GunicornServer]:
    """One gthread server for the whole table."""
    running = start_server("gthread")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def channel(server: GunicornServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as opened:
        yield opened


@pytest.mark.parametrize(
    ("method", "request_message", "code", "word"),
    [row[1:] for row in OIP_TABLE],
    ids=[row[0] for row in OIP_TABLE],
)
def test_oip_error_table(
    channel: grpc.Channel, method: str, request_message: Any, code: grpc.StatusCode, word: str
) -> None:
    call: Callable[..., Any] = getattr(pb_grpc.GRPCInferenceServiceStub(channel), method)
    with pytest.raises(grpc.RpcError) as caught:
        call(request_message, timeout=30)
    assert caught.value.code() == code, caught.value.details()
    assert word in (caught.value.details() or "")
    assert "Traceback" not in (caught.value.details() or "")


def _run(channel: grpc.Channel, items: list[dict[str, bytes]], model: str | None = None):
    metadata = [("omi-model", model)] if model else None
    request = omi_pb2.RunRequest(inputs=[omi_pb2.InputItem(input=item) for item in items])
    return omi_pb2_grpc.ModzyModelStub(channel).Run(request, metadata=metadata, timeout=30)


GOOD_DIGITS = {"input": json.dumps([1.0] * 64).encode()}
# (id, items, model, the failed item's error must contain this)
OMI_ITEM_TABLE = [
    ("missing-key", [GOOD_DIGITS, {"image": b"{}"}, GOOD_DIGITS], None, "no 'input' key"),
    (
        "not-json-or-npy",
        [GOOD_DIGITS, {"input": b"\x00garbage"}, GOOD_DIGITS],
        None,
        "neither JSON",
    ),
    ("wrong-row-length", [GOOD_DIGITS, {"input": b"[1, 2, 3]"}, GOOD_DIGITS], None, "64"),
    ("model-raised", [{"x": b"[1.0]"}, {"x": b"[-1.0]"}, {"x": b"[2.0]"}], "failing", "negative"),
    (
        "adapter-missing-key",
        [{"a": b"[[1, 2]]", "b": b"[3]"}, {"a": b"[[1, 2]]"}, {"a": b"[[1, 2]]", "b": b"[3]"}],
        "multi",
        "no 'b' key",
    ),
]


@pytest.mark.parametrize(
    ("items", "model", "word"),
    [row[1:] for row in OMI_ITEM_TABLE],
    ids=[row[0] for row in OMI_ITEM_TABLE],
)
def test_omi_failed_items(channel: grpc.Channel, items, model, word) -> None:
    """The Run is 200; only the middle item fails, with `success=false` and an `error`."""
    response = _run(channel, items, model)
    assert (response.status_code, response.status) == (200, "OK")
    assert [item.success for item in response.outputs] == [True, False, True]
    assert word in response.outputs[1].output["error"].decode()


@pytest.mark.parametrize(
    ("model", "status_code"), [("nope", 404), ("broken", 503)], ids=["unknown-model", "not-ready"]
)
def test_omi_run_that_cannot_run(channel: grpc.Channel, model: str, status_code: int) -> None:
    response = _run(channel, [GOOD_DIGITS], model)
    assert response.status_code == status_code
    assert model in response.message and not response.outputs
    status = omi_pb2_grpc.ModzyModelStub(channel).Status(
        omi_pb2.StatusRequest(), metadata=[("omi-model", model)], timeout=30
    )
    assert status.status_code == status_code


INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"


@pytest.mark.parametrize(
    "wire",
    [
        b"\x0a\x04iris\x3a\x05abc",  # raw_input_contents claims 5 bytes, 3 follow
        b"\x0a\x04iris\x3a",  # a raw_input_contents key and nothing after it
        b"\x0a\x04iris\x12\x80",  # a truncated length varint
        b"\x0a\x02\xff\xfe" + _raw(_infer(model=""), ROW).SerializeToString(),  # bad UTF-8
    ],
    ids=["raw-runs-past-end", "key-only", "truncated-varint", "bad-utf8-name"],
)
def test_malformed_infer_bytes_are_internal_like_grpcio(channel: grpc.Channel, wire: bytes) -> None:
    """ModelInfer reads raw tensors without protobuf (app/codec/proto_wire.py): bytes protobuf
    cannot parse still get grpcio's own answer to an undecodable request."""
    call = channel.unary_unary(INFER_METHOD)  # bytes in, bytes out: no client-side parsing
    with pytest.raises(grpc.RpcError) as caught:
        call(wire, timeout=30)
    assert caught.value.code() == CODE.INTERNAL
    assert "deserializing" in (caught.value.details() or "")


def test_raw_tensors_split_across_the_message_are_read_in_order(channel: grpc.Channel) -> None:
    """Fields in any order (raw contents before the inputs) parse as protobuf reads them."""
    wire = _raw(pb.ModelInferRequest(), ROW).SerializeToString()
    wire += _infer(inputs=[_iris()]).SerializeToString()
    answer = pb.ModelInferResponse.FromString(channel.unary_unary(INFER_METHOD)(wire, timeout=30))
    assert np.frombuffer(answer.raw_output_contents[0], "<i8").tolist() == [0]


def test_server_stays_ready(server: GunicornServer, channel: grpc.Channel) -> None:
    """Runs last: both workers are the ones that booted, and they still serve."""
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
    for _ in range(4):  # new connections, so both workers are likely asked
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as fresh:
            answer = pb_grpc.GRPCInferenceServiceStub(fresh).ModelInfer(
                _raw(_infer(inputs=[_iris()]), ROW), timeout=10
            )
            assert np.frombuffer(answer.raw_output_contents[0], "<i8").tolist() == [0]
    assert server.log().count("Booting worker") == 2
