"""Shared fixtures: settings, app and client from the factory; a real gunicorn for e2e."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from blueprints.factory import create_app
from tests.server import E2E_CONFIG, ROOT, GunicornServer

MODELS = ROOT / "models"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--deploy",
        action="store_true",
        help="also run the tests marked deploy (Docker; `make deploy-test`)",
    )
    parser.addoption(
        "--soak",
        action="store_true",
        help="also run the tests marked soak (minutes of load; `make soak`)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `deploy` build images and start Docker: only `--deploy` selects them; tests
    marked `soak` run for minutes: only `--soak` selects them.

    Deselected rather than skipped, and whatever `-m` says, so `make test` stays Docker-free
    and short.
    """
    for marker in ("deploy", "soak"):
        if config.getoption(f"--{marker}"):
            continue
        chosen = [item for item in items if item.get_closest_marker(marker)]
        if chosen:
            config.hook.pytest_deselected(items=chosen)
            items[:] = [item for item in items if not item.get_closest_marker(marker)]


@pytest.fixture(scope="session", autouse=True)
def trained_models() -> Path:
    """The example models, trained once if `make` has not done it already."""
    if not (MODELS / ".trained").exists():
        subprocess.run(
            [sys.executable, "-m", "examples.train", "--out", str(MODELS)], cwd=ROOT, check=True
        )
        (MODELS / ".trained").touch()
    return MODELS


@pytest.fixture(scope="session")
def app() -> Flask:
    """The app over the e2e config, built in-process (no gRPC sidecar)."""
    os.environ.setdefault("MODELPORT_GRPC_PORT", "0")
    return create_app(E2E_CONFIG, {"TESTING": True})


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    """Flask's test client for the shared app."""
    return app.test_client()


@pytest.fixture(scope="session")
def server() -> Iterator[GunicornServer]:
    """A real `gunicorn wsgi:app` (2 workers) serving the e2e config, for the whole session."""
    with GunicornServer(workers=2) as running:
        yield running
