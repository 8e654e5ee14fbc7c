"""Match a request's tensors to a model's declared inputs, and its answers to its outputs.

Rules, as MLServer and KServe apply them: a single-input model takes its one tensor under any name;
a multi-input model matches names exactly. Typed requests (OIP) must send the declared datatype, as
Triton requires; untyped forms (v1 instances, MLRun rows) are cast to it.
"""

from __future__ import annotations

import numpy as np

from app.codec.datatypes import datatype_from_dtype, dtype_from_datatype
from app.codec.tensors import as_bytes_array
from app.errors import InvalidInput, ModelFailed, ModelportError
from app.model import Model
from app.runtimes.columns import is_columnar
from app.types import InferRequest, Tensor, TensorSpec


def bind_inputs(model: Model, request: InferRequest) -> dict[str, np.ndarray]:
    """The named arrays to hand to `model.predict`, checked against its metadata.

    Raises `InvalidInput` for a missing, unknown or duplicated input, or a datatype or shape
    that does not match the model's declaration.
    """
    tensors = request.inputs
    if not tensors:
        raise InvalidInput(f"model '{model.name}': the request has no inputs")
    names = [tensor.name for tensor in tensors]
    if len(set(names)) != len(names):
        raise InvalidInput(f"model '{model.name}': an input name is given twice in {names}")
    specs = model.inputs
    if not specs:
        return {tensor.name: tensor.data for tensor in tensors}
    if len(specs) == 1:
        if len(tensors) != 1:
            raise InvalidInput(
                f"model '{model.name}' takes one input ('{specs[0].name}'), got {len(tensors)}"
            )
        return {specs[0].name: _check(model, specs[0], tensors[0], request.cast_inputs)}
    if len(tensors) == 1 and request.cast_inputs and is_columnar(specs):
        return _split_rows(model, specs, tensors[0])
    by_name = {spec.name: spec for spec in specs}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise InvalidInput(
            f"model '{model.name}' has no input '{unknown[0]}' (inputs: {list(by_name)})"
        )
    missing = [name for name in by_name if name not in names]
    if missing:
        raise InvalidInput(f"model '{model.name}': input '{missing[0]}' is missing")
    return {t.name: _check(model, by_name[t.name], t, request.cast_inputs) for t in tensors}


def _split_rows(model: Model, specs: list[TensorSpec], tensor: Tensor) -> dict[str, np.ndarray]:
    """Untyped rows (v1 instances, MLRun rows) for a model whose inputs are its features.

    Each row holds one value per declared input, in the declared order (as MLflow reads the
    columns of such a row). Raises `InvalidInput` when the rows are not that wide.
    """
    rows = tensor.data[np.newaxis, :] if tensor.data.ndim == 1 else tensor.data
    if rows.ndim != 2 or rows.shape[1] != len(specs) or any(len(s.shape) != 1 for s in specs):
        raise InvalidInput(
            f"model '{model.name}' takes one input per feature ({[s.name for s in specs]}): "
            f"send rows of {len(specs)} values, or one tensor per input (got shape "
            f"{list(tensor.data.shape)})"
        )
    return {
        spec.name: _check(model, spec, Tensor(spec.name, tensor.datatype, rows[:, i]), True)
        for i, spec in enumerate(specs)
    }


def _check(model: Model, spec: TensorSpec, tensor: Tensor, cast: bool) -> np.ndarray:
    data = tensor.data
    if cast:
        data = _cast(spec, tensor)
    elif tensor.datatype != spec.datatype:
        raise InvalidInput(
            f"input '{tensor.name}': expected {spec.datatype}, got {tensor.datatype}"
        )
    if cast and data.ndim == len(spec.shape) - 1:
        data = data[np.newaxis, ...]  # one row sent without its batch dimension
    if data.ndim != len(spec.shape) or any(
        want not in (-1, got) for want, got in zip(spec.shape, data.shape, strict=True)
    ):
        raise InvalidInput(
            f"input '{tensor.name}': shape {list(data.shape)} does not match "
            f"model '{model.name}' input '{spec.name}' shape {list(spec.shape)}"
        )
    return data


def _cast(spec: TensorSpec, tensor: Tensor) -> np.ndarray:
    data = tensor.data
    if spec.datatype == "BYTES":
        return as_bytes_array(data)
    if data.dtype.kind not in "biuf":
        raise InvalidInput(f"input '{tensor.name}': expected numbers for {spec.datatype}")
    try:
        return data.astype(dtype_from_datatype(spec.datatype), copy=False)
    except (ValueError, OverflowError):
        raise InvalidInput(f"input '{tensor.name}': values do not fit {spec.datatype}") from None


def output_names(model: Model, request: InferRequest) -> list[str] | None:
    """Names of the outputs to compute, in answer order; None = whatever the model returns.

    Raises `InvalidInput` for an output the model does not declare.
    """
    declared = [spec.name for spec in model.outputs]
    if request.outputs:
        names = [output.name for output in request.outputs]
        if declared:
            unknown = [name for name in names if name not in declared]
            if unknown:
                raise InvalidInput(
                    f"model '{model.name}' has no output '{unknown[0]}' (outputs: {declared})"
                )
        return names
    if model.default_outputs is not None:
        return list(model.default_outputs)
    return declared or None


def output_tensor(
    model: Model, name: str, value: object, spec: TensorSpec | None, what: str = "output"
) -> Tensor:
    """One array a model answered, as a tensor of its declared datatype.

    Without a declaration the datatype is the one its dtype implies. Raises `ModelFailed` (the
    model's fault, a 500) when the array cannot be sent as that datatype.
    """
    data = np.asarray(value)
    try:
        if spec is not None:
            datatype = spec.datatype
            data = (
                as_bytes_array(data)
                if datatype == "BYTES"
                else data.astype(dtype_from_datatype(datatype), copy=False)
            )
        else:
            datatype = datatype_from_dtype(data.dtype)
            if datatype == "BYTES" and data.dtype.kind != "O":
                data = as_bytes_array(data)
    except (ValueError, TypeError, ModelportError) as exc:
        raise ModelFailed(f"model '{model.name}' {what} '{name}' cannot be sent: {exc}") from exc
    return Tensor(name, datatype, data)
