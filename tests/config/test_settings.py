"""Configuration loading: interpolation, validation by key path, relative paths, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.types import TensorSpec
from config.interpolate import InterpolationError, interpolate
from config.settings import DEFAULT_CONFIG, ConfigError, config_path, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return path


def test_interpolation_reads_the_given_environment() -> None:
    env = {"TOKEN": "s3cret"}
    assert interpolate({"a": ["${TOKEN}", "x-${MISSING:-dflt}-y"]}, env) == {
        "a": ["s3cret", "x-dflt-y"]
    }
    assert interpolate("${EMPTY:-}", {}) == ""


def test_interpolation_names_the_unset_variable_and_key() -> None:
    with pytest.raises(InterpolationError, match=r"server\.auth: .*'NOPE'"):
        interpolate({"auth": "${NOPE}"}, {}, "server")


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
models:
  - name: iris
    runtime: sklearn
    uri: sub/iris.joblib
    inputs: [{name: x, datatype: FP32, shape: [-1, 4]}]
""",
    )
    settings = load_settings(path, {})
    assert settings.server.name == "modelport"
    assert settings.server.http.port == 8080
    assert settings.server.grpc.port == 8081
    assert settings.server.omi.port == 45000
    assert settings.server.auth is None
    assert settings.server.limits.max_request_bytes == 64 * 1024 * 1024
    (model,) = settings.models
    assert model.error is None
    assert model.version == "1"
    assert model.uri == (tmp_path / "sub" / "iris.joblib").resolve()
    assert model.inputs == (TensorSpec("x", "FP32", (-1, 4)),)


def test_environment_fills_ports_and_tokens(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
server:
  grpc: {port: "${GRPC:-9000}"}
  auth: {bearer_tokens: ["${TOKEN}", "${UNSET:-}"]}
models: [{name: m, runtime: sklearn, uri: a.joblib}]
""",
    )
    settings = load_settings(path, {"TOKEN": "abc"})
    assert settings.server.grpc.port == 9000
    assert settings.server.auth is not None
    assert settings.server.auth.bearer_tokens == ("abc",)  # an empty token never matches


ONE_MODEL = "\nmodels: [{name: m, runtime: sklearn, uri: a.joblib}]\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server: {errors: loud}" + ONE_MODEL, r"server\.errors: Must be one of"),
        ("server: {grpc: {port: 70000}}" + ONE_MODEL, r"server\.grpc\.port"),
        ("server: {grpc: {port: abc}}" + ONE_MODEL, r"server\.grpc\.port: Not a valid integer"),
        ("server: {auth: {bearer_tokens: ['${TOKEN}']}}", r"'TOKEN' is not set"),
        ("server: 5" + ONE_MODEL, r"server: Invalid input type"),
        ("- just a list", r"top level must be a mapping"),
        ("server: [", r"not valid YAML: .*\(line 1, column 10\)$"),
        ("server: {name: x}", r"models: no model is configured"),
        ("", r"models: no model is configured"),
        ("models: 5", r"models: Not a valid list"),
    ],
)
def test_unusable_configs_are_one_line_naming_the_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(path, {})
    assert str(caught.value).startswith(f"config file '{path}'")
    assert "\n" not in str(caught.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_settings(tmp_path / "nope.yaml", {})


def test_unknown_keys_are_warnings_with_their_full_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
colour: blue
server:
  foo: 1
  grpc: {port: 9000, prot: 1}
models:
  - {name: a, runtime: sklearn, uri: a.joblib}
  - {name: b, runtime: sklearn, uri: a.joblib}
  - name: c
    runtime: sklearn
    uri: a.joblib
    bar: 2
    explain: {samples: 8, sample: 9}
    inputs: [{name: x, datatype: FP32, shape: [-1, 4], dtype: FP32}]
    parameters: {anything: goes}
""",
    )
    settings = load_settings(path, {})
    assert [w.removeprefix(f"config file '{path}': ") for w in settings.warnings] == [
        "colour: unknown key, ignored",
        "server.foo: unknown key, ignored",
        "server.grpc.prot: unknown key, ignored",
        "models[2].bar: unknown key, ignored",
        "models[2].explain.sample: unknown key, ignored",
        "models[2].inputs[0].dtype: unknown key, ignored",
    ]
    assert settings.server.grpc.port == 9000  # the known keys beside them still apply
    model = settings.models[2]
    assert model.error is None and model.explain.samples == 8
    assert model.inputs == (TensorSpec("x", "FP32", (-1, 4)),)
    assert model.parameters == {"anything": "goes"}  # free-form: never "unknown"


def test_a_broken_model_entry_is_reported_by_name_and_the_others_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
models:
  - {name: good, runtime: sklearn, uri: a.joblib}
  - {name: typo, runtime: sklearn, uri: a.joblib, max_batch_size: lots}
  - {name: noclass, runtime: python}
  - {name: nouri, runtime: onnx}
  - {name: wrong, runtime: tensorflow, uri: a}
  - {name: good, runtime: sklearn, uri: b.joblib}
  - {name: env, runtime: sklearn, uri: "${MODEL_DIR}/a.joblib"}
""",
    )
    models = {(m.name, i): m for i, m in enumerate(load_settings(path, {}).models)}
    errors = {name: m.error for (name, _), m in models.items()}
    assert models[("good", 0)].error is None
    assert "models[1].max_batch_size: Not a valid integer" in errors["typo"]
    assert "needs 'class" in errors["noclass"]
    assert "needs 'uri'" in errors["nouri"]
    assert "models[4].runtime" in errors["wrong"]
    assert "configured twice" in models[("good", 5)].error
    assert "'MODEL_DIR' is not set" in errors["env"]


def test_versions_may_be_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "models: [{name: m, version: 2, runtime: sklearn, uri: a}]")
    assert load_settings(path, {}).models[0].version == "2"


def test_config_path_comes_from_the_environment() -> None:
    assert config_path({}) == DEFAULT_CONFIG
    assert config_path({"MODELPORT_CONFIG": "/x/y.yaml"}) == Path("/x/y.yaml")


def test_the_bundled_config_is_valid() -> None:
    settings = load_settings(DEFAULT_CONFIG, {})
    assert [m.error for m in settings.models if m.error] == []
    assert {m.name for m in settings.models} >= {"iris", "iris-xgboost", "digits"}


def test_repositories_are_kept_as_written_beside_the_models(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
repositories:
  - {format: triton, path: ../triton-repo}
  - {format: mlflow, path: '${EXPORTS}/mlruns', flavour: x}
""",
    )
    settings = load_settings(path, {"EXPORTS": "/data"})
    assert settings.models == ()  # repositories alone are a usable config
    assert [(r.format, r.path, r.base) for r in settings.repositories] == [
        ("triton", "../triton-repo", tmp_path.resolve()),
        ("mlflow", "/data/mlruns", tmp_path.resolve()),
    ]
    assert settings.warnings == (
        f"config file '{path}': repositories[1].flavour: unknown key, ignored",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "repositories: [{format: torchserve, path: x}]",
            r"repositories\.0\.format: Must be one of",
        ),
        ("repositories: [{format: triton}]", r"repositories\.0\.path: Missing data"),
        ("repositories: [{format: triton, path: '${NOPE}'}]", r"'NOPE' is not set"),
    ],
)
def test_a_repository_entry_that_cannot_be_read_stops_the_server(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text), {})


def test_limits_and_timeouts(tmp_path: Path) -> None:
    """Issue 15's knobs: defaults, values, and a bad value marking only its model as failed."""
    path = write(
        tmp_path,
        """
server:
  http: {header_timeout_s: 2.5, body_timeout_s: 4}
  grpc: {stream_idle_timeout_s: 3}
models:
  - {name: a, runtime: python, class: 'm:A'}
  - {name: b, runtime: python, class: 'm:B', timeout_ms: 250, max_concurrency: 2, max_queue: 0}
  - {name: c, runtime: python, class: 'm:C', max_concurrency: 0}
""",
    )
    settings = load_settings(path, {})
    assert (settings.server.http.header_timeout_s, settings.server.http.body_timeout_s) == (2.5, 4)
    assert settings.server.grpc.stream_idle_timeout_s == 3
    a, b, c = settings.models
    assert (a.timeout_ms, a.max_concurrency, a.max_queue) == (0, 64, 128)
    assert (b.timeout_ms, b.max_concurrency, b.max_queue) == (250, 2, 0)
    assert c.error is not None and "max_concurrency" in c.error


def test_storage_uris_are_kept_for_app_storage_and_file_uris_are_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
server:
  storage: {cache_dir: cache, max_bytes: 1000, timeout_s: 5, s3_endpoint_url: "http://s3:9000"}
models:
  - {name: a, runtime: sklearn, uri: "s3://bucket/iris.joblib"}
  - {name: b, runtime: sklearn, uri: "https://example.org/m/iris.joblib"}
  - {name: c, runtime: sklearn, uri: "file:///srv/models/iris.joblib"}
  - {name: d, runtime: sklearn, uri: "hdfs://nn/iris.joblib"}
  - {name: e, runtime: sklearn, uri: m.joblib, explain: {background: "s3://b/bg.npy"}}
repositories:
  - {format: triton, path: "gs://bucket/triton"}
""",
    )
    settings = load_settings(path, {})
    storage = settings.server.storage
    assert (storage.cache_dir, storage.max_bytes, storage.timeout_s, storage.s3_endpoint_url) == (
        tmp_path / "cache",
        1000,
        5.0,
        "http://s3:9000",
    )
    a, b, c, d, e = settings.models
    assert (a.uri, a.storage_uri) == (None, "s3://bucket/iris.joblib")
    assert b.storage_uri == "https://example.org/m/iris.joblib"
    assert (c.uri, c.storage_uri) == (Path("/srv/models/iris.joblib"), None)
    assert d.error is not None and "scheme 'hdfs' is not supported" in d.error
    assert e.error == "models[4].explain.background: 's3://b/bg.npy' must be a local path"
    (repository,) = settings.repositories
    assert (repository.path, repository.storage) == ("gs://bucket/triton", storage)


def test_a_repository_of_an_unknown_scheme_stops_the_server(tmp_path: Path) -> None:
    path = write(tmp_path, "repositories: [{format: triton, path: 'ftp://host/repo'}]\n")
    with pytest.raises(ConfigError, match=r"repositories\[0\].path: 'ftp://host/repo': scheme"):
        load_settings(path, {})
