"""config/entrypoint.py: KServe's container arguments become the model the config serves.

tests/deploy/test_kserve_run.py runs the same through the built image; these need no Docker.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import requests
import yaml

from config.entrypoint import SERVE, EntrypointError, plan
from config.settings import load_settings
from tests.server import ROOT, GunicornServer

CONFIGMAP = ROOT / "deploy" / "kserve" / "configmap.yaml"


@pytest.fixture()
def kserve_config(tmp_path: Path) -> Path:
    """The ConfigMap's models.yaml, as a ServingRuntime pod mounts it."""
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_load(CONFIGMAP.read_text())["data"]["models.yaml"])
    return path


@pytest.fixture()
def model_dir(tmp_path: Path, trained_models: Path) -> Path:
    """A storageUri's folder as KServe puts it at /mnt/models: model.joblib inside."""
    folder = tmp_path / "mnt-models"
    folder.mkdir()
    shutil.copy(trained_models / "iris.joblib", folder / "model.joblib")
    return folder


def test_no_arguments_serve_and_a_command_runs_as_given() -> None:
    environ = {"MODELPORT_CONFIG": "anything.yaml"}
    assert plan([], environ) == (list(SERVE), environ)
    assert plan(["sh", "-c", "id -u"], environ) == (["sh", "-c", "id -u"], environ)


def test_kserve_arguments_name_the_model_and_its_folder(
    kserve_config: Path, model_dir: Path
) -> None:
    environ = {"MODELPORT_CONFIG": str(kserve_config)}
    command, env = plan(["--model_name=flowers", f"--model_dir={model_dir}"], environ)
    assert command == list(SERVE)
    assert (env["MODEL_NAME"], env["MODEL_DIR"]) == ("flowers", str(model_dir))
    (model,) = load_settings(environ=env).models
    assert (model.name, model.uri, model.error) == ("flowers", model_dir / "model.joblib", None)
    assert "MODEL_NAME" not in environ  # the caller's mapping is left alone


def test_storage_uri_is_the_folder_when_no_model_dir_is_given(
    kserve_config: Path, model_dir: Path, tmp_path: Path
) -> None:
    # What KServe does for a container that declares STORAGE_URI: it becomes /mnt/models.
    environ = {"MODELPORT_CONFIG": str(kserve_config), "STORAGE_URI": str(model_dir)}
    _, env = plan(["--model_name=iris"], environ)
    assert env["MODEL_DIR"] == str(model_dir)
    other = tmp_path / "other"
    other.mkdir()
    _, env = plan(["--model_name=iris", f"--model_dir={other}"], environ)
    assert env["MODEL_DIR"] == str(other)  # the argument wins


@pytest.mark.parametrize("uri", ["s3://bucket/iris", "gs://b/m/", "https://example.org/m"])
def test_a_storage_uri_is_the_folder_the_server_fetches_from(kserve_config: Path, uri: str) -> None:
    environ = {"MODELPORT_CONFIG": str(kserve_config)}
    for argv, env in (
        (["--model_name=iris", f"--model_dir={uri}"], environ),
        (["--model_name=iris"], {**environ, "STORAGE_URI": uri}),
    ):
        _, planned = plan(argv, env)
        assert planned["MODEL_DIR"] == uri.rstrip("/")
        (model,) = load_settings(environ=planned).models
        assert (model.uri, model.storage_uri) == (None, f"{uri.rstrip('/')}/model.joblib")


def test_a_file_uri_is_a_local_folder(kserve_config: Path, model_dir: Path) -> None:
    environ = {"MODELPORT_CONFIG": str(kserve_config)}
    _, env = plan(["--model_name=iris", f"--model_dir=file://{model_dir}"], environ)
    assert env["MODEL_DIR"] == str(model_dir)


def test_a_scheme_the_server_cannot_fetch_is_refused(kserve_config: Path) -> None:
    environ = {"MODELPORT_CONFIG": str(kserve_config), "STORAGE_URI": "pvc://models/iris"}
    with pytest.raises(EntrypointError, match="scheme 'pvc' is not supported.*/mnt/models"):
        plan(["--model_name=iris"], environ)


def test_a_model_dir_that_is_no_folder_is_refused(kserve_config: Path, tmp_path: Path) -> None:
    environ = {"MODELPORT_CONFIG": str(kserve_config)}
    with pytest.raises(EntrypointError, match="is not a folder"):
        plan(["--model_name=iris", f"--model_dir={tmp_path / 'missing'}"], environ)


def test_a_config_that_ignores_the_arguments_is_refused(model_dir: Path) -> None:
    # The image's default config serves the examples from /app/models, not MODEL_NAME/MODEL_DIR.
    environ = {"MODELPORT_CONFIG": str(ROOT / "config" / "models.yaml")}
    with pytest.raises(EntrypointError, match=f"serves no model 'nope' from {model_dir}"):
        plan(["--model_name=nope", f"--model_dir={model_dir}"], environ)
    with pytest.raises(EntrypointError, match=f"serves no model 'iris' from {model_dir}"):
        plan(["--model_name=iris", f"--model_dir={model_dir}"], environ)
    with pytest.raises(EntrypointError, match="cannot be read"):
        plan(["--model_name=iris"], {"MODELPORT_CONFIG": str(model_dir / "none.yaml")})


def test_an_unknown_argument_stops_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        plan(["--model_name=iris", "--http_prot=8080"], {})
    assert stopped.value.code == 2
    assert "unrecognized arguments: --http_prot=8080" in capsys.readouterr().err


@pytest.mark.e2e
def test_the_entrypoint_becomes_gunicorn_serving_the_kserve_model(
    kserve_config: Path, model_dir: Path
) -> None:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    server = GunicornServer(
        kserve_config,
        env={"PATH": path},
        args=["-m", "config.entrypoint", "--model_name=flowers", f"--model_dir={model_dir}"],
    )
    with server:
        assert server.process is not None
        # exec'd, not forked: the process started is the gunicorn master (PID 1 in a pod).
        cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().split(b"\0")
        assert any(part.endswith(b"gunicorn") for part in cmdline), cmdline
        answer = requests.post(
            f"{server.url}/v1/models/flowers:predict",
            json={"instances": [[6.7, 3.0, 5.2, 2.3]]},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": [2]}
