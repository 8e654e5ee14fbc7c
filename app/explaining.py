"""The data plane's explain operation: predictions plus attributions, for every front door.

`explain` takes the same `InferRequest` as inference and answers an `InferResponse` whose
outputs are the predictions (what `infer` answers) followed by the explanation tensors, each
marked with the output parameter `explanation: true`. Response parameters say how the
attributions were computed (`explainer`) and what they add up to (`explained_output`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from app.binding import bind_inputs, output_tensor
from app.codec.explanation import EXPLANATION
from app.errors import InvalidInput, ModelFailed, ModelportError
from app.explain import Explainer, explainer_for, require_explainer
from app.model import Model
from app.types import InferRequest, InferResponse, RequestedOutput, Tensor, TensorSpec

log = logging.getLogger("modelport.explain")


def explain(
    model: Model, request: InferRequest, infer: Callable[[InferRequest], InferResponse]
) -> InferResponse:
    """Predictions and attributions for one request to `model`, predicted through `infer`.

    `request.outputs`, when given, selects among both the model's outputs and the explanation
    tensors. Raises `ModelNotFound`, `ModelUnavailable`, `NotImplementedByModel` (no way to
    explain this model: the message says what to configure), `InvalidInput` (bad inputs or
    outputs, over the explanation budget or time limit), or `ModelFailed`.
    """
    explainer = require_explainer(model)
    inputs = bind_inputs(model, request)
    batch = len(next(iter(inputs.values())))
    if batch == 0:
        raise InvalidInput("nothing to explain: the input has no rows")
    specs = {spec.name: spec for spec in explainer.outputs()}
    asked, explanation = _split_outputs(model, request, specs)
    predictions: list[Tensor] = []
    if asked is None or asked:
        predictions = infer(dataclasses.replace(request, outputs=asked)).outputs
    tensors: list[Tensor] = []
    if explanation is None or explanation:
        result = _run(model, explainer, inputs, request.parameters)
        names = explanation if explanation is not None else list(result)
        tensors = [_tensor(model, name, result, specs.get(name), batch) for name in names]
    parameters: dict[str, Any] = {"explainer": explainer.method}
    if explainer.explained_output:
        parameters["explained_output"] = explainer.explained_output
    return InferResponse(
        model_name=model.name,
        model_version=model.version,
        id=request.id,
        outputs=predictions + tensors,
        parameters=parameters,
    )


def explanation_specs(model: Model) -> list[TensorSpec]:
    """The explanation tensors a model answers, for its metadata (empty if it cannot explain)."""
    try:
        explainer = explainer_for(model)
    except Exception:  # metadata must answer even if building the explainer failed
        log.exception("explainer of model '%s' version '%s' failed", model.name, model.version)
        return []
    return explainer.outputs() if explainer is not None else []


def _split_outputs(
    model: Model, request: InferRequest, specs: Mapping[str, TensorSpec]
) -> tuple[list[RequestedOutput] | None, list[str] | None]:
    """The outputs to ask inference for, and the explanation tensors to answer (None: all).

    Raises `InvalidInput` for a name that is neither an output nor an explanation tensor; a
    model's own explainer that declares no `explain_outputs` is checked after it ran.
    """
    if not request.outputs:
        return None, None
    declared = {spec.name for spec in model.outputs}
    names = [output.name for output in request.outputs]
    unknown = [name for name in names if name not in declared and name not in specs]
    if specs and unknown:
        raise InvalidInput(
            f"model '{model.name}' has no output or explanation output '{unknown[0]}' "
            f"(outputs: {sorted(declared)}, explanation outputs: {list(specs)})"
        )
    asked = [output for output in request.outputs if output.name in declared]
    return asked, [name for name in names if name not in declared]


def _run(
    model: Model, explainer: Explainer, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
) -> Mapping[str, np.ndarray]:
    """The explainer's tensors; anything but our own errors becomes `ModelFailed` (500)."""
    try:
        return explainer.explain(model, inputs, parameters)
    except ModelportError:
        raise
    except Exception as exc:
        log.exception("explaining model '%s' version '%s' raised", model.name, model.version)
        raise ModelFailed(
            f"model '{model.name}' failed to explain: {str(exc) or type(exc).__name__}"
        ) from exc


def _tensor(
    model: Model,
    name: str,
    result: Mapping[str, np.ndarray],
    spec: TensorSpec | None,
    batch: int,
) -> Tensor:
    """One explanation tensor, batch first, in its declared datatype where one is declared."""
    if name not in result:
        if spec is None:
            raise InvalidInput(f"model '{model.name}' has no explanation output '{name}'")
        raise ModelFailed(f"model '{model.name}' explain returned no '{name}'")
    data = np.asarray(result[name])
    if data.ndim == 0 or data.shape[0] != batch:
        raise ModelFailed(
            f"model '{model.name}' explain output '{name}' has shape {list(data.shape)}; "
            f"explanation outputs must have one entry per input row ({batch})"
        )
    tensor = output_tensor(model, name, data, spec, what="explain output")
    return Tensor(name, tensor.datatype, np.ascontiguousarray(tensor.data), {EXPLANATION: True})
