"""The Flask app factory: the core, the blueprints and the error handlers in one WSGI app.

`gunicorn wsgi:app` calls it once per worker; tests call it with `overrides`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from app import logging as json_logging
from app.core import build_core
from app.jsonprovider import OrjsonProvider
from blueprints import (
    config_ext,
    docs,
    errors,
    explain,
    hooks,
    metrics,
    repository,
    routed,
    v1,
    v2,
)
from blueprints.flask_app import ModelportFlask
from config.settings import REPORTED_ENV, load_settings


def create_app(
    config_path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Flask:
    """Build the Flask app: settings, models, blueprints and error handlers.

    `overrides` is the test seam: Flask config keys, plus `settings` (a `Settings` object used
    instead of reading a file). The factory opens no sockets and starts no threads; the gRPC
    sidecar is started per worker by gunicorn's hooks.
    """
    overrides = dict(overrides or {})
    settings = overrides.pop("settings", None) or load_settings(config_path)
    json_logging.configure()
    if os.environ.get(REPORTED_ENV) != str(settings.source):  # gunicorn's master logged them
        for warning in settings.warnings:
            logging.getLogger("modelport.config").warning("%s", warning)

    app = ModelportFlask(__name__)
    app.json = OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.server.limits.max_request_bytes
    app.config.update(overrides)
    app.extensions["modelport"] = build_core(settings)

    errors.init_app(app)
    hooks.init_app(app)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(v1.bp)
    app.register_blueprint(repository.bp)  # before v2: /v2/models/stats beats /v2/models/<name>
    app.register_blueprint(v2.bp)
    app.register_blueprint(explain.bp)
    app.register_blueprint(config_ext.bp)
    app.register_blueprint(routed.bp)
    app.register_blueprint(docs.bp)
    return app
