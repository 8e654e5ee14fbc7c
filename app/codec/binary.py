"""Triton's binary tensor data extension: a JSON header followed by raw tensor bytes (reference §4).

tritonclient's HTTP client sends inputs and asks for outputs this way by default, because JSON
lists cost a Python object per element. Requests are read without copying: every binary input
becomes `np.frombuffer` over a slice of the request body. Every length, offset and size is checked
against the body before the first tensor is read, so a malformed request is a 400 naming the input
and never an out-of-range read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.codec.datatypes import dtype_from_datatype
from app.codec.rest import dumps, output_to_v2, response_envelope, response_to_v2, tensor_from_json
from app.codec.tensors import check_shape, element_count, ndarray_from_buffer, ndarray_to_buffer
from app.errors import InvalidInput
from app.types import InferRequest, InferResponse, Tensor

#: Byte length of the JSON header; required whenever binary data follows it (both directions).
HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_DATA_SIZE = "binary_data_size"

# Triton's shared-memory extension: the tensor lives in a region this server cannot reach.
_SHARED_MEMORY = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")
_BYTES_PREFIX = 4  # every BYTES element carries at least its uint32 length


def split_body(body: bytes | bytearray, header_length: str) -> tuple[memoryview, memoryview]:
    """The JSON header and the binary section of a body, as views (nothing is copied).

    Raises `InvalidInput` unless `header_length` is a positive decimal integer no larger than the
    body. Zero would be Triton's raw request (one headerless tensor), which Modelport does not
    take: no client needs it and the model's metadata would have to guess the shape.
    """
    text = header_length.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise InvalidInput(f"{HEADER_LENGTH} must be a byte count, got {header_length!r}")
    length = int(text)
    if length == 0:
        raise InvalidInput(
            f"{HEADER_LENGTH} is 0: raw binary requests are not supported; "
            "send the JSON header first and give its length"
        )
    if length > len(body):
        raise InvalidInput(
            f"{HEADER_LENGTH} is {length} but the request body has only {len(body)} bytes"
        )
    view = memoryview(body)
    return view[:length], view[length:]


@dataclass(frozen=True, slots=True)
class _Section:
    """Where one binary input's bytes lie in the binary part of the body."""

    start: int
    size: int
    shape: tuple[int, ...]


def input_tensors(items: Sequence[Mapping[str, Any]], binary: memoryview | None) -> list[Tensor]:
    """The request's input tensors: JSON `data` through numpy, binary sections as views.

    `binary` is what follows the JSON header (None when the request had no
    `Inference-Header-Content-Length`). Raises `InvalidInput` naming the input for: both or
    neither of `data` and `binary_data_size`, shared-memory parameters, a size that is not a
    non-negative integer, does not match shape × datatype, or runs past the body, bytes left over
    after the last binary input, and malformed BYTES elements.
    """
    sections = _plan(items, binary)
    tensors: list[Tensor] = []
    for item, section in zip(items, sections, strict=True):
        if section is None:
            tensors.append(tensor_from_json(item))
            continue
        assert binary is not None  # _plan returns sections only for a binary body
        name, datatype = item["name"], item["datatype"]
        view = binary[section.start : section.start + section.size]
        data = ndarray_from_buffer(name, datatype, section.shape, view)
        if datatype == "BOOL" and data.size and data.view(np.uint8).max() > 1:
            raise InvalidInput(f"input '{name}': BOOL bytes must be 0 or 1")
        # binary_data_size describes the wire, not the tensor: the model does not see it.
        parameters = {
            key: value
            for key, value in (item.get("parameters") or {}).items()
            if key != BINARY_DATA_SIZE
        }
        tensors.append(Tensor(name, datatype, data, parameters))
    return tensors


def _plan(items: Sequence[Mapping[str, Any]], binary: memoryview | None) -> list[_Section | None]:
    """Check every input's form and binary size against the body; read nothing yet."""
    sections: list[_Section | None] = []
    offset = 0
    available = len(binary) if binary is not None else 0
    for item in items:
        name = item["name"]
        parameters = item.get("parameters") or {}
        shared = [key for key in _SHARED_MEMORY if key in parameters]
        if shared:
            raise InvalidInput(
                f"input '{name}': shared memory ('{shared[0]}') is not supported; "
                "send the tensor as 'data' or with 'binary_data_size'"
            )
        has_data, has_size = "data" in item, BINARY_DATA_SIZE in parameters
        if has_data and has_size:
            raise InvalidInput(
                f"input '{name}' sets both 'data' and 'binary_data_size' in 'parameters'; "
                "set exactly one"
            )
        if not has_data and not has_size:
            raise InvalidInput(
                f"input '{name}' has no 'data' and no 'binary_data_size' in 'parameters'; "
                "set exactly one"
            )
        if not has_size:
            sections.append(None)
            continue
        size = parameters[BINARY_DATA_SIZE]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput(
                f"input '{name}': binary_data_size must be a non-negative integer, got {size!r}"
            )
        if binary is None:
            raise InvalidInput(
                f"input '{name}' has binary_data_size but the request has no "
                f"{HEADER_LENGTH} header, so no binary data"
            )
        shape = check_shape(name, item["shape"])
        _check_size(name, item["datatype"], shape, size)
        if size > available - offset:
            raise InvalidInput(
                f"input '{name}': binary_data_size is {size} but only {available - offset} "
                "bytes of binary data are left in the request body"
            )
        sections.append(_Section(offset, size, shape))
        offset += size
    if offset != available:
        raise InvalidInput(
            f"{available - offset} bytes of binary data are left over after the last binary "
            f"input (the binary_data_size values add up to {offset})"
        )
    return sections


def _check_size(name: str, datatype: str, shape: tuple[int, ...], size: int) -> None:
    try:
        dtype = dtype_from_datatype(datatype)
    except InvalidInput as exc:
        raise InvalidInput(f"input '{name}': {exc}") from None
    count = element_count(shape)
    if datatype == "BYTES":
        if size < _BYTES_PREFIX * count:
            raise InvalidInput(
                f"input '{name}': binary_data_size {size} is too small for {count} BYTES "
                f"elements (each has a {_BYTES_PREFIX}-byte length prefix)"
            )
        return
    expected = count * dtype.itemsize
    if size != expected:
        raise InvalidInput(
            f"input '{name}': binary_data_size is {size} but {datatype} shape {list(shape)} "
            f"needs {expected} bytes"
        )


@dataclass(frozen=True, slots=True)
class OutputForm:
    """Which outputs go back as raw bytes: per-output `binary_data`, else `binary_data_output`."""

    default: bool = False
    per_output: Mapping[str, bool] = field(default_factory=dict)

    @classmethod
    def of(cls, request: InferRequest) -> OutputForm:
        """Read the request's flags before inference, so a bad one fails before the model runs.

        Raises `InvalidInput` when a flag is not a JSON boolean, or an output asks for shared
        memory.
        """
        for output in request.outputs or ():
            shared = [key for key in _SHARED_MEMORY if key in output.parameters]
            if shared:
                raise InvalidInput(
                    f"output '{output.name}': shared memory ('{shared[0]}') is not supported; "
                    "ask for the output as JSON or with 'binary_data'"
                )
        default = _flag(request.controls, "binary_data_output", "request parameter")
        per_output = {
            output.name: _flag(output.parameters, "binary_data", f"output '{output.name}'")
            for output in request.outputs or ()
            if "binary_data" in output.parameters
        }
        return cls(default, per_output)

    def binary(self, name: str) -> bool:
        """Whether output `name` is sent as raw bytes."""
        return self.per_output.get(name, self.default)


def _flag(parameters: Mapping[str, Any], key: str, where: str) -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{where}: '{key}' must be true or false, got {value!r}")
    return value


def response_body(response: InferResponse, form: OutputForm) -> tuple[bytes, int | None]:
    """The response body and its JSON header length (None when the body is plain JSON).

    Binary outputs carry `binary_data_size` in their parameters and no `data`; their bytes follow
    the JSON in output order, each written once into the body. A body without binary outputs is
    exactly the JSON answer, with no header length, as Triton answers.
    """
    if not any(form.binary(output.name) for output in response.outputs):
        return response_to_v2(response), None
    outputs: list[dict[str, Any]] = []
    buffers: list[bytes | memoryview] = []
    for output in response.outputs:
        if not form.binary(output.name):
            outputs.append(output_to_v2(output))
            continue
        # A size-0 output appends nothing (and a memoryview cannot be cast when empty).
        buffer = ndarray_to_buffer(output.data, output.datatype) if output.data.size else b""
        outputs.append(
            {
                "name": output.name,
                "datatype": output.datatype,
                "shape": list(output.shape),
                "parameters": {**output.parameters, BINARY_DATA_SIZE: len(buffer)},
            }
        )
        buffers.append(buffer)
    header = dumps(response_envelope(response, outputs))
    return b"".join([header, *buffers]), len(header)
