"""Storage URIs end to end: `s3://` (moto's server), `https://` (http.server with a
self-signed certificate) and `gs://` (the GCS emulator) models and an `s3://` Triton
repository, served by 2 gunicorn workers.

The servers' own request logs count the downloads: one GET per object for the whole server
(the master fetches before it forks; the workers only ask whether the object changed), and
none on a second start, which finds the cache current. Broken URIs are listed with their
reasons while the rest serve.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.repositories import KSERVE_ROWS, MODELS, build_triton
from tests.server import ROOT, GunicornServer, free_port
from tests.storage_servers import GcsServer, HttpServer, S3Server, count

pytestmark = pytest.mark.e2e

#: Every object the good models are made of, as the S3 server sees its path.
S3_OBJECTS = [
    "/models/iris.joblib",
    "/models/triton/iris-triton/config.pbtxt",
    "/models/triton/iris-triton/1/model.onnx",
    "/models/triton/iris-triton/2/model.onnx",
]
GCS_DOWNLOAD = "/download/storage/v1/b/gmodels/o/iris.xgboost.json"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory, trained_models: Path) -> Iterator[S3Server]:
    server = S3Server().start()
    server.put("models", "iris.joblib", (MODELS / "iris.joblib").read_bytes())
    triton = build_triton(tmp_path_factory.mktemp("triton"), broken=False)
    for path in sorted(p for p in triton.rglob("*") if p.is_file()):
        server.put("models", f"triton/{path.relative_to(triton)}", path.read_bytes())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, trained_models: Path) -> Iterator[HttpServer]:
    folder = tmp_path_factory.mktemp("https") / "root"
    (folder / "forbidden").mkdir(parents=True)
    shutil.copy(MODELS / "iris.onnx", folder / "iris.onnx")
    shutil.copy(MODELS / "iris.joblib", folder / "forbidden" / "iris.joblib")
    server = HttpServer(folder, tls=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gcs(trained_models: Path) -> Iterator[GcsServer]:
    server = GcsServer().start()
    server.put("gmodels", "iris.xgboost.json", (MODELS / "iris.xgboost.json").read_bytes())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, s3: S3Server, web: HttpServer) -> Path:
    folder = tmp_path_factory.mktemp("storage-e2e")
    body = {
        "server": {
            "grpc": {"port": 0},
            "omi": {"port": 0},
            "storage": {"cache_dir": str(folder / "cache"), "timeout_s": 20},
        },
        "models": [
            {"name": "iris-s3", "runtime": "sklearn", "uri": "s3://models/iris.joblib"},
            {"name": "iris-https", "runtime": "onnx", "uri": f"{web.url}/iris.onnx"},
            {"name": "iris-gs", "runtime": "xgboost", "uri": "gs://gmodels/iris.xgboost.json"},
            {"name": "missing", "runtime": "sklearn", "uri": "s3://models/missing.joblib"},
            {"name": "forbidden", "runtime": "sklearn", "uri": f"{web.url}/forbidden/iris.joblib"},
            {
                "name": "unreachable",
                "runtime": "sklearn",
                "uri": f"http://127.0.0.1:{free_port()}/iris.joblib",
            },
        ],
        "repositories": [{"format": "triton", "path": "s3://models/triton"}],
    }
    path = folder / "models.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def _server(config: Path, s3: S3Server, web: HttpServer, gcs: GcsServer) -> GunicornServer:
    assert web.cert is not None
    # AWS_* as a deployment sets them; SSL_CERT_FILE is how OpenSSL (so aiohttp) trusts a CA.
    env = {**s3.env, **gcs.env, "SSL_CERT_FILE": str(web.cert)}
    return GunicornServer(config, workers=2, env=env)


def _gcs_downloads(gcs: GcsServer) -> int:
    return sum(
        1 for method, path in gcs.requests if method == "GET" and path.startswith(GCS_DOWNLOAD)
    )


def _predict(server: GunicornServer, model: str) -> list[int]:
    answer = requests.post(
        f"{server.url}/v1/models/{model}:predict", json={"instances": KSERVE_ROWS}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return [int(p) for p in answer.json()["predictions"]]


def _index(server: GunicornServer) -> dict[str, dict[str, str]]:
    answer = requests.post(f"{server.url}/v2/repository/index", json={}, timeout=30)
    return {entry["name"]: entry for entry in answer.json()}


def test_remote_models_are_downloaded_once_per_server_and_reused_on_restart(
    config: Path, s3: S3Server, web: HttpServer, gcs: GcsServer
) -> None:
    s3.clear()
    with _server(config, s3, web, gcs) as server:
        for model in ("iris-s3", "iris-https", "iris-gs", "iris-triton"):
            assert _predict(server, model) == [1, 1], model  # versicolor, as the local model
        index = _index(server)
        ready = ("iris-s3", "iris-https", "iris-gs", "iris-triton")
        assert {name: index[name]["state"] for name in ready} == dict.fromkeys(ready, "READY")
        reasons = {name: index[name]["reason"] for name in ("missing", "forbidden", "unreachable")}
        assert (
            "not found" in reasons["missing"] and "s3://models/missing.joblib" in reasons["missing"]
        )
        assert "access denied" in reasons["forbidden"]
        assert "unreachable" in reasons["unreachable"]
        assert all(index[name]["state"] == "UNAVAILABLE" for name in reasons)
    assert {path: count(s3.requests, "GET", path) for path in S3_OBJECTS} == dict.fromkeys(
        S3_OBJECTS, 1
    )
    assert count(web.requests, "GET", "/iris.onnx") == 1
    assert _gcs_downloads(gcs) == 1
    before = len(gcs.requests)

    s3.clear()
    web.requests.clear()
    with _server(config, s3, web, gcs) as server:
        assert _predict(server, "iris-s3") == [1, 1]
        assert _predict(server, "iris-triton") == [1, 1]
        assert _predict(server, "iris-gs") == [1, 1]
    assert {path: count(s3.requests, "GET", path) for path in S3_OBJECTS} == dict.fromkeys(
        S3_OBJECTS, 0
    )
    assert count(web.requests, "GET", "/iris.onnx") == 0
    assert count(web.requests, "HEAD", "/iris.onnx") >= 1  # asked whether it changed
    assert _gcs_downloads(gcs) == 1 and len(gcs.requests) > before


def test_kserve_arguments_may_name_an_s3_folder(
    tmp_path: Path, s3: S3Server, trained_models: Path
) -> None:
    # A pod without KServe's storage initializer: --model_dir is the storageUri itself.
    s3.put("models", "kserve/flowers/model.joblib", (MODELS / "iris.joblib").read_bytes())
    configmap = yaml.safe_load((ROOT / "deploy" / "kserve" / "configmap.yaml").read_text())
    config = tmp_path / "models.yaml"
    config.write_text(configmap["data"]["models.yaml"], encoding="utf-8")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**s3.env, "PATH": path, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    args = [
        "-m",
        "config.entrypoint",
        "--model_name=flowers",
        "--model_dir=s3://models/kserve/flowers",
    ]
    with GunicornServer(config, env=env, args=args) as server:
        assert _predict(server, "flowers") == [1, 1]
    assert list((tmp_path / "cache" / "modelport").glob("*-model.joblib/model.joblib"))
