"""REST JSON of what the server says about itself and its models: metadata, health, the index.

gRPC answers the same facts as protobuf (`app.codec.proto`); both read the data plane's
`ServerMetadata`, `ModelMetadata` and `ModelEntry`, never each other's wire form.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.entries import ModelEntry
from app.types import ModelMetadata, ServerMetadata, TensorSpec


def tensor_spec_to_json(spec: TensorSpec) -> dict[str, Any]:
    """The `$metadata_tensor` object of the OIP REST model metadata."""
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}


def server_metadata_to_json(metadata: ServerMetadata) -> dict[str, Any]:
    """The OIP REST `$metadata_server_response` object."""
    return {
        "name": metadata.name,
        "version": metadata.version,
        "extensions": list(metadata.extensions),
    }


def health_to_json(metadata: ServerMetadata, ready: bool) -> dict[str, Any]:
    """MLRun's `GET /v2/health`: the server metadata, with liveness and readiness."""
    return {**server_metadata_to_json(metadata), "live": True, "ready": ready}


def model_metadata_to_json(metadata: ModelMetadata) -> dict[str, Any]:
    """The OIP REST `$metadata_model_response` object.

    `explanation_outputs` is an extra key, sent only when there are some: OIP clients
    (tritonclient included) ignore keys they do not know.
    """
    body: dict[str, Any] = {
        "name": metadata.name,
        "versions": list(metadata.versions),
        "platform": metadata.platform,
        "inputs": [tensor_spec_to_json(spec) for spec in metadata.inputs],
        "outputs": [tensor_spec_to_json(spec) for spec in metadata.outputs],
    }
    if metadata.explanation_outputs:
        body["explanation_outputs"] = [
            tensor_spec_to_json(spec) for spec in metadata.explanation_outputs
        ]
    return body


def repository_index_to_json(entries: Iterable[ModelEntry]) -> list[dict[str, Any]]:
    """Triton's repository index: `{name, version, state}`, and `reason` when there is one."""
    return [
        {"name": e.name, "version": e.version, "state": e.state.value}
        | ({"reason": e.reason} if e.reason else {})
        for e in entries
    ]


def model_list_to_json(entries: Iterable[ModelEntry]) -> dict[str, list[str]]:
    """MLRun's and KServe's v2 model list: every name, and `name:version` for every version."""
    entries = list(entries)
    names = list(dict.fromkeys(entry.name for entry in entries))
    return {"models": names + [f"{e.name}:{e.version}" for e in entries]}
