"""Folders of MLflow models: each folder holding an `MLmodel` file is one model version.

Three layouts, each served by the `mlflow` runtime (any pyfunc model):

- the repository folder itself holds `MLmodel`: one model, named after the folder;
- `<name>/MLmodel`: model `name`, version 1;
- `<name>/<version>/MLmodel` (numbered folders, as the model registry numbers versions).

Only the MLmodel file is read here, to refuse a model with no `python_function` flavor (a
flavor only its own library can load) with a reason; the runtime loads the model itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.repositories.refused import Refused
from config.settings import ModelSettings, model_settings

MLMODEL = "MLmodel"
PYFUNC_FLAVOR = "python_function"


def read(root: Path) -> list[ModelSettings]:
    """Every MLflow model under `root`, in the layouts above, broken ones with a reason."""
    if (root / MLMODEL).is_file():
        return [_model(root, root.name, "1")]
    models: list[ModelSettings] = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        if folder.name.startswith("."):
            continue
        if (folder / MLMODEL).is_file():
            models.append(_model(folder, folder.name, "1"))
            continue
        versions = [path for path in folder.iterdir() if path.name.isdigit()]
        for version in sorted(versions, key=lambda path: int(path.name)):
            if (version / MLMODEL).is_file():
                models.append(_model(version, folder.name, version.name))
    return models


def _model(folder: Path, name: str, version: str) -> ModelSettings:
    where = f"MLflow model '{name}' version {version} ({folder})"
    try:
        _check_flavor(folder / MLMODEL)
    except Refused as exc:
        return ModelSettings(name=name, version=version, error=f"{where}: {exc}")
    entry = {"name": name, "version": version, "runtime": "mlflow", "uri": str(folder)}
    return model_settings(entry, where, folder)


def _check_flavor(path: Path) -> None:
    try:
        metadata: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise Refused(f"{MLMODEL} is not valid YAML: {' '.join(str(exc).split())}") from None
    flavors = metadata.get("flavors") if isinstance(metadata, dict) else None
    if not isinstance(flavors, dict) or PYFUNC_FLAVOR not in flavors:
        listed = sorted(flavors) if isinstance(flavors, dict) else []
        raise Refused(
            f"{MLMODEL} has no '{PYFUNC_FLAVOR}' flavor (flavors: {listed or 'none'}), so only "
            "its own library can load it; save it with an MLflow flavor that adds pyfunc"
        )
