"""Tensor data in and out of numpy: JSON `data` lists and length-prefixed BYTES buffers.

Numeric data never goes through a Python loop: `np.asarray` reads JSON lists, orjson writes arrays
back. BYTES elements are Python objects by nature, so they are handled one by one, through numpy's
ufunc machinery where that helps.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from array import array as packed_array
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from app.codec.datatypes import dtype_from_datatype
from app.codec.json_numbers import JsonNumbers
from app.errors import InvalidInput

_LENGTH = struct.Struct("<I")  # BYTES elements are prefixed by a little-endian uint32 length
_INT_KINDS = "iu"
_NUMERIC_KINDS = "biuf"
_MAX_DIMS = 32  # numpy's own limit (64 since numpy 2), and more than any model takes
#: Elements whose bytes (8 at most per element) numpy can still address.
_MAX_ELEMENTS = np.iinfo(np.intp).max // 16


def check_shape(name: str, shape: Any) -> tuple[int, ...]:
    """Validate a request shape: a list of non-negative integers (-1 only appears in metadata)."""
    if not isinstance(shape, list | tuple) or not all(
        isinstance(dim, int) and not isinstance(dim, bool) for dim in shape
    ):
        raise InvalidInput(f"input '{name}': shape must be a list of integers, got {shape!r}")
    if any(dim < 0 for dim in shape):
        raise InvalidInput(f"input '{name}': shape {list(shape)} has a negative dimension")
    # numpy refuses these even for an empty tensor ([0, 2, 2**62]: "array is too big"), and
    # a shape past them could never be filled anyway; found by tests/e2e/test_grpc_fuzz.py.
    if len(shape) > _MAX_DIMS:
        raise InvalidInput(
            f"input '{name}': shape has {len(shape)} dimensions, at most {_MAX_DIMS}"
        )
    if math.prod(dim for dim in shape if dim) > _MAX_ELEMENTS:
        raise InvalidInput(f"input '{name}': shape {list(shape)} has too many elements")
    return tuple(shape)


def element_count(shape: Sequence[int]) -> int:
    """Elements in a tensor of `shape`, in Python integers so huge shapes cannot overflow."""
    return math.prod(shape)


def _size_error(name: str, shape: tuple[int, ...], got: int) -> InvalidInput:
    return InvalidInput(
        f"input '{name}': shape {list(shape)} needs {element_count(shape)} elements, data has {got}"
    )


def ndarray_from_json(
    name: str, datatype: str, shape: tuple[int, ...], data: Any, content_type: str | None = None
) -> np.ndarray:
    """Read a JSON `data` field (flat or nested, row-major) into an array of `shape`.

    Raises `InvalidInput` when the values do not fit the datatype or their count does not match
    the shape. `content_type` follows MLServer's convention for BYTES (`base64`, `str`).
    `JsonNumbers` (a float tensor's flat `data`, read by `app.codec.json_numbers`) is ready.
    """
    dtype = dtype_from_datatype(datatype)
    if isinstance(data, JsonNumbers) and data.array.dtype == dtype:
        array = data.array
        if array.size != element_count(shape):
            raise _size_error(name, shape, array.size)
        return array.reshape(shape)
    if not isinstance(data, list):
        raise InvalidInput(f"input '{name}': data must be a list, got {type(data).__name__}")
    if datatype == "BYTES":
        array = _bytes_from_json(name, data, content_type)
    else:
        array = _numeric_from_json(name, datatype, dtype, data)
    if array.size != element_count(shape):
        raise _size_error(name, shape, array.size)
    return array.reshape(shape)


#: The `array` module's type codes of the float widths JSON numbers are packed into.
_ARRAY_CODES = {4: "f", 8: "d"}


def _numeric_from_json(name: str, datatype: str, dtype: np.dtype, data: list[Any]) -> np.ndarray:
    if dtype.kind == "f" and data and type(data[0]) is float:
        # A flat list of JSON numbers (what tritonclient and perf_analyzer send): the array
        # module converts it in one C loop, a third faster than numpy's element-type discovery
        # (bench/, W3 and W4). The values are the same: both round each double to the dtype.
        # Anything else (null, nested rows, strings, huge ints) raises here and goes below.
        try:
            packed = packed_array(_ARRAY_CODES[dtype.itemsize], data)
        except (TypeError, OverflowError, KeyError):
            pass
        else:
            return np.frombuffer(packed, dtype=np.dtype(f"={packed.typecode}")).astype(
                dtype, copy=False
            )
    try:
        array = np.asarray(data)
    except (ValueError, TypeError):
        raise InvalidInput(
            f"input '{name}': data is not a regular array of {datatype} values"
        ) from None
    if array.size == 0:
        return array.astype(dtype)
    kind = array.dtype.kind
    if kind == "O" and dtype.kind == "f":
        # MLServer and orjson write NaN as null: read null back as NaN.
        try:
            array = np.asarray(data, dtype=dtype)
        except (ValueError, TypeError):
            pass
        except OverflowError:  # an integer beyond any float (orjson stops those at 64 bits)
            raise InvalidInput(f"input '{name}': a value is out of range for {datatype}") from None
        else:
            return array
    if datatype == "BOOL":
        if kind != "b":
            raise InvalidInput(f"input '{name}': BOOL data must be true or false")
        return array
    if kind not in _NUMERIC_KINDS:
        raise InvalidInput(f"input '{name}': data is not a regular array of {datatype} values")
    if dtype.kind in _INT_KINDS:
        if kind == "f":
            # numpy infers float64 for ints past int64 mixed with smaller ones ([0, 2**64-1]):
            # only then look at the Python objects, so the common path stays vectorised.
            return _wide_integers(name, datatype, dtype, data)
        info = np.iinfo(dtype)
        if kind != "b" and (array.min() < info.min or array.max() > info.max):
            raise InvalidInput(f"input '{name}': a value is out of range for {datatype}")
    return array.astype(dtype, copy=False)


def _wide_integers(name: str, datatype: str, dtype: np.dtype, data: list[Any]) -> np.ndarray:
    objects = np.asarray(data, dtype=object)
    if not all(type(value) is int for value in objects.flat):
        raise InvalidInput(f"input '{name}': {datatype} data must be integers")
    try:
        return objects.astype(dtype)
    except (OverflowError, ValueError):
        raise InvalidInput(f"input '{name}': a value is out of range for {datatype}") from None


def _encoder(content_type: str | None) -> Callable[[Any], bytes]:
    if content_type == "base64":

        def encode(value: Any) -> bytes:
            if not isinstance(value, str):
                raise TypeError
            return base64.b64decode(value, validate=True)

        return encode

    def encode_text(value: Any) -> bytes:
        if not isinstance(value, str):
            raise TypeError
        return value.encode("utf-8")

    return encode_text


def _bytes_from_json(name: str, data: list[Any], content_type: str | None) -> np.ndarray:
    try:
        objects = np.asarray(data, dtype=object)
        encoded: np.ndarray = np.frompyfunc(_encoder(content_type), 1, 1)(objects)
        return encoded.astype(object, copy=False)
    except (TypeError, ValueError, binascii.Error):
        what = "base64 strings" if content_type == "base64" else "strings"
        raise InvalidInput(
            f"input '{name}': BYTES data must be a regular array of {what}"
        ) from None


def ndarray_to_json(name: str, array: np.ndarray, datatype: str) -> Any:
    """The flat JSON `data` of an output: the array itself for orjson, or strings for BYTES.

    Numeric arrays are handed to orjson (OPT_SERIALIZE_NUMPY) rather than `tolist()`, which
    builds a Python object per element.
    """
    flat = np.ascontiguousarray(array).reshape(-1)
    if datatype != "BYTES":
        if flat.dtype.byteorder == ">":
            flat = flat.astype(flat.dtype.newbyteorder("="))
        return flat
    try:
        return np.frompyfunc(_decode_text, 1, 1)(flat).tolist() if flat.size else []
    except UnicodeDecodeError:
        raise InvalidInput(
            f"output '{name}' holds bytes that are not UTF-8; ask for it as binary data"
        ) from None


def _decode_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8")
    return str(value)


def as_bytes_array(array: np.ndarray) -> np.ndarray:
    """An object array of `bytes` from any string-like array (str is UTF-8 encoded)."""
    if array.dtype.kind == "S":
        return array.astype(object)
    encoded: np.ndarray = np.frompyfunc(_to_bytes, 1, 1)(array)
    return encoded.astype(object, copy=False)


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


def serialize_bytes_tensor(array: np.ndarray) -> bytes:
    """BYTES elements as the wire has them: uint32 little-endian length, then the bytes."""
    flat: Iterable[bytes] = (
        as_bytes_array(np.asarray(array, dtype=object).reshape(-1)) if array.size else ()
    )
    parts: list[bytes] = []
    for item in flat:
        parts.append(_LENGTH.pack(len(item)))
        parts.append(item)
    return b"".join(parts)


def deserialize_bytes_tensor(
    name: str, buffer: bytes | memoryview, shape: tuple[int, ...]
) -> np.ndarray:
    """Read `prod(shape)` length-prefixed elements; every length is checked before it is read.

    Raises `InvalidInput` when a prefix runs past the buffer, or the elements do not end exactly
    at the end of the buffer.
    """
    view = memoryview(buffer).cast("B")
    count = element_count(shape)
    end = len(view)
    # Every element starts with its 4-byte length, so a buffer too short for `count` of them
    # is refused before an array of `count` is made: BYTES of shape [2, 2**31] with no data
    # is a 400, not 32 GiB (found by `make soak`'s fuzz). Walking its lengths without keeping
    # the elements finds where it ends, for the same message as below.
    items: np.ndarray | None = np.empty(count, dtype=object) if count * 4 <= end else None
    offset = 0
    for index in range(count):
        if offset + 4 > end:
            raise InvalidInput(f"input '{name}': BYTES data ends after {index} of {count} elements")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInput(
                f"input '{name}': BYTES element {index} has length {length}, "
                f"past the end of its {end}-byte buffer"
            )
        if items is not None:
            items[index] = bytes(view[offset : offset + length])
        offset += length
    if offset != end or items is None:  # items is None only where the data ran out above
        raise InvalidInput(
            f"input '{name}': {end - offset} bytes left over after {count} BYTES elements"
        )
    return items.reshape(shape)


def ndarray_from_buffer(
    name: str, datatype: str, shape: tuple[int, ...], buffer: bytes | memoryview
) -> np.ndarray:
    """Zero-copy view of raw little-endian tensor bytes (binary extension, gRPC raw contents).

    Raises `InvalidInput` unless the buffer holds exactly `prod(shape)` elements.
    """
    if datatype == "BYTES":
        return deserialize_bytes_tensor(name, buffer, shape)
    dtype = dtype_from_datatype(datatype)
    expected = element_count(shape) * dtype.itemsize
    if len(buffer) != expected:
        raise InvalidInput(
            f"input '{name}': {datatype} shape {list(shape)} needs {expected} bytes, "
            f"got {len(buffer)}"
        )
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def ndarray_to_buffer(array: np.ndarray, datatype: str) -> bytes | memoryview:
    """Raw little-endian bytes of an output, without a copy when the array allows it."""
    if datatype == "BYTES":
        return serialize_bytes_tensor(array)
    dtype = dtype_from_datatype(datatype)
    if array.size == 0:
        return b""  # an empty memoryview cannot be cast to bytes
    contiguous = np.ascontiguousarray(array, dtype=dtype)
    return memoryview(contiguous).cast("B")  # type: ignore[arg-type]  # ndarray is a buffer
