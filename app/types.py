"""The internal request and response that both front-ends hand to the data plane.

Wire formats never reach past `app.codec`: REST and gRPC both build an `InferRequest` of named numpy
tensors and receive an `InferResponse`, so the data plane has one shape to handle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vocabulary.tensor_spec import TensorSpec

# TensorSpec is part of the model API (`from app.types import TensorSpec`, README).
__all__ = [
    "InferRequest",
    "InferResponse",
    "ModelMetadata",
    "Parameters",
    "RequestedOutput",
    "ServerMetadata",
    "Tensor",
    "TensorSpec",
]

Parameters = dict[str, Any]


@dataclass(slots=True)
class Tensor:
    """A named tensor: numpy data shaped as on the wire, plus its OIP datatype.

    The datatype travels with the array because numpy cannot tell BYTES from any other object
    array, and FP16 from a widened copy.
    """

    name: str
    datatype: str
    data: np.ndarray
    parameters: Parameters = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """The tensor's shape, as sent and as answered."""
        return tuple(self.data.shape)


@dataclass(slots=True)
class RequestedOutput:
    """An output the client asked for by name, with its per-output parameters."""

    name: str
    parameters: Parameters = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InferRequest:
    """What every front door becomes (DESIGN §4), finished by the codec: nothing changes it.

    An operation that needs a variant (explain asks inference for fewer outputs) makes one
    with `dataclasses.replace`.
    """

    model_name: str
    model_version: str | None
    id: str
    inputs: Sequence[Tensor]
    outputs: Sequence[RequestedOutput] | None = None
    parameters: Parameters = field(default_factory=dict)
    # Protocol controls split off `parameters` by the codec (`app.codec.parameters`): the
    # front-ends honour them (`binary_data_output`), the model never sees them.
    controls: Parameters = field(default_factory=dict)
    # Inputs given without an explicit datatype (v1 instances, MLRun rows) are cast to the
    # model's declared datatype instead of being checked against it.
    cast_inputs: bool = False


@dataclass(slots=True)
class InferResponse:
    """The data plane's one answer to an `InferRequest`."""

    model_name: str
    model_version: str
    id: str
    outputs: list[Tensor]
    parameters: Parameters = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    """What a client learns about a model version before calling it."""

    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    #: Tensors the explain routes answer next to `outputs`; empty when the model cannot explain.
    explanation_outputs: tuple[TensorSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    """The server's name, version and the protocol extensions it really serves."""

    name: str
    version: str
    extensions: tuple[str, ...]
