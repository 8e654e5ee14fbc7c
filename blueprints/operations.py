"""What each REST endpoint reads and answers, for the OpenAPI document (blueprints/openapi.py).

Keyed by Flask endpoint, so an alias (`/predict` for `/infer`) or a `/versions/<version>` twin
shares its entry. Error statuses list only what the view can really answer (DESIGN §5):
schemathesis holds the server to them. 405 is not listed anywhere: no documented method answers
it, and the server answers it (with `Allow`) for the methods the document does not list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from marshmallow import Schema

from app.codec import schemas as requests
from app.errors import error_rows
from blueprints import schemas

TAGS: dict[str, str] = {
    "Health": "Liveness and readiness, public even when auth is configured",
    "Metadata": "What the server and its models are, and what they take",
    "Inference": "Open Inference Protocol (KServe v2, Triton) inference, and MLRun's plain rows",
    "MLRun": "MLRun's feature-dictionary form",
    "KServe v1": "TensorFlow-Serving style `instances` in, `predictions` out",
    "Explain": "Explanations (KServe v1 `:explain`, MLRun v2 `/explain`)",
    "Model repository": "Triton's model repository extension",
    "Statistics": "Triton's statistics extension",
    "Metrics": "Prometheus exposition, public even when auth is configured",
    "Docs": "This document and its viewer",
}

#: Each error status a view may answer, with what it means: read from the error hierarchy.
ERRORS: dict[int, str] = error_rows()

#: Path parameters shared by many routes, documented once as components.
PARAMETERS: dict[str, dict[str, Any]] = {
    "name": {
        "required": True,
        "description": "Model name, as in the config file",
        "schema": {"type": "string"},
        "example": "iris",
    },
    "version": {
        "required": True,
        "description": "Model version; paths without one use the highest configured version",
        "schema": {"type": "string"},
        "example": "1",
    },
}

BINARY_HEADER: dict[str, Any] = {
    "in": "header",
    "name": "Inference-Header-Content-Length",
    "required": False,
    "description": (
        "Binary tensor extension: the length of the JSON part; raw tensor bytes follow it "
        "(inputs then carry `parameters.binary_data_size` instead of `data`)"
    ),
    "schema": {"type": "integer", "minimum": 0},
}

_IRIS_ROW = [6.8, 2.8, 4.8, 1.4]


@dataclass(frozen=True)
class Operation:
    """One endpoint's contract: its request body, its 200 answer and its error statuses."""

    tag: str
    content: Mapping[str, Any]  # the 200 answer: media type -> {"schema": ...}
    errors: tuple[int, ...] = ()
    body: type[Schema] | None = None  # the JSON envelope the view validates
    body_required: bool = True  # False where an empty body means "defaults" (tritonclient)
    body_example: Any = None  # shown by Swagger UI, and sent by schemathesis first
    headers: tuple[Mapping[str, Any], ...] = ()  # request header parameters
    success_description: str = "OK"
    success_headers: Mapping[str, Any] | None = None
    #: The body names the model (the routed form), so a path without parameters can answer 404.
    model_in_body: bool = False


def _json(schema: type[Schema] | Schema | dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_BODY_ERRORS = (400, 413, 415)
_MODEL_ERRORS = (404, 503)
_INFER = Operation(
    tag="Inference",
    content={
        **_json(schemas.InferResponseSchema),
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
    errors=(*_BODY_ERRORS, 403, 404, 500, 503),
    body=requests.InferRequestSchema,
    body_example={
        "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": _IRIS_ROW}]
    },
    headers=(BINARY_HEADER,),
    success_description=(
        "The outputs; `application/octet-stream` when an output was asked for as binary "
        "(`binary_data`), its JSON part as long as `Inference-Header-Content-Length` says"
    ),
    success_headers={
        "Inference-Header-Content-Length": {
            "description": "Length of the JSON part of a binary answer",
            "schema": {"type": "integer"},
        }
    },
)
_INFER_DICT = Operation(
    tag="MLRun",
    content=_json(schemas.InferResponseSchema),
    errors=(*_BODY_ERRORS, 404, 500, 503),
    body=requests.InferDictRequestSchema,
    body_example={
        "inputs": [
            {"sepal_length": 6.8, "sepal_width": 2.8, "petal_length": 4.8, "petal_width": 1.4}
        ]
    },
)
_EXPLAIN_V2 = replace(
    _INFER,
    tag="Explain",
    errors=(*_INFER.errors, 501),
    success_description=(
        "The predictions, then the explanation tensors (output parameter `explanation: true`)"
    ),
)

OPERATIONS: dict[str, Operation] = {
    "v1.root": Operation("Health", _json(schemas.AliveSchema)),
    "v1.list_models": Operation("KServe v1", _json(schemas.ModelListSchema)),
    "v1.model_ready": Operation("KServe v1", _json(schemas.ModelReadySchema), _MODEL_ERRORS),
    "v1.predict": Operation(
        "KServe v1",
        _json(schemas.V1PredictResponseSchema),
        (*_BODY_ERRORS, 404, 500, 503),
        body=requests.V1RequestSchema,
        body_example={"instances": [_IRIS_ROW, [6.0, 3.4, 4.5, 1.6]]},
    ),
    "v2.server_metadata": Operation("Metadata", _json(schemas.ServerMetadataSchema)),
    "v2.health": Operation("Health", _json(schemas.HealthSchema)),
    "v2.live": Operation("Health", _json(schemas.LiveSchema)),
    "v2.ready": Operation("Health", _json(schemas.ReadySchema), (503,)),
    "v2.list_models": Operation("Metadata", _json(schemas.ModelListSchema)),
    "v2.model_metadata": Operation("Metadata", _json(schemas.ModelMetadataSchema), _MODEL_ERRORS),
    "v2.model_ready": Operation("Health", _json(schemas.ModelReadySchema), _MODEL_ERRORS),
    "v2.infer": _INFER,
    "v2.infer_dict": _INFER_DICT,
    "routed.routed": Operation(
        "Inference",
        {
            **_json({"type": "object"}),
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
        (*_INFER.errors, 501),
        body=schemas.RoutedRequestSchema,
        body_example={"model": "iris", "operation": "infer", "inputs": [_IRIS_ROW]},
        model_in_body=True,
        headers=(BINARY_HEADER,),
        success_description=(
            "What the URL form of the operation answers: the v2 response, v1 predictions, "
            "metadata or readiness"
        ),
    ),
    "config_ext.model_config": Operation(
        "Metadata", _json(schemas.ModelConfigSchema), _MODEL_ERRORS
    ),
    "repository.repository_index": Operation(
        "Model repository",
        _json(schemas.RepositoryIndexEntrySchema(many=True)),
        _BODY_ERRORS,
        body=requests.RepositoryIndexRequestSchema,
        body_required=False,
        body_example={"ready": True},
    ),
    "repository.load_model": Operation(
        "Model repository",
        _json(schemas.EmptySchema),
        (*_BODY_ERRORS, 404, 503),
        body=requests.RepositoryRequestSchema,
        body_required=False,
        body_example={},
    ),
    "repository.unload_model": Operation(
        "Model repository",
        _json(schemas.EmptySchema),
        (*_BODY_ERRORS, 404, 503),
        body=requests.RepositoryRequestSchema,
        body_required=False,
        body_example={},
    ),
    "repository.statistics": Operation("Statistics", _json(schemas.StatisticsSchema), (404, 503)),
    "explain.explain_v1": Operation(
        "Explain",
        _json(schemas.V1ExplainResponseSchema),
        (*_BODY_ERRORS, 404, 500, 501, 503),
        body=requests.V1RequestSchema,
        body_example={"instances": [_IRIS_ROW]},
    ),
    "explain.explain_v2": _EXPLAIN_V2,
    "metrics.scrape": Operation("Metrics", {"text/plain": {"schema": {"type": "string"}}}),
    "docs.openapi": Operation("Docs", _json({"type": "object"})),
    "docs.ui": Operation("Docs", {"text/html": {"schema": {"type": "string"}}}),
}
# The `/versions/<version>` twins that `blueprints.v2._model_routes` registers.
OPERATIONS |= {
    f"{endpoint}_versioned": OPERATIONS[endpoint]
    for endpoint in ("v2.model_metadata", "v2.model_ready", "v2.infer", "v2.infer_dict")
}
