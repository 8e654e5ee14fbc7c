"""OIP gRPC messages (Triton's `grpc_service.proto`) to and from the internal types.

Typed `contents` are read and written by numpy on the whole repeated field (`np.fromiter`,
`ndarray.tolist`), never by a Python loop per element, except BYTES whose elements are objects
anyway. Raw contents are viewed in place with `np.frombuffer` (`ndarray_from_buffer`). Narrow
integers travel widened (INT8/16 in `int_contents`, UINT8/16 in `uint_contents`) and are
range-checked before they are narrowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from google.protobuf import json_format

from app.codec.datatypes import dtype_from_datatype
from app.codec.parameters import split_parameters
from app.codec.statistics import stats_to_json
from app.codec.tensors import (
    as_bytes_array,
    check_shape,
    element_count,
    ndarray_from_buffer,
    ndarray_to_buffer,
)
from app.errors import InvalidInput
from app.types import InferRequest, InferResponse, ModelMetadata, RequestedOutput, Tensor
from protos import grpc_service_pb2 as pb
from protos import model_config_pb2

if TYPE_CHECKING:
    from app.entries import ModelEntry
    from app.stats import ModelStats
    from app.types import ServerMetadata

#: The typed contents field of each datatype (reference §3); FP16 and BF16 have none.
CONTENTS_FIELD: dict[str, str] = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
#: The numpy dtype each repeated field holds on the wire.
_FIELD_DTYPE: dict[str, np.dtype] = {
    "bool_contents": np.dtype("?"),
    "int_contents": np.dtype("<i4"),
    "int64_contents": np.dtype("<i8"),
    "uint_contents": np.dtype("<u4"),
    "uint64_contents": np.dtype("<u8"),
    "fp32_contents": np.dtype("<f4"),
    "fp64_contents": np.dtype("<f8"),
    "bytes_contents": np.dtype(object),
}
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


# -- parameters -----------------------------------------------------------------------------


def parameters_from_proto(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A `map<string, InferParameter>` (or `ModelRepositoryParameter`) as plain values.

    All five InferParameter kinds are read: tritonclient sends `priority` as uint64 and Python
    floats as double (reference §7.3).
    """
    result: dict[str, Any] = {}
    for key, value in parameters.items():
        kind = value.WhichOneof("parameter_choice")
        result[key] = getattr(value, kind) if kind else None
    return result


def parameters_to_proto(parameters: Mapping[str, Any], target: MutableMapping[str, Any]) -> None:
    """Write plain values into a `map<string, InferParameter>`; others are sent as text."""
    for key, value in parameters.items():
        if value is None:
            continue
        param = target[key]
        if isinstance(value, bool | np.bool_):
            param.bool_param = bool(value)
        elif isinstance(value, int | np.integer):
            number = int(value)
            if _INT64_MIN <= number <= _INT64_MAX:
                param.int64_param = number
            elif 0 <= number <= _UINT64_MAX:
                param.uint64_param = number
            else:
                param.string_param = str(number)
        elif isinstance(value, float | np.floating):
            param.double_param = float(value)
        elif isinstance(value, bytes):
            param.string_param = value.decode("utf-8", "replace")
        else:
            param.string_param = str(value)


# -- tensors --------------------------------------------------------------------------------


def ndarray_from_proto(
    tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | memoryview | None = None
) -> np.ndarray:
    """The array of one input: from `raw` (its raw_input_contents entry) or typed `contents`.

    Raises `InvalidInput` for an unknown datatype, a bad shape, data of the wrong size, or
    typed data in a field that does not match the datatype.
    """
    name, datatype = tensor.name, tensor.datatype
    dtype = dtype_from_datatype(datatype)
    shape = check_shape(name, list(tensor.shape))
    if raw is not None:
        return ndarray_from_buffer(name, datatype, shape, raw)
    present = [field.name for field, _ in tensor.contents.ListFields()]
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        if present or element_count(shape):
            raise InvalidInput(
                f"input '{name}': {datatype} has no typed contents field; "
                "send it in raw_input_contents"
            )
        return np.empty(shape, dtype=dtype)
    wrong = [other for other in present if other != field]
    if wrong:
        raise InvalidInput(
            f"input '{name}': unexpected contents.{wrong[0]} for datatype {datatype}, "
            f"expected contents.{field}"
        )
    values = getattr(tensor.contents, field)
    count = element_count(shape)
    if len(values) != count:
        if not present:
            raise InvalidInput(f"input '{name}': no data (neither contents nor raw contents)")
        raise InvalidInput(
            f"input '{name}': shape {list(shape)} needs {count} elements, "
            f"contents.{field} has {len(values)}"
        )
    if datatype == "BYTES":
        array = np.empty(count, dtype=object)
        array[:] = list(values)
        return array.reshape(shape)
    # fromiter with a known count fills a preallocated array in C: twice as fast as asarray.
    array = np.fromiter(values, dtype=_FIELD_DTYPE[field], count=count)
    if array.dtype != dtype:
        info = np.iinfo(dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise InvalidInput(f"input '{name}': a value is out of range for {datatype}")
        array = array.astype(dtype)
    return array.reshape(shape)


def ndarray_to_proto(array: np.ndarray, datatype: str, contents: pb.InferTensorContents) -> None:
    """Fill typed `contents` with an array; raises `InvalidInput` for FP16 (raw only)."""
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInput(f"datatype {datatype} travels only as raw contents")
    flat = np.ascontiguousarray(array).reshape(-1)
    if datatype == "BYTES":
        getattr(contents, field).extend(as_bytes_array(flat).tolist())
    else:
        getattr(contents, field).extend(flat.astype(_FIELD_DTYPE[field], copy=False).tolist())


# -- inference ------------------------------------------------------------------------------


def request_from_proto(
    message: pb.ModelInferRequest, raw: Sequence[bytes | memoryview] | None = None
) -> InferRequest:
    """The internal request of a `ModelInferRequest`.

    `raw` replaces the message's `raw_input_contents` when the caller has already taken them
    out of the wire bytes (`proto_wire.read_infer_call`). Raises `InvalidInput` when raw and
    typed contents are mixed, the number of raw entries does not match the inputs, or an
    input's data does not fit its datatype and shape.
    """
    if raw is None:
        raw = message.raw_input_contents
    if raw:
        if len(raw) != len(message.inputs):
            raise InvalidInput(
                f"model '{message.model_name}': {len(raw)} raw_input_contents "
                f"for {len(message.inputs)} inputs"
            )
        for tensor in message.inputs:
            if tensor.contents.ListFields():
                raise InvalidInput(
                    f"contents field must not be specified when using raw_input_contents "
                    f"for '{tensor.name}' for model '{message.model_name}'"
                )
    inputs = [
        Tensor(
            tensor.name,
            tensor.datatype,
            ndarray_from_proto(tensor, raw[index] if raw else None),
            parameters_from_proto(tensor.parameters),
        )
        for index, tensor in enumerate(message.inputs)
    ]
    outputs = [
        RequestedOutput(output.name, parameters_from_proto(output.parameters))
        for output in message.outputs
    ]
    parameters, controls = split_parameters(parameters_from_proto(message.parameters))
    return InferRequest(
        model_name=message.model_name,
        model_version=message.model_version or None,
        id=message.id,
        inputs=inputs,
        outputs=outputs or None,
        parameters=parameters,
        controls=controls,
    )


def wants_raw_outputs(
    message: pb.ModelInferRequest, raw: Sequence[bytes | memoryview] | None = None
) -> bool:
    """Answer in the request's form: raw in, raw out; typed in, typed out (reference §7.5).

    tritonclient and perf_analyzer always send raw, and read numeric outputs only from
    raw_output_contents, so they always get raw back. `raw` as in `request_from_proto`.
    """
    if (message.raw_input_contents if raw is None else raw) or not message.inputs:
        return True
    return not any(tensor.contents.ListFields() for tensor in message.inputs)


def response_to_proto(response: InferResponse, raw: bool = True) -> pb.ModelInferResponse:
    """A `ModelInferResponse`; every output raw or every output typed, never a mix.

    FP16 has no typed field, so a response holding one is raw whatever was asked.
    """
    message = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id,
    )
    parameters_to_proto(response.parameters, message.parameters)
    raw = raw or any(output.datatype not in CONTENTS_FIELD for output in response.outputs)
    for output in response.outputs:
        tensor = message.outputs.add(name=output.name, datatype=output.datatype)
        tensor.shape.extend(output.shape)
        parameters_to_proto(output.parameters, tensor.parameters)
        if raw:
            message.raw_output_contents.append(
                bytes(ndarray_to_buffer(output.data, output.datatype))
            )
        else:
            ndarray_to_proto(output.data, output.datatype, tensor.contents)
    return message


def stream_error_to_proto(
    request: pb.ModelInferRequest, message: str
) -> pb.ModelStreamInferResponse:
    """A failed streamed request: `error_message`, and the response cleared but for its id."""
    return pb.ModelStreamInferResponse(
        error_message=message,
        infer_response=pb.ModelInferResponse(
            model_name=request.model_name, model_version=request.model_version, id=request.id
        ),
    )


# -- metadata, repository, statistics, configuration ----------------------------------------


def server_metadata_to_proto(metadata: ServerMetadata) -> pb.ServerMetadataResponse:
    """`ServerMetadataResponse` of the server's name, version and extensions."""
    return pb.ServerMetadataResponse(
        name=metadata.name, version=metadata.version, extensions=list(metadata.extensions)
    )


def model_metadata_to_proto(metadata: ModelMetadata) -> pb.ModelMetadataResponse:
    """`ModelMetadataResponse`; field 6 is never set (reference §7.6)."""
    tensor = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name=metadata.name,
        versions=list(metadata.versions),
        platform=metadata.platform,
        inputs=[tensor(name=s.name, datatype=s.datatype, shape=s.shape) for s in metadata.inputs],
        outputs=[tensor(name=s.name, datatype=s.datatype, shape=s.shape) for s in metadata.outputs],
    )


def repository_index_to_proto(entries: Iterable[ModelEntry]) -> pb.RepositoryIndexResponse:
    """One `ModelIndex` per configured model version, with Triton's upper-case states."""
    index = pb.RepositoryIndexResponse.ModelIndex
    return pb.RepositoryIndexResponse(
        models=[
            index(name=e.name, version=e.version, state=e.state.value, reason=e.reason)
            for e in entries
        ]
    )


def stats_to_proto(stats: ModelStats) -> pb.ModelStatistics:
    """One `ModelStatistics`: the REST `$model_stat` (`stats_to_json`), parsed into proto."""
    message = pb.ModelStatistics()
    json_format.ParseDict(stats_to_json(stats), message)
    return message


def model_config_to_proto(config: Mapping[str, Any]) -> pb.ModelConfigResponse:
    """`ModelConfigResponse` of a Triton model configuration in its JSON form."""
    message = model_config_pb2.ModelConfig()
    json_format.ParseDict(config, message)
    return pb.ModelConfigResponse(config=message)
