"""app.codec.proto, app.codec.omi and app.codec.model_config: protobuf and OMI items <-> numpy."""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest

from app.codec import omi as omi_codec
from app.codec import proto as codec
from app.codec.model_config import model_config_to_json
from app.errors import InvalidInput
from app.model import Model
from app.types import InferResponse, Tensor, TensorSpec
from config.settings import ModelSettings
from protos import grpc_service_pb2 as pb

TYPED = [
    ("BOOL", "bool_contents", [True, False]),
    ("UINT8", "uint_contents", [0, 255]),
    ("UINT16", "uint_contents", [0, 65535]),
    ("UINT32", "uint_contents", [0, 2**32 - 1]),
    ("UINT64", "uint64_contents", [0, 2**64 - 1]),
    ("INT8", "int_contents", [-128, 127]),
    ("INT16", "int_contents", [-32768, 32767]),
    ("INT32", "int_contents", [-(2**31), 2**31 - 1]),
    ("INT64", "int64_contents", [-(2**63), 2**63 - 1]),
    ("FP32", "fp32_contents", [-1.5, 0.25]),
    ("FP64", "fp64_contents", [-1.5, 1e308]),
    ("BYTES", "bytes_contents", [b"", b"\x00\xff"]),
]


def _input(
    datatype: str, shape: list[int], field: str | None = None, values=()
) -> pb.ModelInferRequest.InferInputTensor:
    tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype=datatype, shape=shape)
    if field:
        getattr(tensor.contents, field).extend(values)
    return tensor


@pytest.mark.parametrize(("datatype", "field", "values"), TYPED, ids=[t[0] for t in TYPED])
def test_typed_round_trip(datatype: str, field: str, values: list) -> None:
    array = codec.ndarray_from_proto(_input(datatype, [1, 2], field, values))
    assert array.shape == (1, 2)
    assert array.tolist() == [values]
    contents = pb.InferTensorContents()
    codec.ndarray_to_proto(array, datatype, contents)
    assert list(getattr(contents, field)) == values


def test_narrow_integers_are_range_checked() -> None:
    with pytest.raises(InvalidInput, match="out of range for INT8"):
        codec.ndarray_from_proto(_input("INT8", [1], "int_contents", [128]))
    with pytest.raises(InvalidInput, match="out of range for UINT16"):
        codec.ndarray_from_proto(_input("UINT16", [1], "uint_contents", [65536]))
    assert codec.ndarray_from_proto(_input("INT16", [1], "int_contents", [-5])).dtype == np.int16


def test_raw_contents_are_viewed_not_copied() -> None:
    raw = np.arange(6, dtype="<f4").tobytes()
    array = codec.ndarray_from_proto(_input("FP32", [2, 3]), raw)
    assert not array.flags.owndata and np.shares_memory(array, np.frombuffer(raw, "<f4"))
    assert array.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_request_rules() -> None:
    message = pb.ModelInferRequest(model_name="m", id="7")
    message.inputs.add(name="x", datatype="FP16", shape=[2])
    message.raw_input_contents.append(np.array([1, 2], "<f2").tobytes())
    message.parameters["priority"].uint64_param = 3
    message.parameters["scale"].double_param = 0.5
    message.outputs.add(name="y").parameters["classification"].int64_param = 2
    request = codec.request_from_proto(message)
    assert request.model_version is None and request.id == "7"
    assert request.inputs[0].data.dtype == np.float16
    assert request.parameters == {"scale": 0.5}
    assert request.controls == {"priority": 3}
    assert request.outputs[0].parameters == {"classification": 2}
    assert codec.wants_raw_outputs(message)
    typed = pb.ModelInferRequest(model_name="m")
    typed.inputs.append(_input("FP32", [1], "fp32_contents", [1.0]))
    assert not codec.wants_raw_outputs(typed)


def test_response_is_all_raw_or_all_typed() -> None:
    response = InferResponse(
        "m",
        "1",
        "id",
        [
            Tensor("a", "INT32", np.array([1, 2], dtype=np.int32)),
            Tensor("b", "BYTES", np.array([b"x"], dtype=object)),
        ],
        {"flag": True},
    )
    typed = codec.response_to_proto(response, raw=False)
    assert not typed.raw_output_contents
    assert list(typed.outputs[0].contents.int_contents) == [1, 2]
    assert typed.parameters["flag"].bool_param
    raw = codec.response_to_proto(response, raw=True)
    assert raw.raw_output_contents[0] == np.array([1, 2], "<i4").tobytes()
    assert raw.raw_output_contents[1] == b"\x01\x00\x00\x00x"
    half = InferResponse("m", "1", "", [Tensor("h", "FP16", np.array([1.0], np.float16))])
    assert codec.response_to_proto(half, raw=False).raw_output_contents  # FP16 has no typed field


def test_parameters_to_proto_kinds() -> None:
    target = pb.ModelInferResponse().parameters
    codec.parameters_to_proto(
        {"b": True, "i": -3, "u": 2**64 - 1, "f": 1.5, "s": "x", "n": None}, target
    )
    assert codec.parameters_from_proto(target) == {
        "b": True,
        "i": -3,
        "u": 2**64 - 1,
        "f": 1.5,
        "s": "x",
    }


class _Batched(Model):
    def load(self) -> None:
        self.inputs = [TensorSpec("x", "BYTES", (-1, 3))]
        self.outputs = [TensorSpec("y", "FP32", (-1,))]


def test_model_config_leaves_out_the_batch_dimension_when_batching() -> None:
    settings = ModelSettings(name="m", max_batch_size=8, batch_delay_ms=2.0)
    model = _Batched(settings)
    model.load()
    config = model_config_to_json(model, settings)
    assert config["max_batch_size"] == 8
    assert config["input"][0]["dims"] == [3] and config["input"][0]["data_type"] == "TYPE_STRING"
    assert config["output"][0]["dims"] == []
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 2000
    unbatched = ModelSettings(name="m")
    assert model_config_to_json(model, unbatched)["input"][0]["dims"] == [-1, 3]
    assert codec.model_config_to_proto(config).config.input[0].dims == [3]


def test_omi_default_adapter_reads_json_and_npy() -> None:
    specs = (TensorSpec("input-0", "FP32", (-1, 2)),)
    buffer = io.BytesIO()
    np.save(buffer, np.array([[1, 2]], dtype=np.float32))
    for value in (b"[1, 2]", b"[[1, 2]]", buffer.getvalue()):
        request = omi_codec.request_from_item("m", "1", {"input": value}, specs)
        assert request.inputs[0].name == "input-0" and request.cast_inputs
        assert np.asarray(request.inputs[0].data).reshape(-1).tolist() == [1, 2]
    with pytest.raises(InvalidInput, match="no 'input' key"):
        omi_codec.request_from_item("m", "1", {"a": b"1", "b": b"2"}, specs)
    with pytest.raises(InvalidInput, match="neither JSON"):
        omi_codec.request_from_item("m", "1", {"input": b"\xff"}, specs)
    item = omi_codec.item_from_response(
        InferResponse("m", "1", "", [Tensor("y", "FP32", np.array([[0.5, 1.0]], np.float32))])
    )
    assert item.success and orjson.loads(item.output["results.json"]) == {"y": [[0.5, 1.0]]}


def test_omi_process_results_must_be_bytes() -> None:
    assert omi_codec.output_item({"results.json": b"{}"}).success
    with pytest.raises(InvalidInput, match="not bytes"):
        omi_codec.output_item({"results.json": "{}"})
    with pytest.raises(InvalidInput, match="not a dict"):
        omi_codec.output_item([b"x"])
