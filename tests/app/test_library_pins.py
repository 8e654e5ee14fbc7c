"""Each module that reaches into a library's internals runs only on the version it was written
(and benchmarked) for: a new version means reading the library again and measuring again."""

from __future__ import annotations

from importlib import metadata
from types import ModuleType

import pytest

from app import gunicorn_logger, prometheus_histogram
from app.codec import envelopes, json_numbers
from app.httpworker import connection, environ
from app.runtimes import linear
from blueprints import answer, flask_app

ADAPTERS = [
    prometheus_histogram,
    gunicorn_logger,
    linear,
    envelopes,
    connection,
    environ,
    flask_app,
    answer,
    json_numbers,
]


@pytest.mark.parametrize("module", ADAPTERS, ids=lambda module: module.__name__)
def test_written_for_the_installed_version(module: ModuleType) -> None:
    distribution, version = module.WRITTEN_FOR
    assert metadata.version(distribution) == version, (
        f"{module.__name__} was written for {distribution} {version}: re-read what it uses, "
        "re-run its benchmark, and update its docstring and WRITTEN_FOR"
    )
    assert version in (module.__doc__ or ""), "the docstring names the version it measured"
