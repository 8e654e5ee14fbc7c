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
