"""REST bodies (KServe v1, OIP v2 JSON, MLRun forms) to and from the internal types.

Envelopes are validated by `app.codec.envelopes` (the marshmallow schemas of `app.codec.schemas`);
this module turns `data` into numpy (and back) and applies each form's conventions. Which form
an OIP body is in is `app.codec.forms`'s question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from app.codec import envelopes, json_numbers
from app.codec.parameters import split_parameters
from app.codec.tensors import check_shape, ndarray_from_json, ndarray_to_json
from app.errors import InvalidInput
from app.ids import uuid_id
from app.types import InferRequest, InferResponse, RequestedOutput, Tensor

_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def parse_json(body: bytes | bytearray) -> Any:
    """Parse a request body as JSON; raises `InvalidInput` with the parser's reason."""
    if not body.strip():
        raise InvalidInput("request body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None


def parse_infer_json(body: bytes | bytearray) -> Any:
    """Parse an inference body: as `parse_json`, but large float `data` comes as `JsonNumbers`.

    `app.codec.json_numbers` takes the bodies whose answer it can give exactly; orjson parses
    the rest, and phrases every refusal.
    """
    payload = json_numbers.loads(body)
    return parse_json(body) if payload is None else payload


def dumps(payload: Any) -> bytes:
    """Serialize a response body; numpy arrays are written by orjson directly."""
    return orjson.dumps(payload, option=_DUMP_OPTIONS)


def error_to_json(
    form: str, status: int, reason: str, message: str, details: Mapping[str, Any] | None = None
) -> bytes:
    """An error body in the `errors:` form of the config (REST and stream answers alike).

    `oip`: `{"error": message}`, the string tritonclient and kserve's clients read. `detailed`:
    `{"error": {"code": <HTTP status>, "message": ..., "details": {"reason": ..., ...}}}`, the
    code a number as in Google's JSON error style, the machine-readable reason in `details`.
    """
    if form == "detailed":
        error = {
            "code": status,
            "message": message,
            "details": {**(details or {}), "reason": reason},
        }
        return dumps({"error": error})
    return dumps({"error": message})


def new_id() -> str:
    """A request id for requests that bring none (KServe sends a uuid4 too)."""
    return uuid_id()


# -- OIP v2 ------------------------------------------------------------------------------------


def is_tensor_form(inputs: Sequence[Any]) -> bool:
    """True for OIP tensors (`{"name", "shape", "datatype", ...}`), False for MLRun plain rows."""
    return bool(inputs) and isinstance(inputs[0], Mapping)


def tensor_from_json(item: Mapping[str, Any]) -> Tensor:
    """One validated OIP input tensor with JSON `data` as a numpy array."""
    name = item["name"]
    parameters = dict(item.get("parameters") or {})
    if "data" not in item:
        raise InvalidInput(f"input '{name}' has no 'data'")
    shape = check_shape(name, item["shape"])
    data = ndarray_from_json(
        name, item["datatype"], shape, item["data"], parameters.get("content_type")
    )
    return Tensor(name, item["datatype"], data, parameters)


def requested_outputs(
    items: Sequence[Mapping[str, Any]] | None,
) -> tuple[RequestedOutput, ...] | None:
    """The `outputs` of a request, or None when it names none."""
    if not items:
        return None
    return tuple(RequestedOutput(o["name"], dict(o.get("parameters") or {})) for o in items)


def request_from_v2(
    name: str,
    version: str | None,
    payload: Mapping[str, Any],
    inputs: Sequence[Tensor],
    cast_inputs: bool = False,
) -> InferRequest:
    """An `InferRequest` from a validated v2 envelope whose inputs are already tensors.

    `cast_inputs` for inputs that carry no datatype of their own (rows, files, records).
    """
    parameters, controls = split_parameters(payload.get("parameters") or {})
    return InferRequest(
        model_name=name,
        model_version=version,
        id=payload.get("id") or new_id(),
        inputs=tuple(inputs),
        outputs=requested_outputs(payload.get("outputs")),
        parameters=parameters,
        controls=controls,
        cast_inputs=cast_inputs,
    )


def tensor_from_rows(rows: Sequence[Any], name: str = "input-0") -> Tensor:
    """MLRun's plain rows (or v1 instances) as one untyped tensor, cast later to the model's type.

    Raises `InvalidInput` for ragged rows or values that are neither numbers nor strings.
    """
    try:
        data = np.asarray(rows)
    except (ValueError, TypeError):
        raise InvalidInput("inputs must be rows of equal length") from None
    if data.dtype.kind in "US":
        return Tensor(name, "BYTES", data.astype(object))
    if data.dtype.kind not in "biuf":
        raise InvalidInput("inputs must be rows of numbers or strings")
    return Tensor(name, "FP64" if data.dtype.kind == "f" else "INT64", data)


def tensor_from_records(records: Any, features: Sequence[str]) -> Tensor:
    """MLRun `infer_dict` rows of `{feature: value}` as one tensor in the declared feature order.

    Raises `InvalidInput` for a row that is not an object or lacks a feature.
    """
    rows = _records(records, features)
    return tensor_from_rows([[row[feature] for feature in features] for row in rows])


def tensors_from_records(records: Any, names: Sequence[str]) -> list[Tensor]:
    """`infer_dict` rows keyed by input names as one untyped column tensor per input.

    For models whose inputs are declared one per feature. Raises `InvalidInput` for a row that
    is not an object or lacks an input.
    """
    rows = _records(records, names)
    return [tensor_from_rows([row[name] for row in rows], name) for name in names]


def _records(records: Any, keys: Sequence[str]) -> list[Mapping[str, Any]]:
    """The `infer_dict` rows, each checked to be an object holding every key."""
    rows = [records] if isinstance(records, Mapping) else records
    if not isinstance(rows, list) or not rows:
        raise InvalidInput("infer_dict 'inputs' must be an object or a non-empty list of objects")
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidInput(f"infer_dict row {index} is not an object")
        missing = [key for key in keys if key not in row]
        if missing:
            raise InvalidInput(f"infer_dict row {index} has no feature '{missing[0]}'")
    return rows


def output_to_v2(output: Tensor) -> dict[str, Any]:
    """One OIP output with flat JSON `data` (numeric arrays go to orjson as they are)."""
    return {
        "name": output.name,
        "datatype": output.datatype,
        "shape": list(output.shape),
        "parameters": output.parameters,
        "data": ndarray_to_json(output.name, output.data, output.datatype),
    }


def response_envelope(response: InferResponse, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The OIP response object around already converted outputs (JSON or binary)."""
    return {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "id": response.id,
        "parameters": response.parameters,
        "outputs": outputs,
    }


def response_to_v2(response: InferResponse) -> bytes:
    """The OIP JSON response body: outputs with flat `data`."""
    return dumps(response_envelope(response, [output_to_v2(o) for o in response.outputs]))


# -- KServe v1 ---------------------------------------------------------------------------------


def request_from_v1(name: str, body: Any) -> InferRequest:
    """KServe v1 `instances` (or `inputs`, which wins, as in KServe) as one untyped tensor.

    Raises `InvalidInput` for an envelope that does not validate, or no rows.
    """
    payload = envelopes.v1_request(body)
    rows = payload["inputs"] if payload.get("inputs") is not None else payload.get("instances")
    if rows is None:
        raise InvalidInput('request needs "instances" or "inputs"')
    if not isinstance(rows, list):
        raise InvalidInput('Expected "instances" to be a list')
    if not rows:
        raise InvalidInput('"instances" is empty')
    return InferRequest(
        model_name=name,
        model_version=None,
        id=new_id(),
        inputs=(tensor_from_rows(rows),),
        cast_inputs=True,
    )


def response_to_v1(response: InferResponse) -> bytes:
    """`{"predictions": [...]}`: the first output, nested in its shape, as KServe answers."""
    if not response.outputs:
        return dumps({"predictions": []})
    first = response.outputs[0]
    flat = ndarray_to_json(first.name, first.data, first.datatype)
    if isinstance(flat, np.ndarray):
        return dumps({"predictions": flat.reshape(first.shape)})
    return dumps({"predictions": np.asarray(flat, dtype=object).reshape(first.shape).tolist()})
