"""Load and validate the configuration file into frozen settings (DESIGN §2).

`load_settings` is a pure function of a path and an environment, so tests pass a dict. An unknown
key anywhere is ignored and listed in `Settings.warnings` with its full path (the server still
starts, DESIGN §2). A file that cannot be used at all (unreadable, not YAML, no `models`, a bad
value in the `server` section) raises `ConfigError` with one line naming the file and the key; a
problem in one model entry only marks that model as failed, by name, and the others serve.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from marshmallow import ValidationError

from config.interpolate import InterpolationError, interpolate
from config.schemas import ModelSchema, ServerSchema, TopSchema, flatten_messages, strip_unknown
from config.streams import STREAM_SCHEMA, StreamSettings, load_streams
from vocabulary.tensor_spec import TensorSpec

#: URI schemes `app.storage` fetches into its cache; `file://` is a local path, read in place.
REMOTE_SCHEMES = ("s3", "gs", "gcs", "http", "https")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
DEFAULT_CONFIG = Path(__file__).resolve().parent / "models.yaml"
#: Set by gunicorn.conf.py in the master to the file whose warnings it logged, so that each
#: worker's `create_app` does not log them again: one line per unknown key, not one per process.
REPORTED_ENV = "MODELPORT_CONFIG_REPORTED"
_MODEL_SCHEMA = ModelSchema()
_SERVER_SCHEMA = ServerSchema()
_TOP_SCHEMA = TopSchema()


class ConfigError(Exception):
    """The configuration file cannot be used; the message is one line naming the file and key."""


@dataclass(frozen=True)
class ExplainSettings:
    """How a model is explained (issue: explanations)."""

    background: Path | None = None  # .npy or CSV rows the explainer compares against
    samples: int = 256  # coalitions per explained row (each against every background row)
    time_limit_ms: float = 5000.0  # a model-agnostic explanation gives up after this long


@dataclass(frozen=True)
class ModelSettings:
    """One `models:` entry: what to load, how, and what it declares."""

    name: str
    version: str = "1"  # several entries with one name are several versions
    runtime: str = "python"  # sklearn | xgboost | lightgbm | onnx | catboost | mlflow | python
    uri: Path | None = None  # model file, resolved against the config file's folder
    # A remote `uri:` (s3://, gs://, http(s)://) as written; app.storage fetches it into the
    # cache at load, and `uri` is None until then.
    storage_uri: str | None = None
    class_path: str | None = None  # runtime python: "module:Class"
    path: Path | None = None  # folder added to sys.path before importing class_path
    inputs: tuple[TensorSpec, ...] | None = None  # overrides what the runtime reads
    outputs: tuple[TensorSpec, ...] | None = None
    features: tuple[str, ...] | None = None  # feature order of the first input (infer_dict)
    max_batch_size: int = 0  # 0 = no dynamic batching
    batch_delay_ms: float = 2.0  # how long a batch waits for company
    timeout_ms: float = 0.0  # a call that takes longer answers 504; 0 = only the client's deadline
    max_concurrency: int = 64  # calls in the model at once per worker, hung ones included
    max_queue: int = 128  # requests waiting for a call slot; past it, 503 with Retry-After
    parameters: Mapping[str, Any] = field(default_factory=dict)  # free-form, for load()
    explain: ExplainSettings = field(default_factory=ExplainSettings)
    error: str | None = None  # why this entry could not be read; the model is then FAILED
    # Read from a repository (`repositories:`) instead of a `models:` entry: which one.
    repository: RepositorySettings | None = None
    # Triton's configuration of a model read from a Triton repository, in its JSON form: what
    # `/v2/models/{m}/config` answers for it.
    model_config: Mapping[str, Any] | None = None
    # Tensor name -> the shape the model itself takes or gives where it differs from the
    # declared one (Triton's `reshape`; a batched model's batch dimension is the leading -1).
    reshape: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    # False: listed but loaded only when the repository API asks (MLServer's
    # `load_models_at_startup: false`).
    load_at_start: bool = True


@dataclass(frozen=True)
class StorageSettings:
    """How remote `uri:`s and repository `path:`s are fetched (`server.storage`)."""

    cache_dir: Path | None = None  # None: $XDG_CACHE_HOME/modelport (~/.cache/modelport)
    max_bytes: int = 8 * 1024**3  # a model or repository larger than this is refused
    timeout_s: float = 600.0  # one fetch gives up after this long (a silent connection too)
    s3_endpoint_url: str | None = None  # S3-compatible store; None: AWS_ENDPOINT_URL(_S3)


@dataclass(frozen=True)
class RepositorySettings:
    """One `repositories:` entry: a folder of models in another server's layout."""

    format: str  # triton | mlserver | mlflow
    path: str  # as written (interpolated); app.repositories.local_folder makes it a folder
    base: Path  # the config file's folder, which a relative `path` is relative to
    storage: StorageSettings = field(default_factory=StorageSettings)  # for a URI


@dataclass(frozen=True)
class HttpSettings:
    host: str = "0.0.0.0"  # gunicorn binds here unless told otherwise
    port: int = 8080
    header_timeout_s: float = 10.0  # a request's headers must all arrive this soon
    body_timeout_s: float = 30.0  # the longest a body (or the answer's reader) may pause


@dataclass(frozen=True)
class GrpcSettings:
    port: int = 8081  # 0 = no gRPC sidecar
    stream_idle_timeout_s: float = 60.0  # a ModelStreamInfer without a request this long ends


@dataclass(frozen=True)
class OmiSettings:
    model: str | None = None  # the model OMI serves; None = the first configured model
    port: int = 45000  # Chassis's own port, served too; 0 = OMI only on grpc.port
    require_auth: bool = True  # with auth configured; False lets the stock client in
    allow_shutdown: bool = False  # Shutdown without credentials


@dataclass(frozen=True)
class AuthSettings:
    bearer_tokens: tuple[str, ...] = ()  # accepted `Authorization: Bearer` values
    api_keys: tuple[str, ...] = ()  # accepted `X-API-Key` values


@dataclass(frozen=True)
class LimitsSettings:
    max_request_bytes: int = 64 * 1024 * 1024  # body limit, compressed and decompressed
    data_roots: tuple[Path, ...] = ()  # folders a data_url may read from; empty = off


@dataclass(frozen=True)
class ServerSettings:
    name: str = "modelport"  # GET /v2 and GET / report it
    http: HttpSettings = field(default_factory=HttpSettings)
    grpc: GrpcSettings = field(default_factory=GrpcSettings)
    omi: OmiSettings = field(default_factory=OmiSettings)
    auth: AuthSettings | None = None  # None = open
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    errors: str = "oip"  # oip: {"error": msg} | detailed: {"error": {code, message, details}}
    access_log: bool = True  # one JSON line per request (model, protocol, status, duration)


@dataclass(frozen=True)
class Settings:
    """The whole configuration: the server, and every model entry (broken ones included)."""

    server: ServerSettings = field(default_factory=ServerSettings)
    models: tuple[ModelSettings, ...] = ()
    repositories: tuple[RepositorySettings, ...] = ()  # mounted beside `models`
    streams: tuple[StreamSettings, ...] = ()  # broker consumers (config/streams.py)
    source: Path | None = None  # the file these settings came from
    warnings: tuple[str, ...] = ()  # one line per ignored unknown key, naming its full path


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The configuration file to use: `MODELPORT_CONFIG`, or the bundled examples."""
    environ = os.environ if environ is None else environ
    value = environ.get("MODELPORT_CONFIG")
    return Path(value) if value else DEFAULT_CONFIG


def load_settings(
    path: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, interpolate and validate a configuration file.

    Raises `ConfigError` (one line that names the file) when the file is missing, unreadable or
    not YAML, lists no models, or its server section is wrong; a broken model entry is returned
    with its `error` set instead, and an unknown key becomes one of `Settings.warnings`.
    """
    environ = dict(os.environ if environ is None else environ)
    path = Path(path) if path is not None else config_path(environ)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file '{path}' cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {_yaml_problem(exc)}") from None
    try:
        settings = settings_from_dict(
            {} if raw is None else raw, path.resolve().parent, environ, path
        )
    except ConfigError as exc:
        raise ConfigError(f"config file '{path}': {exc}") from None
    return replace(
        settings, warnings=tuple(f"config file '{path}': {line}" for line in settings.warnings)
    )


def settings_from_dict(
    raw: Any, base: Path, environ: Mapping[str, str], source: Path | None = None
) -> Settings:
    """Validate an already parsed configuration tree; paths resolve against `base`.

    Raises `ConfigError` for a tree that cannot be served (see `load_settings`).
    """
    if not isinstance(raw, dict):
        raise ConfigError("the top level must be a mapping with 'server' and 'models'")
    raw, unknown = strip_unknown(_TOP_SCHEMA, raw, "")
    server_raw, server_unknown = strip_unknown(_SERVER_SCHEMA, raw.get("server") or {}, "server")
    unknown.extend(server_unknown)
    try:
        top = _TOP_SCHEMA.load(raw)
    except ValidationError as exc:
        raise ConfigError("; ".join(flatten_messages(exc.messages))) from None
    try:
        server = _server(_SERVER_SCHEMA.load(interpolate(server_raw, environ, "server")), base)
    except ValidationError as exc:
        raise ConfigError("; ".join(flatten_messages(exc.messages, "server"))) from None
    except InterpolationError as exc:
        raise ConfigError(str(exc)) from None
    if not top["models"] and not top["repositories"]:
        raise ConfigError(
            "models: no model is configured; list at least one under 'models:' "
            "or a folder of them under 'repositories:'"
        )
    try:
        repositories = tuple(
            RepositorySettings(entry["format"], entry["path"], base, server.storage)
            for entry in interpolate(top["repositories"], environ, "repositories")
        )
    except InterpolationError as exc:
        raise ConfigError(str(exc)) from None
    for index, repository in enumerate(repositories):
        scheme = uri_scheme(repository.path)
        if scheme is not None and scheme != "file" and scheme not in REMOTE_SCHEMES:
            raise ConfigError(f"repositories[{index}].path: {unsupported_scheme(repository.path)}")
    streams_raw = top["streams"]
    if isinstance(streams_raw, list):  # unknown keys of a stream are warnings, as elsewhere
        stripped = [
            strip_unknown(STREAM_SCHEMA, entry, f"streams[{index}]")
            for index, entry in enumerate(streams_raw)
        ]
        streams_raw = [entry for entry, _ in stripped]
        unknown.extend(where for _, paths in stripped for where in paths)
    try:
        streams = load_streams(interpolate(streams_raw, environ, "streams"))
    except ValidationError as exc:
        raise ConfigError("; ".join(flatten_messages(exc.messages))) from None
    except InterpolationError as exc:
        raise ConfigError(str(exc)) from None
    models: list[ModelSettings] = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(top["models"]):
        entry, entry_unknown = strip_unknown(_MODEL_SCHEMA, entry, f"models[{index}]")
        unknown.extend(entry_unknown)
        model = _model(entry, index, base, environ)
        key = (model.name, model.version)
        if key in seen and model.error is None:
            model = ModelSettings(
                name=model.name,
                version=model.version,
                error=f"model '{model.name}' version '{model.version}' is configured twice",
            )
        seen.add(key)
        models.append(model)
    warnings = tuple(f"{where}: unknown key, ignored" for where in unknown)
    return Settings(
        server=server,
        models=tuple(models),
        repositories=repositories,
        streams=streams,
        source=source,
        warnings=warnings,
    )


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: the problem and where it is."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def _model(entry: Any, index: int, base: Path, environ: Mapping[str, str]) -> ModelSettings:
    return model_settings(entry, f"models[{index}]", base, environ)


def model_settings(
    entry: Any, where: str, base: Path, environ: Mapping[str, str] | None = None
) -> ModelSettings:
    """One model entry (a `models:` item, or what a repository reader made of another server's
    files), validated; relative paths resolve against `base`.

    `where` names the entry in messages; `environ`, when given, fills `${VAR}`s (a repository's
    own files are read as they are). A broken entry comes back with its `error` set.
    """
    name = entry.get("name") if isinstance(entry, dict) else None
    name = name if isinstance(name, str) and name else where
    version = entry.get("version") if isinstance(entry, dict) else None
    version = str(version) if isinstance(version, str | int) else "1"
    if isinstance(entry, dict) and isinstance(entry.get("version"), int):
        entry = {**entry, "version": str(entry["version"])}
    try:
        data = _MODEL_SCHEMA.load(entry if environ is None else interpolate(entry, environ, where))
    except InterpolationError as exc:
        return ModelSettings(name=name, version=version, error=str(exc))
    except ValidationError as exc:
        return ModelSettings(
            name=name, version=version, error="; ".join(flatten_messages(exc.messages, where))
        )
    # What the entry leaves out keeps ExplainSettings' defaults (set there only).
    explain = dict(data.get("explain") or {})
    for key, value in (
        ("explain.background", explain.get("background")),
        ("path", data.get("path")),
    ):
        if value is not None and uri_scheme(value) not in (None, "file"):
            return ModelSettings(
                name=name, version=version, error=f"{where}.{key}: '{value}' must be a local path"
            )
    background = _resolve(base, explain.pop("background", None))
    uri = data.get("uri")
    scheme = uri_scheme(uri) if uri is not None else None
    if scheme is not None and scheme not in REMOTE_SCHEMES and scheme != "file":
        return ModelSettings(
            name=name, version=version, error=f"{where}.uri: {unsupported_scheme(uri or '')}"
        )
    remote = scheme in REMOTE_SCHEMES
    return ModelSettings(
        name=data["name"],
        version=data["version"],
        runtime=data["runtime"],
        uri=None if remote else _resolve(base, uri),
        storage_uri=uri if remote else None,
        class_path=data.get("class_"),
        path=_resolve(base, data.get("path")),
        inputs=_specs(data.get("inputs")),
        outputs=_specs(data.get("outputs")),
        features=tuple(data["features"]) if data.get("features") else None,
        max_batch_size=data["max_batch_size"],
        batch_delay_ms=data["batch_delay_ms"],
        timeout_ms=data["timeout_ms"],
        max_concurrency=data["max_concurrency"],
        max_queue=data["max_queue"],
        parameters=dict(data["parameters"]),
        explain=ExplainSettings(background=background, **explain),
    )


def _server(data: dict[str, Any], base: Path) -> ServerSettings:
    auth = data["auth"]
    limits = data["limits"]
    return ServerSettings(
        name=data["name"],
        http=HttpSettings(**data["http"]),
        grpc=GrpcSettings(**data["grpc"]),
        omi=OmiSettings(**data["omi"]),
        auth=None
        if auth is None
        else AuthSettings(
            # An unset `${TOKEN:-}` gives "", which must never match an empty credential.
            bearer_tokens=tuple(t for t in auth["bearer_tokens"] if t),
            api_keys=tuple(k for k in auth["api_keys"] if k),
        ),
        storage=_storage(data["storage"], base),
        limits=LimitsSettings(
            max_request_bytes=limits["max_request_bytes"],
            data_roots=tuple(_resolve(base, r) for r in limits["data_roots"]),  # type: ignore[misc]  # never None for a str
        ),
        errors=data["errors"],
        access_log=data["access_log"],
    )


def _storage(data: dict[str, Any], base: Path) -> StorageSettings:
    cache_dir = data.get("cache_dir")
    return StorageSettings(
        **{key: value for key, value in data.items() if key != "cache_dir"},
        cache_dir=_resolve(base, cache_dir) if cache_dir else None,
    )


def uri_scheme(value: str) -> str | None:
    """The lower-cased scheme of a `scheme://` URI, None for a plain path."""
    match = _SCHEME.match(value)
    return match.group(1).lower() if match else None


def is_remote(value: str) -> bool:
    """Whether a `uri:` or `path:` names something app.storage fetches (s3, gs, http(s))."""
    return uri_scheme(value) in REMOTE_SCHEMES


def unsupported_scheme(value: str) -> str:
    """The one-line reason a URI of another scheme is refused."""
    return (
        f"'{value}': scheme '{uri_scheme(value)}' is not supported "
        "(a local path, file://, http://, https://, s3:// or gs://)"
    )


def file_path(value: str) -> str:
    """A `file://` URI's local path (other values unchanged): `file:///m/x` is `/m/x`."""
    if uri_scheme(value) != "file":
        return value
    parts = urlsplit(value)
    host = "" if parts.netloc == "localhost" else parts.netloc  # file://x/y: x/y, relative
    return unquote(host + parts.path)


def _resolve(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(file_path(value)).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _specs(items: list[dict[str, Any]] | None) -> tuple[TensorSpec, ...] | None:
    if items is None:
        return None
    return tuple(TensorSpec(i["name"], i["datatype"], tuple(i["shape"])) for i in items)
