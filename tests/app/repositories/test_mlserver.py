"""MLServer repositories: model-settings.json into model entries, settings.json, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.repositories import mlserver
from tests.repositories import MODELS, build_mlserver


def write(folder: Path, settings: object, *files: tuple[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for source, target in files:
        shutil.copy(MODELS / source, folder / target)
    text = settings if isinstance(settings, str) else json.dumps(settings)
    (folder / "model-settings.json").write_text(text, encoding="utf-8")
    return folder


def test_sklearn_and_xgboost_entries(tmp_path: Path) -> None:
    models = {m.name: m for m in mlserver.read(build_mlserver(tmp_path))}
    sklearn = models["iris-mlserver"]
    assert (sklearn.runtime, sklearn.version, sklearn.error) == ("sklearn", "v1.2", None)
    assert sklearn.uri == tmp_path / "iris-mlserver" / "iris-model.joblib"  # parameters.uri
    assert [(s.name, s.shape) for s in sklearn.inputs or ()] == [("input-0", (-1, 4))]
    booster = models["iris-mlserver-xgboost"]
    assert booster.uri == tmp_path / "iris-mlserver-xgboost" / "model.json"  # a well-known name
    assert (booster.runtime, booster.max_batch_size, booster.batch_delay_ms) == ("xgboost", 8, 2.0)
    assert "implementation 'mlserver_huggingface.HuggingFaceRuntime' is not supported" in (
        models["hf"].error or ""
    )


def test_the_name_defaults_to_the_folder(tmp_path: Path) -> None:
    write(
        tmp_path / "iris",
        {"implementation": "mlserver_sklearn.SKLearnModel"},
        ("iris.joblib", "model.joblib"),
    )
    (model,) = mlserver.read(tmp_path)
    assert (model.name, model.version, model.uri) == (
        "iris",
        "1",
        tmp_path / "iris" / "model.joblib",
    )


def test_settings_json_moves_the_root_and_defers_loading(tmp_path: Path) -> None:
    write(
        tmp_path / "models" / "iris",
        {"implementation": "mlserver_sklearn.SKLearnModel"},
        ("iris.joblib", "model.pkl"),
    )
    write(tmp_path / "elsewhere", {"implementation": "mlserver_sklearn.SKLearnModel"})
    (tmp_path / "settings.json").write_text(
        json.dumps({"model_repository_root": "models", "load_models_at_startup": False}),
        encoding="utf-8",
    )
    (model,) = mlserver.read(tmp_path)
    assert model.name == "iris" and model.load_at_start is False and model.error is None


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ("{not json", "model-settings.json is not valid JSON"),
        ([1, 2], "must hold a JSON object"),
        ({"name": "x"}, "'implementation' is not set"),
        ({"implementation": "my.Runtime"}, "implementation 'my.Runtime' is not supported"),
        (
            {"implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": "gone.pkl"}},
            "gone.pkl is missing",
        ),
        (
            {"implementation": "mlserver_sklearn.SKLearnModel"},
            "holds none of the files MLServer looks for",
        ),
        (
            {
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "model.joblib"},
                "inputs": [{"name": "x", "datatype": "FLOAT", "shape": [-1]}],
            },
            "inputs.0.datatype: Must be one of",
        ),
    ],
)
def test_broken_model_settings_say_why(tmp_path: Path, settings: object, reason: str) -> None:
    write(tmp_path / "m", settings, ("iris.joblib", "model.joblib"))
    if reason.startswith("holds none"):
        (tmp_path / "m" / "model.joblib").unlink()
    (model,) = mlserver.read(tmp_path)
    assert reason in (model.error or ""), model.error


def test_a_settings_json_that_cannot_be_used_skips_the_repository(tmp_path: Path) -> None:
    from app.repositories import scan
    from config.settings import RepositorySettings

    for folder, text in (("bad", "{oops"), ("moved", '{"model_repository_root": "nowhere"}')):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "settings.json").write_text(text, encoding="utf-8")
    found = scan([RepositorySettings("mlserver", name, tmp_path) for name in ("bad", "moved")])
    assert found.models == ()
    assert "mlserver repository 'bad': settings.json is not valid JSON" in found.problems[0]
    assert "model_repository_root" in found.problems[1] and "is not a folder" in found.problems[1]


def test_odd_batching_values_are_named(tmp_path: Path) -> None:
    write(
        tmp_path / "m",
        {
            "implementation": "mlserver_sklearn.SKLearnModel",
            "max_batch_size": 4,
            "max_batch_time": "soon",
            "parameters": {"uri": "model.joblib"},
        },
        ("iris.joblib", "model.joblib"),
    )
    (model,) = mlserver.read(tmp_path)
    assert "batch_delay_ms: Not a valid number" in (model.error or ""), model.error
