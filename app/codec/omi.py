"""Chassis OMI (`ModzyModel`) messages and items to and from the internal types.

An OMI item is a map of `{key: bytes}`. Models with a `process(item)` method read items
themselves; every other model goes through the default adapter here: each value is JSON (numbers
or strings, one row or several) or `.npy` bytes, and the answer is one `results.json` holding
`{output name: nested list}` (DESIGN §3).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from http import HTTPStatus

import numpy as np
import orjson

from app.codec.datatypes import datatype_from_dtype
from app.codec.explanation import is_explanation
from app.codec.rest import tensor_from_rows
from app.codec.tensors import ndarray_to_json
from app.errors import InvalidInput, ModelportError
from app.types import InferRequest, InferResponse, ModelMetadata, Tensor, TensorSpec
from protos import omi_pb2

#: Chassis's key for a model's single input (its legacy functions and docs use it).
DEFAULT_INPUT_KEY = "input"
RESULTS_KEY = "results.json"
ERROR_KEY = "error"
_NPY_MAGIC = b"\x93NUMPY"
_INPUT_MEDIA_TYPES = ["application/json", "application/x-npy"]


def _size_text(limit: int) -> str:
    """`max_size` in Chassis's notation (`64M`)."""
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if limit >= size and limit % size == 0:
            return f"{limit // size}{unit}"
    return str(limit)


def status_to_proto(
    metadata: ModelMetadata,
    version: str,
    message: str,
    max_request_bytes: int,
    processes_items: bool,
) -> omi_pb2.StatusResponse:
    """A 200 `StatusResponse` with fields 4-10 filled from the model's metadata."""
    size = _size_text(max_request_bytes)
    if processes_items or len(metadata.inputs) <= 1:
        keys = [DEFAULT_INPUT_KEY]
    else:
        keys = [spec.name for spec in metadata.inputs]
    return omi_pb2.StatusResponse(
        status_code=HTTPStatus.OK,
        status=HTTPStatus.OK.phrase,
        message=message,
        model_info=omi_pb2.ModelInfo(
            model_name=metadata.name,
            model_version=version,
            model_type="grpc",
            source="modelport",
        ),
        description=omi_pb2.ModelDescription(
            summary=f"{metadata.name} ({metadata.platform}), served by Modelport"
        ),
        inputs=[
            omi_pb2.ModelInput(
                filename=key,
                accepted_media_types=["application/octet-stream"]
                if processes_items
                else _INPUT_MEDIA_TYPES,
                max_size=size,
            )
            for key in keys
        ],
        outputs=[
            omi_pb2.ModelOutput(filename=RESULTS_KEY, media_type="application/json", max_size=size)
        ],
        resources=omi_pb2.ModelResources(required_ram="512M", num_cpus=1.0),
        timeout=omi_pb2.ModelTimeout(status="60s", run="60s"),
        features=omi_pb2.ModelFeatures(batch_size=1),
    )


def error_status(exc: ModelportError) -> tuple[int, str, str]:
    """`(status_code, status, message)` of an in-band OMI failure: the DESIGN §5 HTTP number."""
    status = exc.http_status
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return status, phrase, exc.message


def failed_item(message: str) -> omi_pb2.OutputItem:
    """A per-item failure: `success=false` and the reason under `error` (the proto's contract)."""
    return omi_pb2.OutputItem(output={ERROR_KEY: message.encode("utf-8")}, success=False)


def output_item(result: object) -> omi_pb2.OutputItem:
    """A `process` result as an `OutputItem`; raises `InvalidInput` unless it maps str to bytes."""
    if not isinstance(result, Mapping):
        raise InvalidInput(f"process() returned {type(result).__name__}, not a dict of bytes")
    bad = [
        key
        for key, value in result.items()
        if not isinstance(key, str) or not isinstance(value, bytes)
    ]
    if bad:
        raise InvalidInput(f"process() output {bad[0]!r} is not bytes under a string key")
    return omi_pb2.OutputItem(output=dict(result), success=True)


# -- the default adapter --------------------------------------------------------------------


def _array_from_bytes(key: str, value: bytes) -> np.ndarray:
    if value.startswith(_NPY_MAGIC):
        try:
            return np.asarray(np.load(io.BytesIO(value), allow_pickle=False))
        except (ValueError, OSError, EOFError) as exc:
            raise InvalidInput(f"item '{key}': not a readable .npy array: {exc}") from None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidInput(f"item '{key}': neither JSON nor .npy bytes") from None
    if not isinstance(data, list):
        data = [data]
    return tensor_from_rows(data, key).data


def request_from_item(
    model_name: str, version: str, item: Mapping[str, bytes], specs: Sequence[TensorSpec]
) -> InferRequest:
    """An inference request from one OMI item (JSON or .npy values), cast to the model's types.

    A single-input model reads the key `input`, its input's name, or the item's only key; a
    multi-input model reads one key per input name. Raises `InvalidInput` for a missing key or
    a value that is neither JSON nor .npy.
    """
    if not item:
        raise InvalidInput("item has no keys")
    if len(specs) <= 1:
        wanted = [DEFAULT_INPUT_KEY, *(spec.name for spec in specs)]
        key = next((k for k in wanted if k in item), None)
        if key is None and len(item) == 1:
            key = next(iter(item))
        if key is None:
            raise InvalidInput(f"item has no '{DEFAULT_INPUT_KEY}' key (got {sorted(item)})")
        pairs = [(specs[0].name if specs else key, key)]
    else:
        missing = [spec.name for spec in specs if spec.name not in item]
        if missing:
            raise InvalidInput(f"item has no '{missing[0]}' key (got {sorted(item)})")
        pairs = [(spec.name, spec.name) for spec in specs]
    tensors = []
    for name, key in pairs:
        array = _array_from_bytes(key, item[key])
        tensors.append(Tensor(name, datatype_from_dtype(array.dtype), array))
    return InferRequest(model_name, version, "", tensors, cast_inputs=True)


def item_from_response(response: InferResponse) -> omi_pb2.OutputItem:
    """`{"results.json": {output name: nested list}}` of an inference (or explain) response.

    An explain response's explanation tensors are left out: they go to `explanation.json`.
    """
    body: dict[str, object] = {}
    for output in response.outputs:
        if is_explanation(output):
            continue
        flat = ndarray_to_json(output.name, output.data, output.datatype)
        if isinstance(flat, np.ndarray):
            body[output.name] = flat.reshape(output.shape)
        else:
            body[output.name] = np.asarray(flat, dtype=object).reshape(output.shape).tolist()
    payload = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return omi_pb2.OutputItem(output={RESULTS_KEY: payload}, success=True)
