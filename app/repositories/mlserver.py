"""An MLServer model repository: every `model-settings.json` under it (and `settings.json`).

`settings.json` at the repository's top, when there, may move the models elsewhere
(`model_repository_root`, relative to it) or keep them unloaded until asked
(`load_models_at_startup: false`); its other keys configure MLServer's own server and do not
apply. Each `model-settings.json` is one model version:

- `name` (default: its folder's name), `parameters.version` (default "1");
- `implementation`, the MLServer runtime class, becomes the Modelport runtime of the same
  library (`IMPLEMENTATIONS`); any other is listed with a reason saying so;
- `parameters.uri`: the model file or folder, relative to the model-settings.json (default: its
  folder); in a folder, the file names that MLServer's runtime looks for (`model.joblib`, ...);
- `inputs`/`outputs` (`name`, `datatype`, `shape`) declare the metadata, as in `models:`;
- `max_batch_size`/`max_batch_time` (seconds): Modelport's dynamic batching.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.repositories.refused import Refused
from config.settings import ModelSettings, model_settings

MODEL_SETTINGS = "model-settings.json"
SERVER_SETTINGS = "settings.json"

#: MLServer's runtime class -> (Modelport runtime, the file names MLServer looks for in a folder;
#: none: the folder is the model).
IMPLEMENTATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mlserver_sklearn.SKLearnModel": ("sklearn", ("model.joblib", "model.pickle", "model.pkl")),
    "mlserver_xgboost.XGBoostModel": ("xgboost", ("model.bst", "model.json", "model.ubj")),
    "mlserver_lightgbm.LightGBMModel": ("lightgbm", ("model.bst", "model.txt")),
    "mlserver_catboost.CatboostModel": ("catboost", ("model.cbm", "model.bin")),
    "mlserver_mlflow.MLflowRuntime": ("mlflow", ()),
}


def read(root: Path) -> list[ModelSettings]:
    """Every model-settings.json under the repository root, broken ones with a reason."""
    server = _json(root / SERVER_SETTINGS) if (root / SERVER_SETTINGS).is_file() else {}
    if not isinstance(server, dict):
        server = {}
    models_root = root / str(server.get("model_repository_root", "."))
    if not models_root.is_dir():
        raise Refused(f"{SERVER_SETTINGS}: model_repository_root {models_root} is not a folder")
    load = server.get("load_models_at_startup", True) is not False
    return [_model(path, load) for path in sorted(models_root.rglob(MODEL_SETTINGS))]


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Refused(f"{path.name} is not valid JSON: {exc}") from None


def _model(path: Path, load: bool) -> ModelSettings:
    folder = path.parent
    where = f"MLServer model in {folder}"
    name = folder.name
    try:
        raw = _json(path)
        if not isinstance(raw, dict):
            raise Refused(f"{MODEL_SETTINGS} must hold a JSON object")
        name = str(raw.get("name") or name)
        where = f"MLServer model '{name}' ({path})"
        parameters = raw.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise Refused("'parameters' must be an object")
        runtime, filenames = _implementation(raw.get("implementation"))
        entry: dict[str, Any] = {
            "name": name,
            "version": str(parameters.get("version") or "1"),
            "runtime": runtime,
            "uri": str(_model_uri(folder, parameters.get("uri"), filenames)),
        }
    except Refused as exc:
        return ModelSettings(name=name, error=f"{where}: {exc}")
    for key in ("inputs", "outputs"):
        if raw.get(key):
            items = raw[key]
            entry[key] = [_tensor(item) for item in items] if isinstance(items, list) else items
    batch_size = raw.get("max_batch_size") or 0
    if not isinstance(batch_size, int) or batch_size > 1:  # MLServer batches from 2 rows on
        entry["max_batch_size"] = batch_size  # not a number: the schema says so
        delay = raw.get("max_batch_time") or 0
        entry["batch_delay_ms"] = delay * 1000.0 if isinstance(delay, int | float) else delay
    settings = model_settings(entry, where, folder)
    return settings if load or settings.error else replace(settings, load_at_start=False)


def _implementation(implementation: Any) -> tuple[str, tuple[str, ...]]:
    if not implementation:
        raise Refused("'implementation' is not set: name the MLServer runtime class")
    found = IMPLEMENTATIONS.get(str(implementation))
    if found is None:
        raise Refused(
            f"implementation '{implementation}' is not supported: Modelport serves "
            + ", ".join(sorted(IMPLEMENTATIONS))
        )
    return found


def _model_uri(folder: Path, uri: Any, filenames: tuple[str, ...]) -> Path:
    """The model file (or folder) `parameters.uri` names, as MLServer's runtimes find it."""
    path = folder if not uri else Path(str(uri))
    path = path if path.is_absolute() else (folder / path).resolve()
    if not path.exists():
        raise Refused(f"the model file {path} is missing")
    if path.is_dir() and filenames:
        found = next((path / name for name in filenames if (path / name).is_file()), None)
        if found is None:
            raise Refused(f"{path} holds none of the files MLServer looks for: {filenames}")
        return found
    return path


def _tensor(item: Any) -> Any:
    """A `MetadataTensor` as a `models:` tensor: name, datatype, shape (parameters dropped)."""
    if not isinstance(item, dict):
        return item  # the schema says what is wrong with it
    return {key: item[key] for key in ("name", "datatype", "shape") if key in item}
