"""The per-process core that both front-ends serve: settings, models, data plane, credentials.

`build_core` loads the models and chooses how repository changes and statistics reach the
other gunicorn workers; it opens no sockets and starts no threads (gunicorn's hook starts the
workers' watchers, and the gRPC sidecar, after the fork).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from app.auth import Authenticator
from app.control import ControlChannel
from app.dataplane import DataPlane
from app.manager import ModelManager
from app.stats import StatsRegistry
from app.version import __version__
from app.workers import SharedWorkers, Workers
from config.settings import Settings

#: The folder of the workers' control channel; gunicorn.conf.py makes it in the master.
STATE_DIR_VARIABLE = "MODELPORT_STATE_DIR"


@dataclass(frozen=True)
class Modelport:
    """What views and servicers reach: the Flask app keeps it in `app.extensions["modelport"]`."""

    settings: Settings
    manager: ModelManager
    dataplane: DataPlane
    authenticator: Authenticator


def workers_for(manager: ModelManager, stats: StatsRegistry, environ: Mapping[str, str]) -> Workers:
    """How this process shares repository changes and statistics with the server's others.

    Under gunicorn (`MODELPORT_STATE_DIR` set by its master), through the control channel of
    that folder, whose master is this process's parent; otherwise this process alone.
    """
    directory = environ.get(STATE_DIR_VARIABLE)
    if not directory:
        return Workers(manager, stats)
    return SharedWorkers(manager, stats, ControlChannel(directory, os.getppid()))


def build_core(settings: Settings, environ: Mapping[str, str] | None = None) -> Modelport:
    """Mount and load the configured models, and build the data plane over them.

    A model that fails to load is recorded as failed (the others serve); nothing here raises
    for one.
    """
    manager = ModelManager(settings)
    manager.load_all()
    workers = workers_for(manager, StatsRegistry(), os.environ if environ is None else environ)
    dataplane = DataPlane(manager, settings.server.name, __version__, workers)
    return Modelport(settings, manager, dataplane, Authenticator(settings.server.auth))
