"""marshmallow schemas of the REST request envelopes; tensor `data` stays `Raw` for numpy.

They are the contract: `load` phrases every validation error, and the OpenAPI document
(`blueprints.operations`) describes the request bodies with them. Unknown envelope keys are
ignored (EXCLUDE): tritonclient's and kserve's clients send `model_name` and `id` at the top
level. Schema instances are created once, here.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

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
