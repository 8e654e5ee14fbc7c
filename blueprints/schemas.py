"""marshmallow schemas of the REST answers and the error body, for the OpenAPI document.

The request envelopes are the codec's (`app.codec.schemas`), which validates them.
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from app.codec.routed import OPERATIONS


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


class ErrorSchema(Schema):
    """Every error with `errors: oip` (the default): what tritonclient and kserve's clients read."""

    error = fields.String(required=True, metadata={"description": "what went wrong"})


class ErrorDetailsSchema(Schema):
    class Meta:
        unknown = INCLUDE  # room for more machine-readable facts beside the reason

    reason = fields.String(
        required=True,
        metadata={
            "description": "machine-readable, one per failure (the README's Errors table)",
            "example": "model_not_found",
        },
    )


class ErrorBodySchema(Schema):
    code = fields.Integer(
        required=True, metadata={"description": "the HTTP status", "example": 404}
    )
    message = fields.String(required=True, metadata={"example": "model 'nope' not found"})
    details = fields.Nested(ErrorDetailsSchema, required=True)


class DetailedErrorSchema(Schema):
    """Every error with `errors: detailed`."""

    error = fields.Nested(ErrorBodySchema, required=True)


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
