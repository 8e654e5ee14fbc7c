"""Triton repositories: config.pbtxt read against Triton's schema, versions by policy, refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.manager import instantiate
from app.repositories import triton
from config.settings import ModelSettings
from tests.repositories import MODELS, TRITON_BROKEN, build_triton


def model_folder(root: Path, config: str | None, versions: tuple[str, ...] = ("1",)) -> Path:
    folder = root / "m"
    for version in versions:
        (folder / version).mkdir(parents=True)
        shutil.copy(MODELS / "iris.onnx", folder / version / "model.onnx")
    if config is not None:
        (folder / "config.pbtxt").write_text(config, encoding="utf-8")
    return folder


def by_version(models: list[ModelSettings]) -> dict[str, ModelSettings]:
    return {model.version: model for model in models}


def test_the_iris_model_reads_as_a_batched_onnx_model(tmp_path: Path) -> None:
    models = by_version([m for m in triton.read(build_triton(tmp_path)) if m.name == "iris-triton"])
    assert sorted(models) == ["1", "2"]  # latest 2; "3-notes" is no version
    model = models["2"]
    assert model.error is None and model.runtime == "onnx"
    assert model.uri == tmp_path / "iris-triton" / "2" / "model.onnx"
    assert [(s.name, s.datatype, s.shape) for s in model.inputs or ()] == [
        ("input-0", "FP32", (-1, 4))
    ]
    assert [(s.name, s.datatype, s.shape) for s in model.outputs or ()] == [
        ("predictions", "INT64", (-1,)),
        ("probabilities", "FP32", (-1, 3)),
    ]
    # dynamic_batching: batches up to the largest preferred size, after the queue delay.
    assert (model.max_batch_size, model.batch_delay_ms) == (8, 2.0)
    config = model.model_config or {}
    assert config["name"] == "iris-triton"
    assert (config["platform"], config["backend"]) == ("onnxruntime_onnx", "onnxruntime")
    assert config["max_batch_size"] == 8
    assert config["input"][0]["dims"] == [4]  # numbers, as Triton answers them
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 2000
    assert config["instance_group"][0]["kind"] == "KIND_CPU"  # kept, to be answered back


@pytest.mark.parametrize(
    ("policy", "versions"),
    [
        ("", ["3"]),  # Triton's default: the newest version only
        ("version_policy: { latest: { num_versions: 2 } }", ["2", "3"]),
        ("version_policy: { all: {} }", ["1", "2", "3"]),
        ("version_policy: { specific: { versions: [1, 3] } }", ["1", "3"]),
    ],
)
def test_version_policies(tmp_path: Path, policy: str, versions: list[str]) -> None:
    model_folder(tmp_path, f'platform: "onnxruntime_onnx"\n{policy}\n', ("1", "2", "3"))
    assert [m.version for m in triton.read(tmp_path)] == versions


def test_a_specific_version_without_a_folder_is_refused(tmp_path: Path) -> None:
    model_folder(tmp_path, 'backend: "onnxruntime"\nversion_policy: {specific: {versions: [4]}}')
    (model,) = triton.read(tmp_path)
    assert "names version 4, which has no folder (versions: [1])" in (model.error or "")


def test_no_config_pbtxt_is_auto_completed_from_the_graph(tmp_path: Path) -> None:
    model_folder(tmp_path, None)
    (model,) = triton.read(tmp_path)
    assert model.error is None and model.runtime == "onnx" and model.inputs is None
    assert (model.model_config or {})["default_model_filename"] == "model.onnx"


def test_default_model_filename_and_reshape(tmp_path: Path) -> None:
    folder = model_folder(
        tmp_path,
        'platform: "onnxruntime_onnx"\ndefault_model_filename: "iris.onnx"\n'
        'input [{name: "input-0", data_type: TYPE_FP32, dims: [2, 2], reshape: {shape: [4]}}]\n',
    )
    (folder / "1" / "model.onnx").rename(folder / "1" / "iris.onnx")
    (model,) = triton.read(tmp_path)
    assert model.uri == folder / "1" / "iris.onnx"
    assert [s.shape for s in model.inputs or ()] == [(2, 2)]  # max_batch_size 0: no batch dim
    assert model.reshape == {"input-0": (4,)}
    assert model.max_batch_size == 0


@pytest.mark.parametrize("name", sorted(TRITON_BROKEN))
def test_broken_entries_say_why(tmp_path: Path, name: str) -> None:
    build_triton(tmp_path)
    (model,) = [m for m in triton.read(tmp_path) if m.name == name]
    assert TRITON_BROKEN[name][1] in (model.error or ""), model.error
    assert f"Triton model '{name}'" in (model.error or "")


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ('name: "other"\n', "names the model 'other', but Triton names a model after its folder"),
        ('backend: "fil"\n', "backend 'fil' is not supported"),
        ('platform: "onnxruntime_onnx"\nfoo: 1\n', 'has no field named "foo"'),
        (
            'platform: "onnxruntime_onnx"\ninput [{name: "x", data_type: TYPE_INVALID, dims: [4]}]',
            "Must be one of",
        ),
    ],
)
def test_refused_configs(tmp_path: Path, config: str, reason: str) -> None:
    model_folder(tmp_path, config)
    (model,) = triton.read(tmp_path)
    assert reason in (model.error or ""), model.error


def test_a_folder_without_versions_or_config(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.pbtxt").write_text('backend: "onnxruntime"', encoding="utf-8")
    (tmp_path / "bare").mkdir()
    errors = {m.name: m.error for m in triton.read(tmp_path)}
    assert "no version folder (1/, 2/, ...) holds the model" in (errors["empty"] or "")
    assert "no config.pbtxt, and no version folder holds model.onnx" in (errors["bare"] or "")


@pytest.mark.parametrize(
    ("tensors", "reason"),
    [
        (
            'output [{name: "scores", data_type: TYPE_FP32, dims: [3]}]',
            "output 'scores' is declared, but the graph has no such output",
        ),
        (
            'output [{name: "probabilities", data_type: TYPE_FP32, dims: [4]}]',
            r"output 'probabilities' is declared with shape \[-1, 4\], but the graph's",
        ),
        (
            'input [{name: "input-0", data_type: TYPE_FP32, dims: [3]}]',
            r"input 'input-0' is declared with shape \[-1, 3\], but the graph's is \[-1, 4\]",
        ),
        (
            'input [{name: "x", data_type: TYPE_FP32, dims: [2, 2], reshape: {shape: [3]}}]',
            r"input 'x' is declared with shape \[-1, 3\]",
        ),
    ],
)
def test_tensors_the_graph_does_not_have_fail_the_load(
    tmp_path: Path, tensors: str, reason: str
) -> None:
    model_folder(tmp_path, f'platform: "onnxruntime_onnx"\nmax_batch_size: 4\n{tensors}\n')
    (settings,) = triton.read(tmp_path)
    with pytest.raises(ValueError, match=reason):
        instantiate(settings)
