"""The binary tensor data extension in-process: the codec, then the infer view (Flask client)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pytest
from flask.testing import FlaskClient
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor, triton_to_np_dtype

from app.codec.binary import HEADER_LENGTH, OutputForm, input_tensors, response_body, split_body
from app.errors import InvalidInput
from app.types import InferRequest, InferResponse, RequestedOutput, Tensor

ECHO = "/v2/models/echo/infer"

ARRAYS: dict[str, np.ndarray] = {
    "BOOL": np.array([[True, False, True]]),
    "UINT8": np.array([0, 7, 255], dtype=np.uint8),
    "UINT16": np.array([0, 65535], dtype=np.uint16),
    "UINT32": np.array([[0], [2**32 - 1]], dtype=np.uint32),
    "UINT64": np.array([0, 2**64 - 1], dtype=np.uint64),
    "INT8": np.array([-128, 127], dtype=np.int8),
    "INT16": np.array([-(2**15), 2**15 - 1], dtype=np.int16),
    "INT32": np.array([-(2**31), 2**31 - 1], dtype=np.int32),
    "INT64": np.array([-(2**63), 2**63 - 1], dtype=np.int64),
    "FP16": np.array([0.5, -2.25, 65504], dtype=np.float16),
    "FP32": np.array([[1.5, -3.25e10], [np.inf, -0.0]], dtype=np.float32),
    "FP64": np.array([1e-300, np.nan], dtype=np.float64),
    "BYTES": np.array([b"hello", "h\u00e9llo".encode(), b"", b"\xff\x00"], dtype=object),
}


def raw(array: np.ndarray, datatype: str) -> bytes:
    """What a client puts on the wire for `array` (tritonclient's own BYTES serializer)."""
    if datatype == "BYTES":
        serialized = serialize_byte_tensor(array)
        return serialized.item() if serialized.size else b""
    return array.astype(array.dtype.newbyteorder("<")).tobytes()


def binary_request(
    inputs: Sequence[tuple[str, str, np.ndarray]],
    json_inputs: Mapping[str, Any] | None = None,
    **envelope: Any,
) -> tuple[bytes, dict[str, str]]:
    """A binary-extension body and its headers: every input in `inputs` sent raw."""
    items: list[dict[str, Any]] = []
    sections: list[bytes] = []
    for name, datatype, array in inputs:
        section = raw(array, datatype)
        items.append(
            {
                "name": name,
                "datatype": datatype,
                "shape": list(array.shape),
                "parameters": {"binary_data_size": len(section)},
            }
        )
        sections.append(section)
    items.extend(json_inputs.values() if json_inputs else ())
    header = orjson.dumps({"inputs": items, **envelope})
    return header + b"".join(sections), {HEADER_LENGTH: str(len(header))}


def parse_response(body: bytes, header_length: str | None) -> tuple[dict, dict[str, np.ndarray]]:
    """Split a response as tritonclient does and decode each binary output."""
    if header_length is None:
        return orjson.loads(body), {}
    split = int(header_length)
    document, rest = orjson.loads(body[:split]), body[split:]
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for output in document["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is None:
            continue
        chunk = rest[offset : offset + size]
        offset += size
        if output["datatype"] == "BYTES":
            array = deserialize_bytes_tensor(chunk) if size else np.empty(0, dtype=object)
        else:
            array = np.frombuffer(chunk, dtype=triton_to_np_dtype(output["datatype"]))
        arrays[output["name"]] = array.reshape(output["shape"])
    assert offset == len(rest)
    return document, arrays


# -- codec ---------------------------------------------------------------------------------------


def test_split_body_gives_views_of_the_body() -> None:
    body = b'{"inputs":[]}' + b"\x01\x02"
    head, rest = split_body(body, "13")
    assert bytes(head) == b'{"inputs":[]}' and bytes(rest) == b"\x01\x02"
    assert rest.obj is body  # a view, not a copy


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("abc", "must be a byte count"),
        ("-1", "must be a byte count"),
        ("1.5", "must be a byte count"),
        ("", "must be a byte count"),
        ("\u0661\u0662", "must be a byte count"),  # Arabic-Indic digits are not a length
        ("9" * 40, "must be a byte count"),
        ("0", "raw binary requests are not supported"),
        ("100", "has only 15 bytes"),
    ],
)
def test_split_body_refuses_bad_header_lengths(value: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        split_body(b'{"inputs":[]}\x01\x02', value)


def test_binary_inputs_are_zero_copy_little_endian_views() -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    body, headers = binary_request([("x", "FP32", array)])
    _, rest = split_body(body, headers[HEADER_LENGTH])
    item = orjson.loads(body[: int(headers[HEADER_LENGTH])])["inputs"]
    (tensor,) = input_tensors(item, rest)
    assert tensor.data.dtype.str == "<f4" and tensor.data.shape == (3, 4)
    assert np.shares_memory(tensor.data, np.frombuffer(body, dtype=np.uint8))
    assert np.array_equal(tensor.data, array)
    assert "binary_data_size" not in tensor.parameters


def test_json_and_binary_inputs_mix_in_input_order() -> None:
    a = np.array([1, 2, 3], dtype=np.int32)
    c = np.array([b"x", b"yz"], dtype=object)
    body, headers = binary_request(
        [("a", "INT32", a), ("c", "BYTES", c)],
        {"b": {"name": "b", "datatype": "FP64", "shape": [2], "data": [0.5, 1.5]}},
    )
    split = int(headers[HEADER_LENGTH])
    items = orjson.loads(body[:split])["inputs"]
    items = [items[0], items[2], items[1]]  # JSON input between the two binary ones
    tensors = input_tensors(items, memoryview(body)[split:])
    assert [t.name for t in tensors] == ["a", "b", "c"]
    assert np.array_equal(tensors[0].data, a)
    assert tensors[1].data.tolist() == [0.5, 1.5]
    assert tensors[2].data.tolist() == [b"x", b"yz"]


def test_sizes_are_checked_before_any_tensor_is_read() -> None:
    # The first input is a malformed BYTES section; the second runs past the body. The size
    # error is found first, because nothing is read until every section has been placed.
    items = [
        {"name": "a", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 8}},
        {"name": "b", "datatype": "FP32", "shape": [4], "parameters": {"binary_data_size": 16}},
    ]
    with pytest.raises(InvalidInput, match="input 'b': binary_data_size is 16 but only 0"):
        input_tensors(items, memoryview(b"\xff" * 8))


def test_empty_binary_tensors() -> None:
    items = [
        {"name": "a", "datatype": "FP32", "shape": [0, 3], "parameters": {"binary_data_size": 0}},
        {"name": "b", "datatype": "BYTES", "shape": [0], "parameters": {"binary_data_size": 0}},
    ]
    a, b = input_tensors(items, memoryview(b""))
    assert a.data.shape == (0, 3) and b.data.shape == (0,)


def _response(*outputs: Tensor) -> InferResponse:
    return InferResponse("echo", "1", "id-1", list(outputs))


def test_response_body_writes_binary_outputs_after_the_json_in_order() -> None:
    x = Tensor("x", "FP32", np.arange(6, dtype=np.float32).reshape(2, 3))
    y = Tensor("y", "INT64", np.array([7, 8], dtype=np.int64))
    z = Tensor("z", "BYTES", np.array([b"a", b"\x00\xff"], dtype=object))
    empty = Tensor("e", "FP32", np.empty((0, 2), dtype=np.float32))
    form = OutputForm(default=True, per_output={"y": False})
    body, length = response_body(_response(x, y, z, empty), form)
    assert length is not None
    document, arrays = parse_response(body, str(length))
    assert [o["name"] for o in document["outputs"]] == ["x", "y", "z", "e"]
    assert document["outputs"][1]["data"] == [7, 8] and "y" not in arrays
    assert document["outputs"][0]["parameters"] == {"binary_data_size": 24}
    assert document["outputs"][3]["parameters"] == {"binary_data_size": 0}
    assert np.array_equal(arrays["x"], x.data)
    assert arrays["z"].tolist() == [b"a", b"\x00\xff"]
    assert arrays["e"].shape == (0, 2)


def test_response_without_binary_outputs_is_plain_json() -> None:
    x = Tensor("x", "FP32", np.ones(2, dtype=np.float32))
    body, length = response_body(_response(x), OutputForm())
    assert length is None
    assert orjson.loads(body)["outputs"][0]["data"] == [1.0, 1.0]


def test_output_form_reads_per_output_flags_over_the_default() -> None:
    request = InferRequest(
        "echo",
        None,
        "1",
        [],
        outputs=[RequestedOutput("a", {"binary_data": False}), RequestedOutput("b")],
        controls={"binary_data_output": True},
    )
    form = OutputForm.of(request)
    assert (form.binary("a"), form.binary("b"), form.binary("c")) == (False, True, True)
    assert OutputForm.of(InferRequest("echo", None, "1", [])).binary("a") is False


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_output_form_refuses_flags_that_are_not_booleans(value: object) -> None:
    request = InferRequest(
        "echo", None, "1", [], outputs=[RequestedOutput("a", {"binary_data": value})]
    )
    with pytest.raises(InvalidInput, match="output 'a': 'binary_data' must be true or false"):
        OutputForm.of(request)


# -- the infer view ------------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", list(ARRAYS))
def test_every_datatype_round_trips_in_binary(client: FlaskClient, datatype: str) -> None:
    array = ARRAYS[datatype]
    body, headers = binary_request(
        [("x", datatype, array)], parameters={"binary_data_output": True}
    )
    response = client.post(ECHO, data=body, headers=headers)
    assert response.status_code == 200, response.get_data()
    assert response.mimetype == "application/octet-stream"
    document, arrays = parse_response(response.get_data(), response.headers[HEADER_LENGTH])
    assert document["outputs"][0]["datatype"] == datatype
    if datatype == "BYTES":
        assert arrays["x"].tolist() == array.tolist()
    else:
        np.testing.assert_array_equal(arrays["x"], array)
        assert arrays["x"].dtype == array.dtype


def test_binary_inputs_with_json_outputs_and_the_reverse(client: FlaskClient) -> None:
    array = np.array([[1.5, 2.5]], dtype=np.float32)
    body, headers = binary_request([("x", "FP32", array)])
    answer = client.post(ECHO, data=body, headers=headers)
    assert answer.mimetype == "application/json" and HEADER_LENGTH not in answer.headers
    assert answer.json["outputs"][0]["data"] == [1.5, 2.5]

    json_request = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1.5, 2.5]}],
        "outputs": [{"name": "x", "parameters": {"binary_data": True}}],
    }
    answer = client.post(ECHO, json=json_request)
    _, arrays = parse_response(answer.get_data(), answer.headers[HEADER_LENGTH])
    np.testing.assert_array_equal(arrays["x"], array)


def test_requested_outputs_choose_binary_one_by_one(client: FlaskClient) -> None:
    a = np.array([1, 2], dtype=np.int16)
    b = np.array([b"q"], dtype=object)
    body, headers = binary_request(
        [("a", "INT16", a), ("b", "BYTES", b)],
        outputs=[
            {"name": "b", "parameters": {"binary_data": True}},
            {"name": "a", "parameters": {"binary_data": False}},
        ],
        parameters={"binary_data_output": True},
    )
    response = client.post(ECHO, data=body, headers=headers)
    document, arrays = parse_response(response.get_data(), response.headers[HEADER_LENGTH])
    assert [o["name"] for o in document["outputs"]] == ["b", "a"]
    assert document["outputs"][1]["data"] == [1, 2]
    assert arrays["b"].tolist() == [b"q"]


def test_kserve_style_octet_stream_with_header_is_binary(client: FlaskClient) -> None:
    array = np.array([[1, 2, 3, 4]], dtype=np.float32)
    body, headers = binary_request([("input-0", "FP32", array)], model_name="sum", id="r-1")
    headers["Content-Type"] = "application/octet-stream"
    response = client.post("/v2/models/sum/infer", data=body, headers=headers)
    assert response.status_code == 200
    assert response.json["id"] == "r-1" and response.json["outputs"][0]["data"] == [10.0]


def test_octet_stream_without_the_header_is_json(client: FlaskClient) -> None:
    request = {"inputs": [{"name": "x", "datatype": "INT8", "shape": [1], "data": [3]}]}
    response = client.post(
        ECHO, data=orjson.dumps(request), headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 200 and response.json["outputs"][0]["data"] == [3]


def test_a_bad_output_flag_fails_before_the_model_runs(client: FlaskClient) -> None:
    body, headers = binary_request(
        [("x", "FP32", np.array([-1.0], dtype=np.float32))],
        outputs=[{"name": "y", "parameters": {"binary_data": "yes"}}],
    )
    # The failing model would answer 500 for a negative input; the flag is checked first.
    response = client.post("/v2/models/failing/infer", data=body, headers=headers)
    assert response.status_code == 400
    assert "'binary_data' must be true or false" in response.json["error"]


def test_models_with_declared_inputs_take_binary_tensors(client: FlaskClient) -> None:
    rows = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]], dtype=np.float32)
    body, headers = binary_request([("input-0", "FP32", rows)])
    response = client.post("/v2/models/iris/infer", data=body, headers=headers)
    assert response.status_code == 200
    assert response.json["outputs"][0]["data"] == [1, 1]


def test_infer_dict_answers_in_binary_when_asked(client: FlaskClient) -> None:
    row = {"sepal_length": 6.8, "sepal_width": 2.8, "petal_length": 4.8, "petal_width": 1.4}
    response = client.post(
        "/v2/models/iris/infer_dict",
        json={"inputs": [row], "parameters": {"binary_data_output": True}},
    )
    assert response.status_code == 200
    document, arrays = parse_response(response.get_data(), response.headers[HEADER_LENGTH])
    assert arrays["predictions"].tolist() == [1]
