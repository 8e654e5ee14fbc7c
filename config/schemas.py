"""marshmallow schemas of the configuration file (DESIGN §2).

An unknown key is not an error of the file (DESIGN §2: the server still starts): `strip_unknown`
takes it out, with its full path, before a schema loads the rest. The schemas themselves still
refuse unknown keys, so a key that `strip_unknown` missed could never slip through unread.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from vocabulary.datatypes import DATATYPES

RUNTIMES = ("sklearn", "xgboost", "lightgbm", "onnx", "catboost", "mlflow", "python")
#: Layouts of other servers' model repositories that `repositories:` mounts (app/repositories).
REPOSITORY_FORMATS = ("triton", "mlserver", "mlflow")
_PORT = validate.Range(min=0, max=65535)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class TensorSchema(_Strict):
    name = fields.String(required=True, metadata={"description": "input or output name"})
    datatype = fields.String(
        required=True, validate=validate.OneOf(sorted(DATATYPES)), metadata={"description": "OIP"}
    )
    shape = fields.List(
        fields.Integer(validate=validate.Range(min=-1)),
        required=True,
        metadata={"description": "-1 marks a variable dimension"},
    )


class ExplainSchema(_Strict):
    background = fields.String(metadata={"description": ".npy or CSV rows of background data"})
    # Defaults: `config.settings.ExplainSettings`, the one place they are set.
    samples = fields.Integer(
        validate=validate.Range(min=1),
        metadata={"description": "coalitions per explained row; 2^features or more is exact"},
    )
    time_limit_ms = fields.Float(
        validate=validate.Range(min=1),
        metadata={"description": "a model-agnostic explanation gives up (400) after this long"},
    )


class ModelSchema(_Strict):
    name = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.\-]+$"))
    version = fields.String(
        load_default="1",
        validate=validate.Regexp(r"^[A-Za-z0-9_.\-]+$"),
        metadata={"description": "several entries with one name = several versions"},
    )
    runtime = fields.String(required=True, validate=validate.OneOf(RUNTIMES))
    uri = fields.String(
        metadata={"description": "model file: a path relative to the config file, or a URI"}
    )
    class_ = fields.String(
        data_key="class",
        validate=validate.Regexp(r"^[\w.]+:\w+$", error="must be 'module:Class'"),
        metadata={"description": "runtime python: the user's Model subclass"},
    )
    path = fields.String(metadata={"description": "folder added to sys.path for `class`"})
    inputs = fields.List(fields.Nested(TensorSchema), metadata={"description": "overrides"})
    outputs = fields.List(fields.Nested(TensorSchema), metadata={"description": "overrides"})
    features = fields.List(
        fields.String(), metadata={"description": "feature order of the first input (infer_dict)"}
    )
    max_batch_size = fields.Integer(load_default=0, validate=validate.Range(min=0))
    batch_delay_ms = fields.Float(load_default=2.0, validate=validate.Range(min=0))
    timeout_ms = fields.Float(
        load_default=0.0,
        validate=validate.Range(min=0),
        metadata={"description": "a call that takes longer answers 504; 0 = no limit of its own"},
    )
    max_concurrency = fields.Integer(
        load_default=64,
        validate=validate.Range(min=1),
        metadata={"description": "calls in the model at once per worker, hung ones included"},
    )
    max_queue = fields.Integer(
        load_default=128,
        validate=validate.Range(min=0),
        metadata={"description": "requests waiting for a call; past it, 503 with Retry-After"},
    )
    parameters = fields.Dict(
        keys=fields.String(), load_default=dict, metadata={"description": "free-form, for load()"}
    )
    explain = fields.Nested(ExplainSchema, metadata={"description": "explainer settings"})

    @validates_schema
    def _runtime_needs(self, data: dict[str, Any], **_: Any) -> None:
        if data["runtime"] == "python" and "class_" not in data:
            raise ValidationError("runtime 'python' needs 'class: module:Class'", "class")
        if data["runtime"] != "python" and "uri" not in data:
            raise ValidationError(f"runtime '{data['runtime']}' needs 'uri'", "uri")


class HttpSchema(_Strict):
    host = fields.String(load_default="0.0.0.0")
    port = fields.Integer(load_default=8080, validate=_PORT)
    header_timeout_s = fields.Float(
        load_default=10.0,
        validate=validate.Range(min=0.01),
        metadata={"description": "a request's headers must all arrive within this of the first"},
    )
    body_timeout_s = fields.Float(
        load_default=30.0,
        validate=validate.Range(min=0.01),
        metadata={"description": "the longest pause in a body, or in reading the answer"},
    )


class GrpcSchema(_Strict):
    port = fields.Integer(load_default=8081, validate=_PORT)
    stream_idle_timeout_s = fields.Float(
        load_default=60.0,
        validate=validate.Range(min=0.01),
        metadata={"description": "a ModelStreamInfer that sends no request this long ends"},
    )


class OmiSchema(_Strict):
    model = fields.String(load_default=None, allow_none=True)
    port = fields.Integer(load_default=45000, validate=_PORT)
    require_auth = fields.Boolean(load_default=True)
    allow_shutdown = fields.Boolean(load_default=False)


class AuthSchema(_Strict):
    bearer_tokens = fields.List(fields.String(), load_default=list)
    api_keys = fields.List(fields.String(), load_default=list)


class LimitsSchema(_Strict):
    max_request_bytes = fields.Integer(
        load_default=64 * 1024 * 1024, validate=validate.Range(min=1024)
    )
    data_roots = fields.List(fields.String(), load_default=list)


class StorageSchema(_Strict):
    # Defaults: `config.settings.StorageSettings`, the one place they are set.
    cache_dir = fields.String(
        metadata={"description": "where fetched models are kept; default $XDG_CACHE_HOME/modelport"}
    )
    max_bytes = fields.Integer(
        validate=validate.Range(min=1),
        metadata={"description": "a model or repository larger than this is refused"},
    )
    timeout_s = fields.Float(
        validate=validate.Range(min=0.1),
        metadata={"description": "one fetch gives up after this long (and a silent connection)"},
    )
    s3_endpoint_url = fields.String(
        metadata={"description": "an S3-compatible store; default AWS_ENDPOINT_URL(_S3)"}
    )


class ServerSchema(_Strict):
    name = fields.String(load_default="modelport")
    http = fields.Nested(HttpSchema, load_default=lambda: HttpSchema().load({}))
    grpc = fields.Nested(GrpcSchema, load_default=lambda: GrpcSchema().load({}))
    omi = fields.Nested(OmiSchema, load_default=lambda: OmiSchema().load({}))
    auth = fields.Nested(AuthSchema, load_default=None, allow_none=True)
    limits = fields.Nested(LimitsSchema, load_default=lambda: LimitsSchema().load({}))
    storage = fields.Nested(StorageSchema, load_default=dict)
    errors = fields.String(load_default="oip", validate=validate.OneOf(["oip", "detailed"]))
    access_log = fields.Boolean(
        load_default=True, metadata={"description": "one JSON line per request"}
    )


class RepositorySchema(_Strict):
    format = fields.String(
        required=True,
        validate=validate.OneOf(REPOSITORY_FORMATS),
        metadata={"description": "whose layout: triton | mlserver | mlflow"},
    )
    path = fields.String(
        required=True,
        metadata={"description": "the repository folder, relative to the config, or a URI"},
    )


class TopSchema(_Strict):
    server = fields.Raw(load_default=dict)
    models = fields.List(fields.Raw(), load_default=list)
    repositories = fields.List(fields.Nested(RepositorySchema), load_default=list)
    streams = fields.Raw(load_default=list)  # validated by config/streams.py


def strip_unknown(schema: Schema, data: Any, path: str) -> tuple[Any, list[str]]:
    """`data` without the keys `schema` does not declare, and those keys' full paths.

    Paths are written as users read them: `server.grpc.prot`, `models[2].bar`,
    `models[0].inputs[1].dtype`. Values that are not mappings pass unchanged, so the schema
    reports their type.
    """
    if not isinstance(data, dict):
        return data, []
    declared = {field.data_key or name: field for name, field in schema.fields.items()}
    kept: dict[Any, Any] = {}
    unknown: list[str] = []
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        field = declared.get(key) if isinstance(key, str) else None
        if field is None:
            unknown.append(where)
            continue
        kept[key], inner = _strip_field(field, value, where)
        unknown.extend(inner)
    return kept, unknown


def _strip_field(field: fields.Field[Any], value: Any, where: str) -> tuple[Any, list[str]]:
    if isinstance(field, fields.Nested) and isinstance(field.schema, Schema):
        return strip_unknown(field.schema, value, where)
    inner = field.inner if isinstance(field, fields.List) else None
    if isinstance(inner, fields.Nested) and isinstance(value, list):
        items = [strip_unknown(inner.schema, item, f"{where}[{i}]") for i, item in enumerate(value)]
        return [item for item, _ in items], [path for _, paths in items for path in paths]
    return value, []


def flatten_messages(messages: Any, prefix: str = "") -> list[str]:
    """marshmallow's nested error dict as `key.path: message` lines."""
    if isinstance(messages, dict):
        lines: list[str] = []
        for key, value in messages.items():
            name = prefix if key == "_schema" else (f"{prefix}.{key}" if prefix else str(key))
            lines.extend(flatten_messages(value, name))
        return lines
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{prefix}: {m}" if prefix else m for m in messages]
    if isinstance(messages, list):
        return [line for m in messages for line in flatten_messages(m, prefix)]
    return [f"{prefix}: {messages}"]
