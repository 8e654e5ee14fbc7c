"""The model manager: versions, states, failures by name, load/unload."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.entries import ModelState
from app.errors import ModelNotFound, ModelUnavailable
from app.manager import ModelManager, version_key
from config.settings import ModelSettings, Settings


def python_model(name: str, cls: str, version: str = "1", **kw: object) -> ModelSettings:
    return ModelSettings(name=name, version=version, runtime="python", class_path=cls, **kw)  # type: ignore[arg-type]  # test-only kwargs


def manager_of(*models: ModelSettings) -> ModelManager:
    manager = ModelManager(Settings(models=models))
    manager.load_all()
    return manager


def test_versions_sort_numerically_and_latest_serves() -> None:
    manager = manager_of(
        python_model("m", "examples.echo:EchoModel", "10"),
        python_model("m", "examples.echo:EchoModel", "9"),
    )
    assert [e.version for e in manager.entries("m")] == ["9", "10"]
    assert manager.entry("m").version == "10"
    assert manager.get("m", "9").version == "9"
    assert sorted(["b", "10", "2"], key=version_key) == ["2", "10", "b"]


def test_unknown_names_and_versions() -> None:
    manager = manager_of(python_model("m", "examples.echo:EchoModel"))
    with pytest.raises(ModelNotFound, match="model 'x' not found"):
        manager.get("x")
    with pytest.raises(ModelNotFound, match="model 'm' version '2' not found"):
        manager.get("m", "2")


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (python_model("b", "tests.models:BrokenLoadModel"), "OSError: weights are corrupt"),
        (python_model("b", "nowhere.module:Model"), "ModuleNotFoundError"),
        (python_model("b", "examples.echo:Missing"), "has no class 'Missing'"),
        (python_model("b", "app.types:TensorSpec"), "not a subclass of app.model.Model"),
        (
            ModelSettings(name="b", runtime="sklearn", uri=Path("/nonexistent.joblib")),
            "No such file",
        ),
        (ModelSettings(name="b", error="models[0].x: Unknown field."), "Unknown field"),
    ],
)
def test_a_failed_load_is_recorded_by_name_and_others_serve(
    settings: ModelSettings, reason: str
) -> None:
    manager = manager_of(settings, python_model("ok", "examples.echo:EchoModel"))
    entry = manager.entry("b")
    assert entry.state is ModelState.UNAVAILABLE and reason in entry.reason
    with pytest.raises(ModelUnavailable, match="model 'b' version '1' is not ready"):
        manager.get("b")
    assert manager.get("ok").name == "ok"
    assert manager.ready()  # loading is over; the failure is reported per model


def test_config_metadata_wins_over_the_runtime() -> None:
    from app.types import TensorSpec

    spec = (TensorSpec("x", "INT32", (-1,)),)
    manager = manager_of(
        python_model("s", "examples.tensor_sum:SumModel", inputs=spec, features=("a",))
    )
    model = manager.get("s")
    assert tuple(model.inputs) == spec and model.features == ["a"]


def test_unload_and_load() -> None:
    manager = manager_of(python_model("m", "examples.echo:EchoModel"))
    manager.unload("m")
    assert manager.entry("m").reason == "unloaded"
    with pytest.raises(ModelUnavailable):
        manager.get("m")
    manager.load("m")
    assert manager.entry("m").ready
    with pytest.raises(ModelNotFound):
        manager.load("nope")
    with pytest.raises(ModelNotFound):
        manager.unload("nope")


def test_every_model_that_leaves_service_is_retired_once() -> None:
    manager = manager_of(
        python_model("a", "examples.echo:EchoModel"), python_model("b", "examples.echo:EchoModel")
    )
    retired: list[object] = []
    manager.on_retire.append(retired.append)
    first = manager.get("a")
    manager.load("a")  # reload: the old object goes
    second = manager.get("a")
    manager.unload("a")
    manager.unload("a")  # nothing is serving any more: nothing to retire
    b = manager.get("b")
    manager.unload("b")
    assert retired == [first, second, b]


def test_a_reload_that_fails_in_one_version_keeps_every_version_serving(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    marked = "tests.models:MarkedBrokenModel"
    manager = manager_of(
        python_model("m", "examples.echo:EchoModel", "1"),
        python_model("m", marked, "2", parameters={"marks": str(marks)}),
    )
    serving = [entry.model for entry in manager.entries("m")]
    retired: list[object] = []
    manager.on_retire.append(retired.append)
    (marks / str(os.getpid())).touch()  # version 2's weights break
    with pytest.raises(
        ModelUnavailable,
        match=r"^model 'm' version '2' failed to load: OSError: weights are corrupt in \d+$",
    ):
        manager.load("m")
    assert [entry.model for entry in manager.entries("m")] == serving  # version 1 too
    assert all(entry.ready for entry in manager.entries("m")) and retired == []

    prepared = manager.prepare("m")  # loaded aside: nothing changes until it is committed
    assert prepared.failure.startswith("model 'm' version '2' failed to load")
    (marks / str(os.getpid())).unlink()
    prepared = manager.prepare("m")
    assert prepared.failure == "" and manager.get("m", "1") is serving[0]
    manager.commit(prepared)
    assert [entry.model for entry in manager.entries("m")] == [e.model for e in prepared.entries]
    assert retired == serving
