"""app/storage: storage URIs fetched once into the cache, against real servers on loopback.

One moto S3 server, one http.server and one GCS emulator for the module; each test gets its own
cache folder and its own objects.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.repositories import local_folder, scan
from app.storage import StorageError, fetch
from app.storage.cache import cache_root
from config.settings import RepositorySettings, StorageSettings
from tests.storage_servers import GcsServer, HttpServer, S3Server, count, running


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    saved = {key: os.environ.get(key) for key in server.env}
    os.environ.update(server.env)  # AWS_* as a deployment sets them; AWS_ENDPOINT_URL too
    with running(server):
        yield server
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    server = HttpServer(tmp_path_factory.mktemp("web") / "root")
    server.folder.mkdir()
    with running(server):
        yield server


@pytest.fixture(scope="module")
def gcs() -> Iterator[GcsServer]:
    server = GcsServer()
    os.environ.update(server.env)
    with running(server):
        yield server
    os.environ.pop("STORAGE_EMULATOR_HOST", None)


@pytest.fixture()
def storage(tmp_path: Path) -> StorageSettings:
    return StorageSettings(cache_dir=tmp_path / "cache", timeout_s=5.0)


def test_an_s3_object_is_downloaded_once_then_reused_until_it_changes(
    s3: S3Server, storage: StorageSettings
) -> None:
    s3.put("unit", "one/model.bin", b"first")
    s3.clear()
    path = fetch("s3://unit/one/model.bin", storage)
    assert (path.name, path.read_bytes()) == ("model.bin", b"first")
    assert fetch("s3://unit/one/model.bin", storage) == path
    assert count(s3.requests, "GET", "/unit/one/model.bin") == 1  # the second asked HEAD only
    s3.put("unit", "one/model.bin", b"second, longer")
    assert fetch("s3://unit/one/model.bin", storage).read_bytes() == b"second, longer"
    assert count(s3.requests, "GET", "/unit/one/model.bin") == 2


def test_an_s3_prefix_is_a_folder(s3: S3Server, storage: StorageSettings) -> None:
    s3.put("unit", "repo/iris/1/model.onnx", b"graph")
    s3.put("unit", "repo/iris/config.pbtxt", b"name: 'iris'")
    folder = fetch("s3://unit/repo/", storage)
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "iris/1/model.onnx",
        "iris/config.pbtxt",
    ]


def test_workers_that_fetch_at_once_download_once(s3: S3Server, storage: StorageSettings) -> None:
    s3.put("unit", "together.bin", b"x" * 100_000)
    s3.clear()
    paths: list[Path] = []
    threads = [
        threading.Thread(target=lambda: paths.append(fetch("s3://unit/together.bin", storage)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(paths)) == 1 and len(paths) == 4
    assert count(s3.requests, "GET", "/unit/together.bin") == 1


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("s3://unit/missing.joblib", "not found"),
        ("s3://no-such-bucket/m.joblib", "not found"),
    ],
)
def test_s3_failures_say_why(s3: S3Server, storage: StorageSettings, uri: str, reason: str) -> None:
    with pytest.raises(StorageError, match=f"'{uri}': {reason}"):
        fetch(uri, storage)


def test_too_big_is_refused_before_downloading(s3: S3Server, tmp_path: Path) -> None:
    s3.put("unit", "big.bin", b"x" * 5000)
    s3.clear()
    small = StorageSettings(cache_dir=tmp_path, max_bytes=1000)
    with pytest.raises(StorageError, match=r"too big \(5000 bytes; server.storage.max_bytes"):
        fetch("s3://unit/big.bin", small)
    assert count(s3.requests, "GET", "/unit/big.bin") == 0


def test_an_unreachable_store_fails_in_time(tmp_path: Path) -> None:
    from tests.server import free_port

    storage = StorageSettings(
        cache_dir=tmp_path, timeout_s=2.0, s3_endpoint_url=f"http://127.0.0.1:{free_port()}"
    )
    with pytest.raises(StorageError, match="unreachable"):
        fetch("s3://unit/model.bin", storage)


def test_http_files_are_cached_by_size_and_last_modified(
    web: HttpServer, storage: StorageSettings
) -> None:
    (web.folder / "iris.joblib").write_bytes(b"weights")
    path = fetch(f"{web.url}/iris.joblib", storage)
    assert path.read_bytes() == b"weights"
    fetch(f"{web.url}/iris.joblib", storage)
    assert count(web.requests, "GET", "/iris.joblib") == 1


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/missing.joblib", "not found"),
        ("/forbidden/m.joblib", "access denied"),
        ("/slow/m.joblib", "timed out after 1 s"),
    ],
)
def test_http_failures_say_why(web: HttpServer, tmp_path: Path, path: str, reason: str) -> None:
    storage = StorageSettings(cache_dir=tmp_path, timeout_s=1.0)
    with pytest.raises(StorageError, match=reason):
        fetch(f"{web.url}{path}", storage)


def test_a_server_that_sends_more_than_the_limit_is_cut_off(
    web: HttpServer, tmp_path: Path
) -> None:
    (web.folder / "large.bin").write_bytes(b"x" * 300_000)
    with pytest.raises(StorageError, match="too big"):
        fetch(f"{web.url}/large.bin", StorageSettings(cache_dir=tmp_path, max_bytes=100_000))
    assert not list(tmp_path.rglob("marker.json"))  # nothing half-fetched is taken as a copy


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def test_an_archive_is_unpacked_into_a_folder(web: HttpServer, storage: StorageSettings) -> None:
    files = {"mlflow-model/MLmodel": b"flavors: {}", "mlflow-model/m.pkl": b"1"}
    (web.folder / "export.tar.gz").write_bytes(_tar_gz(files))
    folder = fetch(f"{web.url}/export.tar.gz", storage)
    assert folder.name == "export"
    assert (folder / "mlflow-model" / "MLmodel").read_bytes() == b"flavors: {}"


def test_an_archive_counts_what_it_unpacks_to(web: HttpServer, tmp_path: Path) -> None:
    (web.folder / "bomb.tar.gz").write_bytes(_tar_gz({"zeros": bytes(200_000)}))
    storage = StorageSettings(cache_dir=tmp_path, max_bytes=50_000)
    with pytest.raises(StorageError, match="too big once unpacked"):
        fetch(f"{web.url}/bomb.tar.gz", storage)


def test_gs_objects_and_prefixes(gcs: GcsServer, storage: StorageSettings) -> None:
    gcs.put("gbucket", "iris.joblib", b"weights")
    gcs.put("gbucket", "repo/a/config.pbtxt", b"name: 'a'")
    assert fetch("gs://gbucket/iris.joblib", storage).read_bytes() == b"weights"
    fetch("gs://gbucket/iris.joblib", storage)
    downloads = [path for method, path in gcs.requests if "alt=media" in path and method == "GET"]
    assert len([p for p in downloads if "iris.joblib" in p]) == 1
    folder = fetch("gs://gbucket/repo", storage)
    assert (folder / "a" / "config.pbtxt").read_bytes() == b"name: 'a'"
    with pytest.raises(StorageError, match="not found"):
        fetch("gs://gbucket/missing", storage)


def test_a_remote_repository_path_is_fetched_and_a_broken_one_is_a_problem(
    s3: S3Server, storage: StorageSettings, tmp_path: Path
) -> None:
    s3.put("unit", "mlflow/m/MLmodel", b"flavors: {}\n")
    good = RepositorySettings("mlflow", "s3://unit/mlflow", tmp_path, storage)
    bad = RepositorySettings("mlflow", "s3://unit/absent", tmp_path, storage)
    assert (local_folder(good) / "m" / "MLmodel").is_file()
    found = scan([good, bad])
    assert [m.name for m in found.models] == ["m"]
    assert found.problems == ("mlflow repository: storage 's3://unit/absent': not found",)
    local = RepositorySettings("mlflow", f"file://{tmp_path}/x", tmp_path, storage)
    assert local_folder(local) == tmp_path / "x"


def test_the_cache_defaults_to_xdg(tmp_path: Path) -> None:
    xdg = {"XDG_CACHE_HOME": str(tmp_path)}
    assert cache_root(StorageSettings(), xdg) == tmp_path / "modelport"
    assert cache_root(StorageSettings(cache_dir=tmp_path / "c")) == tmp_path / "c"


def test_the_manager_loads_a_remote_model_and_lists_a_broken_one_with_why(
    s3: S3Server, storage: StorageSettings, trained_models: Path
) -> None:
    from dataclasses import replace

    from app.manager import ModelManager
    from config.settings import ModelSettings, ServerSettings, Settings

    s3.put("unit", "iris.joblib", (trained_models / "iris.joblib").read_bytes())
    models = (
        ModelSettings(name="iris", runtime="sklearn", storage_uri="s3://unit/iris.joblib"),
        ModelSettings(name="gone", runtime="sklearn", storage_uri="s3://unit/gone.joblib"),
    )
    manager = ModelManager(
        Settings(server=replace(ServerSettings(), storage=storage), models=models)
    )
    manager.load_all()
    model = manager.get("iris")
    assert model.uri is not None and model.uri.is_relative_to(storage.cache_dir or Path("/"))
    gone = manager.entry("gone")
    assert gone.reason == "failed to load: storage 's3://unit/gone.joblib': not found"
