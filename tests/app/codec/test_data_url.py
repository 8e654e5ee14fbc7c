"""MLRun's `data_url` form: inputs read from files, only under `limits.data_roots`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.codec.data_url import read_data_url, resolve_data_url
from app.errors import Forbidden, InvalidInput
from blueprints.factory import create_app

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two data roots with sample files, a secret folder beside them, and the config file."""
    base = tmp_path_factory.mktemp("data-url")
    data, more, secret = base / "data", base / "more", base / "secret"
    for folder in (data, more, secret, data / "nested"):
        folder.mkdir()
    np.save(data / "matrix.npy", np.arange(6, dtype=np.float64).reshape(2, 3))
    np.save(data / "nested" / "words.npy", np.array(["a", "b\u00e9"]))
    np.save(more / "ints.npy", np.array([[1, 2]], dtype=">i4"))  # big-endian on disk
    np.savez(data / "pair.npz", a=np.array([1.5], dtype=np.float32), b=np.array([7], np.int8))
    (data / "rows.json").write_bytes(orjson.dumps([[1, 2, 3], [4, 5, 6]]))
    (data / "request.json").write_bytes(orjson.dumps({"inputs": [[0.5, 0.25]]}))
    (data / "empty.json").write_bytes(b"[]")
    (data / "broken.npy").write_bytes(b"\x93NUMPY this is not an array")
    (data / "table.csv").write_text("1,2,3\n")
    np.save(data / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(data / "large.npy", np.zeros(LIMIT // 8 + 1024, dtype=np.float64))
    np.save(secret / "key.npy", np.array([42.0]))
    os.symlink(secret / "key.npy", data / "escape.npy")
    os.symlink(data / "matrix.npy", data / "alias.npy")
    os.symlink(secret, data / "secret-link")
    config = base / "config.yaml"
    config.write_text(
        "server:\n"
        "  name: data-url-test\n"
        "  grpc: {port: 0}\n"
        "  limits:\n"
        f"    max_request_bytes: {LIMIT}\n"
        f"    data_roots: [data, {more}]\n"
        "models:\n"
        "  - {name: echo, runtime: python, class: 'examples.echo:EchoModel'}\n"
        "  - {name: sum, runtime: python, class: 'examples.tensor_sum:SumModel'}\n"
    )
    return {"base": base, "data": data, "more": more, "secret": secret, "config": config}


@pytest.fixture(scope="module")
def data_app(folders: dict[str, Path]) -> Flask:
    return create_app(folders["config"], {"TESTING": True})


@pytest.fixture()
def data_client(data_app: Flask) -> Iterator[FlaskClient]:
    yield data_app.test_client()


def infer(client: FlaskClient, url: object, model: str = "echo", **envelope: object):
    return client.post(f"/v2/models/{model}/infer", json={"data_url": url, **envelope})


def outputs(response) -> dict[str, tuple[str, list, list]]:
    assert response.status_code == 200, response.json
    return {o["name"]: (o["datatype"], o["shape"], o["data"]) for o in response.json["outputs"]}


def test_the_roots_come_from_the_config_relative_to_its_folder(
    data_app: Flask, folders: dict[str, Path]
) -> None:
    roots = data_app.extensions["modelport"].settings.server.limits.data_roots
    assert roots == (folders["data"].resolve(), folders["more"])


def test_npy_is_the_first_input(data_client: FlaskClient, folders: dict[str, Path]) -> None:
    answer = outputs(infer(data_client, str(folders["data"] / "matrix.npy")))
    assert answer == {"input-0": ("FP64", [2, 3], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])}


def test_npy_rows_are_cast_to_the_model_datatype(
    data_client: FlaskClient, folders: dict[str, Path]
) -> None:
    answer = outputs(infer(data_client, str(folders["data"] / "matrix.npy"), "sum"))
    assert answer == {"sum": ("FP32", [2], [3.0, 12.0])}


def test_npy_strings_and_big_endian_arrays(
    data_client: FlaskClient, folders: dict[str, Path]
) -> None:
    assert outputs(infer(data_client, "nested/words.npy")) == {
        "input-0": ("BYTES", [2], ["a", "b\u00e9"])
    }
    assert outputs(infer(data_client, str(folders["more"] / "ints.npy"))) == {
        "input-0": ("INT32", [1, 2], [1, 2])
    }


def test_npz_arrays_are_named_inputs(data_client: FlaskClient) -> None:
    assert outputs(infer(data_client, "pair.npz")) == {
        "a": ("FP32", [1], [1.5]),
        "b": ("INT8", [1], [7]),
    }


def test_json_rows_and_mlrun_request_files(data_client: FlaskClient) -> None:
    assert outputs(infer(data_client, "rows.json", "sum")) == {"sum": ("FP32", [2], [6.0, 15.0])}
    assert outputs(infer(data_client, "request.json")) == {"input-0": ("FP64", [1, 2], [0.5, 0.25])}


def test_file_urls_relative_paths_and_inner_symlinks(
    data_client: FlaskClient, folders: dict[str, Path]
) -> None:
    expected = outputs(infer(data_client, "matrix.npy"))
    assert outputs(infer(data_client, f"file://{folders['data']}/matrix.npy")) == expected
    assert outputs(infer(data_client, "./nested/../matrix.npy")) == expected
    assert outputs(infer(data_client, "alias.npy")) == expected  # a symlink that stays inside


def test_envelope_fields_still_apply(data_client: FlaskClient) -> None:
    response = infer(data_client, "matrix.npy", id="req-7", parameters={"binary_data_output": True})
    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    length = int(response.headers["Inference-Header-Content-Length"])
    assert orjson.loads(response.get_data()[:length])["id"] == "req-7"
    assert response.get_data()[length:] == np.arange(6, dtype="<f8").tobytes()


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/etc/passwd", 403, "outside the folders in limits.data_roots"),
        ("../secret/key.npy", 403, "outside"),
        ("{data}/../secret/key.npy", 403, "outside"),
        ("{data}/nested/../../secret/key.npy", 403, "outside"),
        ("escape.npy", 403, "outside"),  # a symlink inside a root pointing out of it
        ("secret-link/key.npy", 403, "outside"),  # a folder symlink pointing out
        ("file:///etc/hostname", 403, "outside"),
        ("missing.npy", 400, "is not a file"),
        ("nested", 400, "is not a file"),
        ("table.csv", 400, "unsupported file type '.csv'"),
        ("s3://bucket/matrix.npy", 400, "only local file paths"),
        ("http://example.com/matrix.npy", 400, "only local file paths"),
        ("file://otherhost/data/matrix.npy", 400, "only local file paths"),
        ("", 400, "non-empty string"),
        (17, 400, "non-empty string"),
        ("matrix\x00.npy", 400, "NUL"),
        ("broken.npy", 400, "is not a valid .npy file"),
        ("objects.npy", 400, "is not a valid .npy file"),  # pickles stay off
        ("empty.json", 400, "non-empty list of rows"),
        ("large.npy", 413, "more than limits.max_request_bytes"),
    ],
)
def test_refused_data_urls(
    data_client: FlaskClient, folders: dict[str, Path], url: object, status: int, words: str
) -> None:
    if isinstance(url, str):
        url = url.format(data=folders["data"])
    response = infer(data_client, url)
    assert response.status_code == status, response.json
    assert words in response.json["error"]


def test_data_url_and_inputs_together_are_refused(data_client: FlaskClient) -> None:
    response = data_client.post(
        "/v2/models/echo/infer", json={"data_url": "matrix.npy", "inputs": [[1, 2]]}
    )
    assert response.status_code == 400
    assert "either 'inputs' or 'data_url'" in response.json["error"]


def test_data_url_is_off_without_roots(client: FlaskClient) -> None:
    response = client.post("/v2/models/echo/infer", json={"data_url": "/tmp/x.npy"})
    assert response.status_code == 403
    assert "data_url is disabled" in response.json["error"]


def test_the_reader_without_a_server(folders: dict[str, Path]) -> None:
    roots = (folders["data"],)
    assert resolve_data_url("matrix.npy", roots) == (folders["data"] / "matrix.npy").resolve()
    (tensor,) = read_data_url("matrix.npy", roots, LIMIT)
    assert tensor.name == "input-0" and tensor.datatype == "FP64"
    with pytest.raises(Forbidden):
        resolve_data_url(str(folders["secret"] / "key.npy"), roots)
    with pytest.raises(Forbidden, match="disabled"):
        resolve_data_url("matrix.npy", ())
    with pytest.raises(InvalidInput):
        resolve_data_url("missing.npy", roots)
