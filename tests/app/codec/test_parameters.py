"""Protocol-control parameters steer the server and never reach the model (REST and gRPC alike).

The `params` test model answers the `parameters` it was given, so each test sends Triton's
reserved keys next to its own and reads back what the model saw.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.codec.binary import HEADER_LENGTH
from app.codec.parameters import split_parameters
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from tests.grpc_support import loopback_sidecar

USER = {"custom": "x", "n": 2, "flag": True}
# Every request-level key Triton keeps for itself (reference §6.3, Triton's parameters,
# sequence, schedule-policy and binary-data extensions).
CONTROLS = {
    "sequence_id": 7,
    "sequence_start": True,
    "sequence_end": False,
    "priority": 1,
    "timeout": 1000,
    "headers": "x-trace: 1",
    "triton_enable_empty_final_response": True,
    "binary_data_output": False,
}
INPUT = {"name": "i", "shape": [1], "datatype": "INT32", "data": [1]}


def _seen(output: dict) -> dict:
    """The parameters the model answered with, from a JSON output."""
    return orjson.loads(output["data"][0])


def test_split_keeps_user_parameters_and_sets_controls_apart() -> None:
    model, controls = split_parameters({**USER, **CONTROLS, "content_type": "np"})
    assert model == {**USER, "content_type": "np"}  # MLServer's codec hint is the model's
    assert controls == CONTROLS
    assert split_parameters({}) == ({}, {})


def test_rest_controls_do_not_reach_the_model(client: FlaskClient) -> None:
    body = {
        "parameters": {**USER, **CONTROLS},
        "inputs": [INPUT],
        "outputs": [{"name": "parameters", "parameters": {"binary_data": False}}],
    }
    answer = client.post("/v2/models/params/infer", json=body)
    assert answer.status_code == 200, answer.json
    assert _seen(answer.json["outputs"][0]) == USER


def test_rest_binary_data_output_is_still_honoured(client: FlaskClient) -> None:
    body = {"parameters": {**USER, "binary_data_output": True}, "inputs": [INPUT]}
    answer = client.post("/v2/models/params/infer", json=body)
    assert answer.status_code == 200, answer.get_data()
    length = int(answer.headers[HEADER_LENGTH])
    data = answer.get_data()
    header = orjson.loads(data[:length])
    (output,) = header["outputs"]
    assert "data" not in output and output["parameters"]["binary_data_size"] > 0
    # One BYTES element: a little-endian uint32 length, then the JSON the model wrote.
    assert orjson.loads(data[length + 4 :]) == USER


@pytest.fixture()
def oip_stub(app: Flask) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    """An in-process gRPC sidecar over the shared app, on a free loopback port."""
    server, port = loopback_sidecar(app)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield pb_grpc.GRPCInferenceServiceStub(channel)
    channel.close()
    server.stop(0)


def test_grpc_controls_do_not_reach_the_model(oip_stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    message = pb.ModelInferRequest(model_name="params")
    message.inputs.add(name="i", datatype="INT32", shape=[1]).contents.int_contents.append(1)
    # As tritonclient sends them: priority as uint64, timeout and sequence_id as int64.
    message.parameters["priority"].uint64_param = 1
    message.parameters["timeout"].int64_param = 1000
    message.parameters["sequence_id"].int64_param = 7
    message.parameters["sequence_start"].bool_param = True
    message.parameters["sequence_end"].bool_param = False
    message.parameters["headers"].string_param = "x-trace: 1"
    message.parameters["triton_enable_empty_final_response"].bool_param = True
    message.parameters["custom"].string_param = "x"
    message.parameters["n"].int64_param = 2
    message.parameters["flag"].bool_param = True
    message.outputs.add(name="parameters").parameters["classification"].int64_param = 0
    answer = oip_stub.ModelInfer(message, timeout=30)
    (output,) = answer.outputs  # typed contents in, typed contents out
    assert orjson.loads(output.contents.bytes_contents[0]) == USER
