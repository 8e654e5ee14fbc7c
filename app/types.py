"""The internal request and response that both front-ends hand to the data plane.

Wire formats never reach past `app.codec`: REST and gRPC both build an `InferRequest` of named numpy
tensors and receive an `InferResponse`, so the data plane has one shape to handle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Parameters = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Metadata of one model input or output, in OIP words (`-1` marks a variable dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """The `$metadata_tensor` object of the OIP REST model metadata."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


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


@dataclass(slots=True)
class InferRequest:
    """What every front door becomes (DESIGN §4)."""

    model_name: str
    model_version: str | None
    id: str
    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None = None
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

    def to_dict(self) -> dict[str, Any]:
        """The OIP REST `$metadata_model_response` object.

        `explanation_outputs` is an extra key, sent only when there are some: OIP clients
        (tritonclient included) ignore keys they do not know.
        """
        body = {
            "name": self.name,
            "versions": list(self.versions),
            "platform": self.platform,
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": [spec.to_dict() for spec in self.outputs],
        }
        if self.explanation_outputs:
            body["explanation_outputs"] = [spec.to_dict() for spec in self.explanation_outputs]
        return body


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    """The server's name, version and the protocol extensions it really serves."""

    name: str
    version: str
    extensions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The OIP REST `$metadata_server_response` object."""
        return {"name": self.name, "version": self.version, "extensions": list(self.extensions)}
