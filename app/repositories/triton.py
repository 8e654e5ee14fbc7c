"""A Triton model repository: `<model>/config.pbtxt` and numbered version folders.

Each model folder holds `config.pbtxt` (a text-format `inference.ModelConfig`, parsed against
the whole of Triton's schema in protos/model_config.proto) and version folders `1/`, `2/`, ...
with the model file (`default_model_filename`, `model.onnx` unless set). Modelport runs the
onnxruntime backend (`platform: "onnxruntime_onnx"` or `backend: "onnxruntime"`); a model of any
other backend is listed with a reason saying so. Without config.pbtxt, a folder whose versions
hold `model.onnx` is served with the configuration the graph implies, as Triton's auto-complete
does.

What is read, and what it becomes:

- `max_batch_size` > 0: every input and output gets a leading batch dimension (-1) before `dims`;
- `input`/`output`: name, `data_type` (TYPE_FP32 -> FP32, TYPE_STRING -> BYTES), `dims`,
  `reshape` (the shape the graph itself takes, handed to the runtime);
- `dynamic_batching`: Modelport's batching, up to the largest `preferred_batch_size` (else
  `max_batch_size`) rows, waiting `max_queue_delay_microseconds`;
- `version_policy`: `latest {num_versions}` (Triton's default: the newest one), `all`,
  `specific {versions}`; folders whose names are not numbers are not versions;
- `default_model_filename`.

The configuration, completed as Triton completes it (name, platform and backend, the default
version policy and file name), is what `/v2/models/{m}/config` answers.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from app.codec.model_config import DATATYPES_FROM_TRITON, config_to_json
from app.repositories.refused import Refused
from config.settings import ModelSettings, model_settings
from protos import model_config_pb2

CONFIG_FILE = "config.pbtxt"
ONNX_PLATFORM = "onnxruntime_onnx"
ONNX_BACKEND = "onnxruntime"
DEFAULT_FILENAME = "model.onnx"


def read(root: Path) -> list[ModelSettings]:
    """Every served version of every model folder under `root`, broken ones with a reason."""
    models: list[ModelSettings] = []
    for folder in sorted(path for path in root.iterdir() if _visible_folder(path)):
        models.extend(_model(folder))
    return models


def _visible_folder(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".")


def _model(folder: Path) -> list[ModelSettings]:
    name = folder.name
    try:
        config = _config(folder)
        versions = _versions(folder, config.version_policy)
    except Refused as exc:
        return [ModelSettings(name=name, error=f"Triton model '{name}' ({folder}): {exc}")]
    as_json = config_to_json(config)
    common = _entry(config)
    models = []
    for version in versions:
        path = folder / str(version) / config.default_model_filename
        where = f"Triton model '{name}' version {version} ({folder})"
        if not path.is_file():
            message = f"{where}: the model file {path} is missing"
            models.append(ModelSettings(name=name, version=str(version), error=message))
            continue
        entry = {**common, "version": str(version), "uri": str(path)}
        models.append(_with_config(model_settings(entry, where, folder), as_json, config))
    return models


def _config(folder: Path) -> model_config_pb2.ModelConfig:
    """config.pbtxt parsed and completed: name, platform and backend, policy, file name."""
    config = model_config_pb2.ModelConfig()
    path = folder / CONFIG_FILE
    if path.is_file():
        try:
            text_format.Parse(path.read_text(encoding="utf-8"), config)
        except (text_format.ParseError, UnicodeDecodeError) as exc:
            raise Refused(f"{CONFIG_FILE} does not parse: {exc}") from None
    elif not _auto_complete(folder):
        raise Refused(
            f"no {CONFIG_FILE}, and no version folder holds {DEFAULT_FILENAME} to serve without one"
        )
    if config.name and config.name != folder.name:
        raise Refused(
            f"{CONFIG_FILE} names the model '{config.name}', but Triton names a model after its "
            f"folder ('{folder.name}'): make them the same"
        )
    config.name = folder.name
    _check_backend(config)
    config.platform, config.backend = ONNX_PLATFORM, ONNX_BACKEND
    if not config.HasField("version_policy"):
        config.version_policy.latest.num_versions = 1
    if not config.default_model_filename:
        config.default_model_filename = DEFAULT_FILENAME
    return config


def _auto_complete(folder: Path) -> bool:
    """Whether a folder without config.pbtxt is one Triton would serve by auto-completing it."""
    return any((version / DEFAULT_FILENAME).is_file() for version in _version_folders(folder))


def _check_backend(config: model_config_pb2.ModelConfig) -> None:
    platform, backend = config.platform, config.backend
    if backend == "python":
        raise Refused(
            "Triton's python backend runs a model.py written against Triton's own Python API, "
            "which Modelport does not provide: port its execute() to a Modelport model class "
            "(`runtime: python`, see the README's 'Your own model')"
        )
    if backend in ("", ONNX_BACKEND) and platform in ("", ONNX_PLATFORM):
        return
    other = f"backend '{backend}'" if backend else f"platform '{platform}'"
    raise Refused(
        f"{other} is not supported: Modelport serves the onnxruntime backend "
        f"(platform '{ONNX_PLATFORM}' or backend '{ONNX_BACKEND}') from a Triton repository"
    )


def _version_folders(folder: Path) -> list[Path]:
    """The numbered version folders, oldest first (others are not versions, as in Triton)."""
    found = [path for path in folder.iterdir() if path.is_dir() and path.name.isdigit()]
    return sorted(found, key=lambda path: int(path.name))


def _versions(folder: Path, policy: model_config_pb2.ModelVersionPolicy) -> list[int]:
    """The versions the policy serves, oldest first."""
    present = [int(path.name) for path in _version_folders(folder)]
    choice = policy.WhichOneof("policy_choice")
    if choice == "specific":
        wanted = sorted(set(policy.specific.versions))
        missing = [version for version in wanted if version not in present]
        if missing:
            raise Refused(
                f"version_policy names version {missing[0]}, which has no folder "
                f"(versions: {present or 'none'})"
            )
        return wanted
    if not present:
        raise Refused("no version folder (1/, 2/, ...) holds the model")
    if choice == "all":
        return present
    return present[-max(policy.latest.num_versions, 1) :]


def _entry(config: model_config_pb2.ModelConfig) -> dict[str, Any]:
    """The `models:`-shaped entry a config stands for (without version and file)."""
    batched = config.max_batch_size > 0
    entry: dict[str, Any] = {"name": config.name, "runtime": "onnx"}
    if config.input:
        entry["inputs"] = [_tensor(tensor, batched) for tensor in config.input]
    if config.output:
        entry["outputs"] = [_tensor(tensor, batched) for tensor in config.output]
    if config.HasField("dynamic_batching") and batched:
        batching = config.dynamic_batching
        preferred = [size for size in batching.preferred_batch_size if size > 0]
        # Modelport's batcher sends a batch once it is full: full is the preferred size.
        limit = max(preferred) if preferred else config.max_batch_size
        entry["max_batch_size"] = min(limit, config.max_batch_size)
        entry["batch_delay_ms"] = batching.max_queue_delay_microseconds / 1000.0
    return entry


def _tensor(
    tensor: model_config_pb2.ModelInput | model_config_pb2.ModelOutput, batched: bool
) -> dict[str, Any]:
    data_type = model_config_pb2.DataType.Name(tensor.data_type)
    return {
        "name": tensor.name,
        # TYPE_INVALID passes as it is: the schema names the tensor and value in the error.
        "datatype": DATATYPES_FROM_TRITON.get(data_type, data_type),
        "shape": [-1, *tensor.dims] if batched else list(tensor.dims),
    }


def _with_config(
    settings: ModelSettings, as_json: dict[str, Any], config: model_config_pb2.ModelConfig
) -> ModelSettings:
    """The entry with what only a Triton model has: its config, and its tensors' reshapes."""
    if settings.error:
        return settings
    batch = (-1,) if config.max_batch_size > 0 else ()
    reshape = {
        tensor.name: (*batch, *tensor.reshape.shape)
        for tensor in [*config.input, *config.output]
        if tensor.HasField("reshape")
    }
    return replace(settings, model_config=as_json, reshape=reshape)
