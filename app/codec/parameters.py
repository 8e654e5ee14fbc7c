"""Request parameters that steer the protocol, split from the ones meant for the model.

Triton keeps some request parameters for itself (reference §6.3): they tell the server how to
schedule or answer a request, not the model what to compute, and tritonclient sends some of them
on its own (`binary_data_output`, `priority`, `timeout`, the sequence keys). Both front-ends split
them off here, in one place, so a model's `parameters` hold only what its caller meant for it,
and two requests that differ only in such controls still share a dynamic batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Triton's reserved request parameters (its parameters, sequence and schedule-policy extensions),
#: plus the binary-data extension's request-level `binary_data_output`.
RESERVED = frozenset(
    {
        "sequence_id",
        "sequence_start",
        "sequence_end",
        "priority",
        "timeout",
        "headers",
        "binary_data_output",
    }
)
#: Every key with this prefix is Triton's too (`triton_enable_empty_final_response`, ...).
RESERVED_PREFIX = "triton_"


def split_parameters(parameters: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`(for the model, protocol controls)`: a request's parameters, sorted into the two.

    Controls are kept, not dropped: front-ends read the ones they honour (`binary_data_output`)
    from `InferRequest.controls`. Modelport ignores the scheduling and sequence keys, as the
    protocol allows, but never rejects them.
    """
    if not parameters:
        return {}, {}
    model: dict[str, Any] = {}
    controls: dict[str, Any] = {}
    for key, value in parameters.items():
        if key in RESERVED or key.startswith(RESERVED_PREFIX):
            controls[key] = value
        else:
            model[key] = value
    return model, controls
