"""Explanations on the wire: the KServe v1 `:explain` body, also the OMI `explanation.json`.

The data plane marks explanation tensors with the output parameter `explanation: true`; the v2
form sends them as ordinary outputs (the marker included), while the v1 and OMI forms split them
from the predictions into one `explanations` object per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.codec.rest import dumps
from app.codec.tensors import ndarray_to_json
from app.types import InferResponse, Tensor

#: Per-output parameter that marks a tensor of the explanation (not a prediction).
EXPLANATION = "explanation"
#: The OMI output key an explanation is answered under, next to the item's `results.json`.
EXPLANATION_FILE = "explanation.json"


def is_explanation(tensor: Tensor) -> bool:
    """Whether an output of an explain response belongs to the explanation."""
    return tensor.parameters.get(EXPLANATION) is True


def explanation_to_v1(response: InferResponse) -> bytes:
    """`{"predictions": [...], "explanations": [...]}`, as KServe documents `:explain`.

    `predictions` is the first prediction output nested in its shape (as `:predict` answers);
    `explanations` holds one object per row, `{output name: that row of the output}`.
    """
    predictions = [tensor for tensor in response.outputs if not is_explanation(tensor)]
    explanation = [tensor for tensor in response.outputs if is_explanation(tensor)]
    columns = {tensor.name: _rows(tensor) for tensor in explanation}
    count = min((len(rows) for rows in columns.values()), default=0)
    return dumps(
        {
            "predictions": _nested(predictions[0]) if predictions else [],
            "explanations": [
                {name: rows[index] for name, rows in columns.items()} for index in range(count)
            ],
        }
    )


def _nested(tensor: Tensor) -> Any:
    """A whole tensor as nested JSON (numeric arrays stay numpy for orjson)."""
    flat = ndarray_to_json(tensor.name, tensor.data, tensor.datatype)
    if isinstance(flat, np.ndarray):
        return np.ascontiguousarray(flat).reshape(tensor.shape)
    return np.asarray(flat, dtype=object).reshape(tensor.shape).tolist()


def _rows(tensor: Tensor) -> list[Any]:
    """The tensor's rows (first dimension) as JSON values, without a loop over elements."""
    nested = _nested(tensor)
    return list(nested) if isinstance(nested, np.ndarray) and nested.ndim else [nested]


def explanation_item(response: InferResponse) -> dict[str, bytes]:
    """The OMI output of an explained item: the v1 explain body under `explanation.json`."""
    return {EXPLANATION_FILE: explanation_to_v1(response)}
