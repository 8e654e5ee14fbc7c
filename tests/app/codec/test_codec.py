"""Wire <-> numpy conversion, tested once for every front-end."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from app.codec.datatypes import DATATYPE_TO_DTYPE, datatype_from_dtype, dtype_from_datatype
from app.codec.rest import tensor_from_records, tensor_from_rows
from app.codec.tensors import (
    check_shape,
    deserialize_bytes_tensor,
    ndarray_from_buffer,
    ndarray_from_json,
    ndarray_to_buffer,
    ndarray_to_json,
    serialize_bytes_tensor,
)
from app.errors import InvalidInput

NUMERIC = [name for name in DATATYPE_TO_DTYPE if name not in ("BYTES", "BOOL")]


@pytest.mark.parametrize("datatype", sorted(DATATYPE_TO_DTYPE))
def test_datatype_table_round_trips(datatype: str) -> None:
    assert datatype_from_dtype(dtype_from_datatype(datatype)) == datatype


def test_native_and_string_dtypes_map_to_oip_names() -> None:
    assert datatype_from_dtype(np.dtype("float32")) == "FP32"
    assert datatype_from_dtype(np.dtype(">i8")) == "INT64"
    assert datatype_from_dtype(np.dtype("U5")) == "BYTES"
    assert datatype_from_dtype(np.dtype("S3")) == "BYTES"


@pytest.mark.parametrize("name", ["FP8", "fp32", "", "BF16"])
def test_unknown_datatypes_are_invalid_input(name: str) -> None:
    with pytest.raises(InvalidInput, match="datatype"):
        dtype_from_datatype(name)


@pytest.mark.parametrize("datatype", NUMERIC)
def test_numeric_json_flat_and_nested_give_the_same_array(datatype: str) -> None:
    flat = ndarray_from_json("x", datatype, (2, 2), [1, 2, 3, 4])
    nested = ndarray_from_json("x", datatype, (2, 2), [[1, 2], [3, 4]])
    assert flat.dtype == DATATYPE_TO_DTYPE[datatype]
    np.testing.assert_array_equal(flat, nested)
    assert flat.shape == (2, 2)


def test_bool_and_bytes_json() -> None:
    assert ndarray_from_json("b", "BOOL", (2,), [True, False]).tolist() == [True, False]
    text = ndarray_from_json("s", "BYTES", (1, 2), [["a", "é"]])
    assert text.dtype == object and text.tolist() == [[b"a", "é".encode()]]
    b64 = ndarray_from_json("s", "BYTES", (1,), ["AAE="], content_type="base64")
    assert b64.tolist() == [b"\x00\x01"]


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
@pytest.mark.parametrize(
    "data",
    [[0.1, 2, True, 2**60, -0.0, 3.4e38, 1e-45], [1.5] * 1000, [2.5, 1.7e308]],
    ids=["mixed", "long", "huge"],
)
def test_flat_float_lists_read_as_numpy_reads_them(datatype: str, data: list) -> None:
    # Flat lists starting with a float take the `array` module's path; numpy is the reference.
    dtype = dtype_from_datatype(datatype)
    with np.errstate(over="ignore"):
        want = np.asarray(data).astype(dtype)
    got = ndarray_from_json("x", datatype, (len(data),), data)
    assert got.dtype == dtype and got.flags.writeable
    np.testing.assert_array_equal(got, want)


def test_null_reads_as_nan_for_floats() -> None:
    array = ndarray_from_json("x", "FP32", (2,), [None, 1.5])
    assert np.isnan(array[0]) and array[1] == 1.5


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "message"),
    [
        ("FP32", (2, 2), [1, 2, 3], "needs 4 elements, data has 3"),
        ("FP32", (2,), [[1, 2], [3]], "not a regular array"),
        ("FP32", (1,), ["a"], "not a regular array"),
        ("INT32", (1,), [1.5], "must be integers"),
        ("UINT8", (1,), [256], "out of range"),
        ("INT8", (1,), [-129], "out of range"),
        ("BOOL", (1,), [1], "true or false"),
        ("BYTES", (1,), [1], "strings"),
        ("BYTES", (1,), ["!!"], "strings"),
        ("FP32", (1,), 5, "must be a list"),
        ("FP32", (10**9, 10**9), [1], "needs 1000000000000000000 elements"),
        ("FP32", (2,), [1.5, 10**400], "out of range"),
        ("FP64", (2,), [1.5, "2"], "not a regular array"),
        ("FP32", (2,), [1.5, [2.5]], "not a regular array"),
    ],
)
def test_bad_json_data_is_named(datatype: str, shape: tuple, data: object, message: str) -> None:
    content_type = "base64" if data == ["!!"] else None
    with pytest.raises(InvalidInput, match=message) as info:
        ndarray_from_json("in0", datatype, shape, data, content_type)
    assert "'in0'" in str(info.value)


@pytest.mark.parametrize("shape", [[-1, 4], [1.5], "x", [True]])
def test_request_shapes_are_non_negative_integers(shape: object) -> None:
    with pytest.raises(InvalidInput, match="shape"):
        check_shape("x", shape)


def test_json_output_is_flat_and_serializable() -> None:
    for datatype in NUMERIC + ["BOOL"]:
        array = np.arange(6).reshape(2, 3).astype(DATATYPE_TO_DTYPE[datatype])
        data = orjson.loads(
            orjson.dumps(ndarray_to_json("y", array, datatype), option=orjson.OPT_SERIALIZE_NUMPY)
        )
        assert data == array.reshape(-1).tolist()
    assert ndarray_to_json("y", np.array([b"a", b"b"], dtype=object), "BYTES") == ["a", "b"]
    with pytest.raises(InvalidInput, match="binary"):
        ndarray_to_json("y", np.array([b"\xff"], dtype=object), "BYTES")


def test_bytes_tensor_round_trip_is_length_prefixed_little_endian() -> None:
    array = np.array([[b"ab", b""], [b"\x00\xff", b"xyz"]], dtype=object)
    buffer = serialize_bytes_tensor(array)
    assert buffer[:6] == b"\x02\x00\x00\x00ab"
    assert deserialize_bytes_tensor("s", buffer, (2, 2)).tolist() == array.tolist()


@pytest.mark.parametrize(
    ("buffer", "shape", "message"),
    [
        (b"\x05\x00\x00\x00ab", (1,), "past the end"),
        (b"\x01\x00", (1,), "ends after 0 of 1"),
        (b"\x01\x00\x00\x00ab", (1,), "left over"),
        (b"\x00\x00\x00\x00", (2,), "ends after 1 of 2"),
    ],
)
def test_bad_bytes_buffers_are_caught_before_reading(
    buffer: bytes, shape: tuple, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        deserialize_bytes_tensor("s", buffer, shape)


@pytest.mark.parametrize("datatype", NUMERIC + ["BOOL"])
def test_raw_buffers_round_trip_without_copy(datatype: str) -> None:
    array = np.arange(6).reshape(3, 2).astype(DATATYPE_TO_DTYPE[datatype])
    raw = bytes(ndarray_to_buffer(array, datatype))
    back = ndarray_from_buffer("x", datatype, (3, 2), raw)
    np.testing.assert_array_equal(back, array)
    assert not back.flags.owndata  # a view on the request bytes


def test_empty_tensors_have_empty_buffers() -> None:
    assert bytes(ndarray_to_buffer(np.zeros((0, 3), dtype=np.float32), "FP32")) == b""
    assert ndarray_from_buffer("x", "FP32", (0, 3), b"").shape == (0, 3)


def test_raw_buffer_size_must_match_shape() -> None:
    with pytest.raises(InvalidInput, match="needs 16 bytes, got 12"):
        ndarray_from_buffer("x", "FP32", (2, 2), b"\x00" * 12)


def test_plain_rows_and_records() -> None:
    rows = tensor_from_rows([[1, 2], [3, 4]])
    assert rows.datatype == "INT64" and rows.shape == (2, 2)
    strings = tensor_from_rows(["a", "b"])
    assert strings.datatype == "BYTES"
    with pytest.raises(InvalidInput, match="equal length"):
        tensor_from_rows([[1, 2], [3]])
    records = tensor_from_records([{"b": 2, "a": 1}, {"a": 3, "b": 4}], ["a", "b"])
    assert records.data.tolist() == [[1, 2], [3, 4]]
    assert tensor_from_records({"a": 1, "b": 2}, ["a", "b"]).shape == (1, 2)
    with pytest.raises(InvalidInput, match="row 1 has no feature 'b'"):
        tensor_from_records([{"a": 1, "b": 2}, {"a": 1}], ["a", "b"])


@pytest.mark.parametrize(
    "shape", [[0, 2, 2**62], [2**40, 2**40], [1] * 33], ids=["empty-huge", "huge", "too-many-dims"]
)
def test_shapes_numpy_cannot_hold_are_invalid_input(shape: list[int]) -> None:
    """Found by the gRPC fuzz (tests/e2e/test_grpc_fuzz.py): an empty tensor of shape
    [0, 2, 2**62] made numpy raise "array is too big", a 500."""
    with pytest.raises(InvalidInput, match="too many elements|dimensions"):
        check_shape("x", shape)


def test_bytes_elements_that_cannot_fit_are_refused_before_allocating() -> None:
    """Found by `make soak`'s gRPC fuzz: BYTES of shape [2, 2**31] with no data made an object
    array of 2**32 elements before the first length was read."""
    with pytest.raises(InvalidInput, match="ends after 0 of 4294967296 elements"):
        deserialize_bytes_tensor("x", b"", (2, 2**31))
