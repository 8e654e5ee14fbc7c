"""marshmallow schemas of the REST envelopes; tensor `data` stays `Raw` for numpy to read.

Unknown envelope keys are ignored (EXCLUDE): tritonclient's and kserve's clients send
`model_name` and `id` at the top level. Schema instances are created once, here.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from app.codec.routed import OPERATIONS
from app.errors import InvalidInput
from config.schemas import flatten_messages


class _Envelope(Schema):
    class Meta:
        unknown = EXCLUDE


class RequestedOutputSchema(_Envelope):
    name = fields.String(required=True)
    parameters = fields.Dict(keys=fields.String())


class InputTensorSchema(_Envelope):
    name = fields.String(required=True)
    shape = fields.List(fields.Integer(strict=True, validate=validate.Range(min=0)), required=True)
    datatype = fields.String(required=True)
    parameters = fields.Dict(keys=fields.String())
    data = fields.Raw(metadata={"description": "flat or nested, row-major tensor data"})


class InferRequestSchema(_Envelope):
    id = fields.String()
    parameters = fields.Dict(keys=fields.String())
    inputs = fields.List(
        fields.Raw(),
        required=True,
        metadata={"description": "OIP tensors, or MLRun plain rows"},
    )
    outputs = fields.List(fields.Nested(RequestedOutputSchema))


class InferDictRequestSchema(_Envelope):
    id = fields.String()
    parameters = fields.Dict(keys=fields.String())
    inputs = fields.Raw(
        required=True, metadata={"description": "a {feature: value} object or a list of them"}
    )


class V1RequestSchema(_Envelope):
    instances = fields.Raw(metadata={"description": "rows for the model's first input"})
    inputs = fields.Raw(metadata={"description": "same as instances; wins when both are given"})


class RoutedRequestSchema(Schema):
    """A body-routed request (`POST /`, `POST /v2/infer`, stream messages): the routing keys,
    then the body of the operation (OIP v2, MLRun rows or records, or v1 `instances`)."""

    class Meta:
        unknown = "include"  # marshmallow.INCLUDE: the operation's own body keys

    model = fields.String(
        required=True, metadata={"description": "model name, or 'name:version'", "example": "iris"}
    )
    version = fields.String(metadata={"description": "model version; default the latest ready"})
    operation = fields.String(
        validate=validate.OneOf(OPERATIONS),
        metadata={"description": "what to do; default infer"},
    )
    id = fields.String(metadata={"description": "request id, answered back; made when absent"})
    inputs = fields.Raw(metadata={"description": "OIP tensors, MLRun rows or infer_dict records"})
    instances = fields.Raw(metadata={"description": "KServe v1 rows; answered in v1 form"})


class StrictBoolean(fields.Boolean):
    """JSON `true`/`false` only: marshmallow's Boolean also takes 0, 1 and "yes" (0 == False)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class RepositoryIndexRequestSchema(_Envelope):
    ready = StrictBoolean(load_default=False)


class RepositoryRequestSchema(_Envelope):
    parameters = fields.Dict(keys=fields.String(), load_default=dict)


class ErrorSchema(Schema):
    error = fields.Raw(
        required=True, metadata={"description": "a message, or {code, message, details}"}
    )


INFER_REQUEST = InferRequestSchema()
INPUT_TENSORS = InputTensorSchema(many=True)
INFER_DICT_REQUEST = InferDictRequestSchema()
V1_REQUEST = V1RequestSchema()
REPOSITORY_INDEX_REQUEST = RepositoryIndexRequestSchema()
REPOSITORY_REQUEST = RepositoryRequestSchema()


def load(schema: Schema, payload: Any) -> Any:
    """Validate a parsed body; raises `InvalidInput` naming every offending key path."""
    if not isinstance(payload, dict) and not schema.many:
        raise InvalidInput("request body must be a JSON object")
    try:
        return schema.load(payload)
    except ValidationError as exc:
        raise InvalidInput("; ".join(flatten_messages(exc.messages))) from None


# Response bodies. The views build these with dicts and orjson (fast path); the classes exist so
# the OpenAPI document (blueprints/openapi.py) describes every answer from one place. Without
# `unknown = EXCLUDE` they document `additionalProperties: false`: schemathesis then catches a
# view that grows a key the document does not list.


class AliveSchema(Schema):
    status = fields.String(required=True, metadata={"example": "alive"})
    name = fields.String(required=True, metadata={"description": "server.name of the config"})


class ModelListSchema(Schema):
    models = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "model names (v2 adds `name:version` for every version)"},
    )


class ModelReadySchema(Schema):
    name = fields.String(required=True)
    ready = fields.Boolean(required=True)


class V1PredictResponseSchema(Schema):
    predictions = fields.List(
        fields.Raw(),
        required=True,
        metadata={"description": "the model's first output, one item per instance"},
    )


class ServerMetadataSchema(Schema):
    name = fields.String(required=True)
    version = fields.String(required=True)
    extensions = fields.List(fields.String(), required=True)


class HealthSchema(ServerMetadataSchema):
    live = fields.Boolean(required=True)
    ready = fields.Boolean(required=True, metadata={"description": "initial loading is over"})


class LiveSchema(Schema):
    live = fields.Boolean(required=True)


class ReadySchema(Schema):
    ready = fields.Boolean(required=True)


class TensorMetadataSchema(Schema):
    name = fields.String(required=True)
    datatype = fields.String(required=True, metadata={"example": "FP32"})
    shape = fields.List(
        fields.Integer(), required=True, metadata={"description": "-1 marks a variable dimension"}
    )


class ModelMetadataSchema(Schema):
    name = fields.String(required=True)
    versions = fields.List(fields.String(), required=True)
    platform = fields.String(required=True)
    inputs = fields.List(fields.Nested(TensorMetadataSchema), required=True)
    outputs = fields.List(fields.Nested(TensorMetadataSchema), required=True)
    explanation_outputs = fields.List(
        fields.Nested(TensorMetadataSchema),
        metadata={"description": "what the explain routes add to `outputs`; absent if none"},
    )


class OutputTensorSchema(Schema):
    name = fields.String(required=True)
    datatype = fields.String(required=True)
    shape = fields.List(fields.Integer(), required=True)
    parameters = fields.Dict(
        keys=fields.String(),
        required=True,
        metadata={"description": "`binary_data_size` when the data follows the JSON as bytes"},
    )
    data = fields.Raw(metadata={"description": "flat, row-major; absent for a binary output"})


class InferResponseSchema(Schema):
    model_name = fields.String(required=True)
    model_version = fields.String(required=True)
    id = fields.String(required=True)
    parameters = fields.Dict(keys=fields.String(), required=True)
    outputs = fields.List(fields.Nested(OutputTensorSchema), required=True)


class RepositoryIndexEntrySchema(Schema):
    name = fields.String(required=True)
    version = fields.String(required=True)
    state = fields.String(
        required=True,
        validate=validate.OneOf(["LOADING", "READY", "UNAVAILABLE", "UNLOADING"]),
    )
    reason = fields.String(metadata={"description": "why the version is not ready"})


class EmptySchema(Schema):
    """`{}`: the repository's load and unload answer nothing else."""


class DurationStatSchema(Schema):
    count = fields.Integer(required=True)
    ns = fields.Integer(required=True, metadata={"description": "cumulative nanoseconds"})


class InferenceStatsSchema(Schema):
    success = fields.Nested(DurationStatSchema, required=True)
    fail = fields.Nested(DurationStatSchema, required=True)
    queue = fields.Nested(DurationStatSchema, required=True)
    compute_input = fields.Nested(DurationStatSchema, required=True)
    compute_infer = fields.Nested(DurationStatSchema, required=True)
    compute_output = fields.Nested(DurationStatSchema, required=True)
    cache_hit = fields.Nested(DurationStatSchema, required=True)
    cache_miss = fields.Nested(DurationStatSchema, required=True)


class BatchStatsSchema(Schema):
    batch_size = fields.Integer(required=True)
    compute_input = fields.Nested(DurationStatSchema, required=True)
    compute_infer = fields.Nested(DurationStatSchema, required=True)
    compute_output = fields.Nested(DurationStatSchema, required=True)


class ModelStatisticsSchema(Schema):
    name = fields.String(required=True)
    version = fields.String(required=True)
    last_inference = fields.Integer(required=True, metadata={"description": "ms since the epoch"})
    inference_count = fields.Integer(required=True)
    execution_count = fields.Integer(required=True)
    inference_stats = fields.Nested(InferenceStatsSchema, required=True)
    batch_stats = fields.List(fields.Nested(BatchStatsSchema), required=True)
    memory_usage = fields.List(fields.Raw(), required=True)
    response_stats = fields.Dict(keys=fields.String(), required=True)


class StatisticsSchema(Schema):
    model_stats = fields.List(fields.Nested(ModelStatisticsSchema), required=True)


class ModelConfigSchema(Schema):
    """Triton's model configuration; only the keys its clients read are listed."""

    class Meta:
        unknown = "include"  # marshmallow.INCLUDE: the document allows the keys not listed

    name = fields.String(required=True)
    platform = fields.String(required=True)
    backend = fields.String(required=True)
    max_batch_size = fields.Integer(required=True)
    input = fields.List(fields.Dict(keys=fields.String()), required=True)
    output = fields.List(fields.Dict(keys=fields.String()), required=True)


class V1ExplainResponseSchema(Schema):
    predictions = fields.List(fields.Raw(), required=True)
    explanations = fields.List(
        fields.Dict(keys=fields.String()),
        required=True,
        metadata={"description": "one object per instance: {explanation output: its row}"},
    )
