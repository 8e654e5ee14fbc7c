"""The OpenAPI document: valid OpenAPI 3, complete (every route), and true (schemathesis).

schemathesis drives a real gunicorn serving tests/data/openapi.yaml, whose models all behave:
any 500 it finds is a bug, and every answer must match the status codes, media types and
schemas the document gives for it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate

from blueprints.factory import create_app
from blueprints.hooks import PUBLIC_ENDPOINTS
from blueprints.openapi import openapi_json, undocumented_endpoints
from config.settings import AuthSettings, load_settings
from tests.server import ROOT, GunicornServer

OPENAPI_CONFIG = ROOT / "tests" / "data" / "openapi.yaml"
SCHEMATHESIS_CONFIG = ROOT / "tests" / "data" / "schemathesis.toml"
#: Generated requests per operation and phase (the examples phase adds its own): 8 in `make
#: test`, more in `make soak` (at least 2,000 test cases in all).
MAX_EXAMPLES = int(os.environ.get("MODELPORT_SCHEMATHESIS_EXAMPLES", "8"))


def _path(rule: str) -> str:
    """A werkzeug rule as an OpenAPI path: `<name>` and `<int:n>` become `{name}`, `{n}`."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


@pytest.fixture(scope="module")
def doc_app() -> Flask:
    """The app over the schemathesis config, in-process."""
    app = create_app(OPENAPI_CONFIG, {"TESTING": True})
    assert "docs" in app.blueprints, (
        "blueprints.docs is not registered: create_app needs app.register_blueprint(docs.bp)"
    )
    return app


@pytest.fixture(scope="module")
def document(doc_app: Flask) -> dict[str, Any]:
    response = doc_app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.")


def test_v2_path_serves_the_same_document(doc_app: Flask, document: dict[str, Any]) -> None:
    assert doc_app.test_client().get("/v2/openapi.json").get_json() == document


def test_document_is_built_once_per_app(doc_app: Flask) -> None:
    assert openapi_json(doc_app) is openapi_json(doc_app)


def test_every_endpoint_is_described(doc_app: Flask) -> None:
    """A new route needs an entry in blueprints/operations.py (body, answer, error statuses)."""
    assert undocumented_endpoints(doc_app) == []


def test_every_route_and_method_is_a_path(doc_app: Flask, document: dict[str, Any]) -> None:
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    routed = set()
    for rule in doc_app.url_map.iter_rules():
        if rule.endpoint.endswith("static"):
            continue
        methods = (rule.methods or set()) - {"HEAD", "OPTIONS"}
        routed |= {(method, _path(rule.rule)) for method in methods}
    assert documented == routed


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        ("/v1/models/{name}:predict", "V1Request"),
        ("/v2/models/{name}/infer", "InferRequest"),
        ("/v2/models/{name}/versions/{version}/predict", "InferRequest"),
        ("/v2/models/{name}/infer_dict", "InferDictRequest"),
        ("/v2/repository/index", "RepositoryIndexRequest"),
        ("/v2/repository/models/{name}/load", "RepositoryRequest"),
    ],
)
def test_request_bodies_are_the_schemas_the_views_load(
    document: dict[str, Any], path: str, schema: str
) -> None:
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": f"#/components/schemas/{schema}"}


def test_every_error_answer_is_the_error_schema(document: dict[str, Any]) -> None:
    components = document["components"]["responses"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    continue
                name = response["$ref"].rpartition("/")[2]
                content = components[name]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (
                    method,
                    path,
                    status,
                )


def test_statuses_are_the_ones_the_server_answers(document: dict[str, Any]) -> None:
    statuses = {
        status
        for item in document["paths"].values()
        for operation in item.values()
        for status in operation["responses"]
    }
    assert statuses <= {"200", "400", "403", "404", "413", "415", "500", "501", "503"}


def test_credentials_are_documented_where_auth_is_configured(document: dict[str, Any]) -> None:
    settings = load_settings(OPENAPI_CONFIG)
    auth = AuthSettings(bearer_tokens=("secret",), api_keys=("key",))
    secured_app = create_app(
        overrides={
            "TESTING": True,
            "settings": replace(settings, server=replace(settings.server, auth=auth)),
        }
    )
    secured = (
        secured_app.test_client().get("/openapi.json", headers={"X-API-Key": "key"}).get_json()
    )
    validate(secured)
    assert set(secured["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    # By path and method: `GET /` is public, the body-routed `POST /` is not.
    public = {
        (_path(rule.rule), method.lower())
        for rule in secured_app.url_map.iter_rules()
        if rule.endpoint in PUBLIC_ENDPOINTS
        for method in rule.methods or ()
    }
    for path, item in secured["paths"].items():
        for method, operation in item.items():
            closed = (path, method) not in public
            assert ("401" in operation["responses"]) is closed, (path, method)
            assert ("security" in operation) is closed, (path, method)
    assert "securitySchemes" not in document["components"]
    assert not any(
        "401" in op["responses"] for item in document["paths"].values() for op in item.values()
    )


# -- schemathesis against a real gunicorn -------------------------------------------------------


@pytest.fixture(scope="module")
def openapi_server() -> Iterator[GunicornServer]:
    """One worker, so what one request unloads, the next request sees."""
    with GunicornServer(config=OPENAPI_CONFIG, workers=1) as running:
        yield running


def _schemathesis(server: GunicornServer, tmp_path: Path, *selection: str) -> None:
    """Run the schemathesis CLI on the served document, failing with its report.

    The CLI rather than schemathesis' pytest plugin: `from_fixture` (the plugin's way to load a
    document from a fixture) reads `Function._nodeid`, which pytest 9 no longer has.
    """
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(SCHEMATHESIS_CONFIG),
        "run",
        f"{server.url}/openapi.json",
        "--phases=examples,coverage,fuzzing",
        f"--max-examples={MAX_EXAMPLES}",
        "--generation-deterministic",
        "--workers=1",
        "--request-timeout=30",
        "--no-color",
        *selection,
    ]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=max(300, 30 * MAX_EXAMPLES),
        check=False,
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    print(result.stdout[-3000:])  # its summary: test cases generated, per check (make soak, -s)


@pytest.mark.e2e
def test_server_answers_as_documented(openapi_server: GunicornServer, tmp_path: Path) -> None:
    """Every operation but unload: examples first (real models), then generated requests."""
    _schemathesis(openapi_server, tmp_path, "--exclude-path-regex=/unload$")


@pytest.mark.e2e
def test_unload_answers_as_documented(openapi_server: GunicornServer, tmp_path: Path) -> None:
    """Unload on its own, last: after it the example model answers 503, as documented."""
    _schemathesis(openapi_server, tmp_path, "--include-path-regex=/unload$")
