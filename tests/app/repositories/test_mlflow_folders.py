"""Folders of MLflow models: the three layouts, and a model only its own library can load."""

from __future__ import annotations

from pathlib import Path

from app.repositories import mlflow_folders

PYFUNC = "flavors:\n  python_function: {loader_module: mlflow.sklearn}\n"


def mlmodel(folder: Path, text: str = PYFUNC) -> None:
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text(text, encoding="utf-8")


def test_layouts(tmp_path: Path) -> None:
    mlmodel(tmp_path / "iris")
    mlmodel(tmp_path / "wine" / "1")
    mlmodel(tmp_path / "wine" / "2")
    (tmp_path / "notes").mkdir()
    found = [(m.name, m.version, m.runtime, m.uri, m.error) for m in mlflow_folders.read(tmp_path)]
    assert found == [
        ("iris", "1", "mlflow", tmp_path / "iris", None),
        ("wine", "1", "mlflow", tmp_path / "wine" / "1", None),
        ("wine", "2", "mlflow", tmp_path / "wine" / "2", None),
    ]


def test_the_repository_itself_may_be_one_model(tmp_path: Path) -> None:
    mlmodel(tmp_path / "exported")
    (model,) = mlflow_folders.read(tmp_path / "exported")
    assert (model.name, model.uri) == ("exported", tmp_path / "exported")


def test_refusals(tmp_path: Path) -> None:
    mlmodel(tmp_path / "keras", "flavors:\n  keras: {}\n")
    mlmodel(tmp_path / "bad", "flavors: [unclosed\n")
    errors = {m.name: m.error or "" for m in mlflow_folders.read(tmp_path)}
    assert "no 'python_function' flavor (flavors: ['keras'])" in errors["keras"]
    assert "MLmodel is not valid YAML" in errors["bad"]
