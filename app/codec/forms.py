"""The forms an OIP v2 REST inference body takes, each read into one finished `InferRequest`.

`/infer` (and `/explain`, which takes the same body) accepts three forms:

- OIP tensors, JSON `data` or binary sections after the JSON header (Triton's extension);
- MLRun plain rows (`"inputs": [[...], ...]`), one untyped tensor;
- MLRun `data_url`, inputs read from a file under `limits.data_roots` (`app.codec.data_url`).

`/infer_dict` takes MLRun rows of `{feature: value}`, in the feature order the model declares.
Untyped forms (rows, files, records) are cast to the model's declared datatypes by the binding
(`cast_inputs`); tensors with a datatype are checked against it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from app.codec import binary, envelopes, schemas
from app.codec.data_url import read_data_url
from app.codec.rest import (
    is_tensor_form,
    request_from_v2,
    tensor_from_records,
    tensor_from_rows,
    tensors_from_records,
)
from app.errors import InvalidInput
from app.model import Model
from app.types import InferRequest


def request_from_body(
    name: str,
    version: str | None,
    payload: Any,
    binary_data: memoryview | None,
    *,
    data_roots: Sequence[Path],
    limit: int,
) -> InferRequest:
    """The request of an `/infer` body in any of its forms.

    `binary_data` is what follows the JSON header (None without one); `data_roots` and `limit`
    bound a `data_url`. Raises `InvalidInput` for an envelope or tensor that does not validate,
    mixed or empty forms, and binary data where the form has no binary inputs; `data_url` adds
    `Forbidden` and `PayloadTooLarge` (`read_data_url`).
    """
    if isinstance(payload, Mapping) and "data_url" in payload:
        if "inputs" in payload:
            raise InvalidInput("give either 'inputs' or 'data_url', not both")
        _refuse_binary(binary_data, "a data_url")
        envelope = schemas.load(schemas.INFER_REQUEST, {**payload, "inputs": []})
        tensors = read_data_url(payload["data_url"], data_roots, limit)
        return request_from_v2(name, version, envelope, tensors, cast_inputs=True)
    envelope = envelopes.infer_request(payload)
    inputs = envelope["inputs"]
    if is_tensor_form(inputs):
        items = envelopes.input_tensors(inputs)
        return request_from_v2(name, version, envelope, binary.input_tensors(items, binary_data))
    if not inputs:
        raise InvalidInput("'inputs' is empty")
    if any(isinstance(row, dict) for row in inputs):
        raise InvalidInput("'inputs' mixes tensors and plain rows")
    _refuse_binary(binary_data, "plain rows")
    return request_from_v2(name, version, envelope, [tensor_from_rows(inputs)], cast_inputs=True)


def request_from_records(
    name: str, version: str | None, payload: Any, model: Callable[[], Model]
) -> InferRequest:
    """The request of an `/infer_dict` body: `{feature: value}` rows in the model's order.

    A model with several declared inputs (one per feature) takes rows keyed by its input names,
    one column tensor per input; any other model, rows of its `features`, as one matrix.
    `model` is called once the envelope is valid (a bad body is a 400 whatever the model).
    Raises `InvalidInput` for a bad envelope, a model that declares no feature order, or a row
    that is not an object or lacks a feature; and what `model` raises.
    """
    envelope = schemas.load(schemas.INFER_DICT_REQUEST, payload)
    found = model()
    if len(found.inputs) > 1:
        names = [spec.name for spec in found.inputs]
        columns = tensors_from_records(envelope["inputs"], names)
        return request_from_v2(name, version, envelope, columns, cast_inputs=True)
    features = found.features
    if not features:
        raise InvalidInput(
            f"model '{name}' declares no feature order; add 'features:' to its config entry"
        )
    tensor = tensor_from_records(envelope["inputs"], features)
    return request_from_v2(name, version, envelope, [tensor], cast_inputs=True)


def _refuse_binary(binary_data: memoryview | None, form: str) -> None:
    if binary_data is not None and len(binary_data):
        raise InvalidInput(
            f"{len(binary_data)} bytes of binary data follow the JSON header, but a request "
            f"with {form} has no binary inputs to read them"
        )
