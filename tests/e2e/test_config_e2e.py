"""The config file as a real `gunicorn wsgi:app` reads it: warnings serve, unusable files stop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import requests

from tests.server import ROOT, GunicornServer, free_port

pytestmark = pytest.mark.e2e

SUM_MODEL = """
models:
  - name: sum
    runtime: python
    class: examples.tensor_sum:SumModel
"""
UNKNOWN_KEYS = """
server:
  name: typo-server
  foo: 1
  grpc: {port: "${MODELPORT_GRPC_PORT:-0}", prot: 2}
  omi: {port: "${MODELPORT_OMI_PORT:-0}"}
models:
  - name: echo
    runtime: python
    class: examples.echo:EchoModel
  - name: other
    runtime: python
    class: examples.echo:EchoModel
  - name: sum
    runtime: python
    class: examples.tensor_sum:SumModel
    bar: 3
"""
EXPECTED_WARNINGS = ["server.foo", "server.grpc.prot", "models[2].bar"]


def _gunicorn(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run gunicorn to its end (it should not start serving) and capture what it says."""
    env = {
        **os.environ,
        "MODELPORT_CONFIG": str(config),
        "MODELPORT_BIND": f"127.0.0.1:{free_port()}",
        "MODELPORT_WORKERS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", *args, "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _json_lines(text: str) -> list[dict[str, str]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def test_unknown_keys_are_one_warning_each_and_the_server_serves(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(UNKNOWN_KEYS)
    with GunicornServer(config, workers=2) as server:
        answer = requests.post(
            f"{server.url}/v2/models/sum/infer",
            json={"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert requests.get(f"{server.url}/v2", timeout=10).json()["name"] == "typo-server"
        warnings = [
            line["message"]
            for line in _json_lines(server.log())
            if line.get("logger") == "modelport.config"
        ]
    # One line per key for the whole server, not one per worker, each naming file and path.
    assert warnings == [
        f"config file '{config}': {path}: unknown key, ignored" for path in EXPECTED_WARNINGS
    ]


def test_check_config_fails_on_unknown_keys_and_passes_without(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(UNKNOWN_KEYS)
    checked = _gunicorn(config, "--check-config")
    assert checked.returncode == 1
    errors = _json_lines(checked.stderr)
    assert [e["level"] for e in errors] == ["ERROR"] * len(EXPECTED_WARNINGS)
    assert [e["message"].split(": ")[1] for e in errors] == EXPECTED_WARNINGS
    config.write_text(SUM_MODEL)
    clean = _gunicorn(config, "--check-config")
    assert clean.returncode == 0, clean.stderr


def test_check_config_fails_on_broken_repository_entries(tmp_path: Path) -> None:
    (tmp_path / "triton" / "bad" / "1").mkdir(parents=True)
    (tmp_path / "triton" / "bad" / "config.pbtxt").write_text("max_batch_size: eight\n")
    config = tmp_path / "models.yaml"
    config.write_text(
        SUM_MODEL + "repositories: [{format: triton, path: triton}, {format: mlflow, path: gone}]\n"
    )
    checked = _gunicorn(config, "--check-config")
    assert checked.returncode == 1
    messages = [e["message"] for e in _json_lines(checked.stderr)]
    assert any("mlflow repository 'gone'" in m and "is not a folder" in m for m in messages)
    assert any("Triton model 'bad'" in m and "does not parse" in m for m in messages), messages


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("server: {grpc: {port: [\n", "is not valid YAML: "),
        ("server: {name: x}\n", "models: no model is configured"),
        ("server: {grpc: {port: abc}}\n" + SUM_MODEL, "server.grpc.port: Not a valid integer."),
        ("server: {auth: {bearer_tokens: ['${NO_SUCH_TOKEN}']}}\n" + SUM_MODEL, "NO_SUCH_TOKEN"),
        (None, "cannot be read: No such file or directory"),
    ],
    ids=["not-yaml", "no-models", "bad-type", "unset-variable", "missing-file"],
)
def test_an_unusable_config_stops_gunicorn_with_one_line(
    tmp_path: Path, text: str | None, names: str
) -> None:
    config = tmp_path / "models.yaml"
    if text is not None:
        config.write_text(text)
    result = _gunicorn(config)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = _json_lines(result.stderr)  # exactly one line, and it is JSON like every log line
    assert line["level"] == "ERROR" and line["logger"] == "modelport.config"
    assert line["message"].startswith(f"config file '{config}'")
    assert names in line["message"]
