"""Modelport: one process tree serving the same models over KServe v1, OIP and OMI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask

from app.flaskapp import ModelportFlask

if TYPE_CHECKING:  # the package stays light: `config.settings` imports `app.types`
    from app.dataplane import DataPlane
    from app.manager import ModelManager
    from config.settings import Settings

try:
    __version__ = metadata.version("modelport")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"


@dataclass(frozen=True)
class Modelport:
    """The per-process core that views and servicers reach through `app.extensions`."""

    settings: Settings
    manager: ModelManager
    dataplane: DataPlane


def create_app(
    config_path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Flask:
    """Build the Flask app: settings, models, blueprints and error handlers.

    `overrides` is the test seam: Flask config keys, plus `settings` (a `Settings` object used
    instead of reading a file). The factory opens no sockets and starts no threads; the gRPC
    sidecar is started per worker by gunicorn's hooks.
    """
    from app import logging as json_logging
    from app.dataplane import DataPlane
    from app.jsonprovider import OrjsonProvider
    from app.manager import ModelManager
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
    from config.settings import load_settings

    overrides = dict(overrides or {})
    settings = overrides.pop("settings", None) or load_settings(config_path)
    json_logging.configure()

    app = ModelportFlask(__name__)
    app.json = OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.server.limits.max_request_bytes
    app.config.update(overrides)

    manager = ModelManager(settings)
    manager.load_all()
    dataplane = DataPlane(manager, settings.server.name, __version__)
    app.extensions["modelport"] = Modelport(settings, manager, dataplane)

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
