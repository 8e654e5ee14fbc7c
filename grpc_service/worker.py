"""gunicorn glue: one gRPC sidecar per worker, built after the fork and stopped with the worker.

gunicorn.conf.py's hooks call `start` (post_worker_init) and `stop` (worker_int, worker_exit).
grpc must not cross fork(), so nothing here runs in the master; under the gevent worker grpc is
switched to gevent's event loop before the server exists.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

log = logging.getLogger("modelport.grpc")
_ATTRIBUTE = "modelport_grpc_server"
#: How long after an OMI Shutdown reply the master is signalled.
SHUTDOWN_DELAY_SECONDS = 0.5


def _gevent_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is installed with Modelport
        return False
    return bool(monkey.is_module_patched("socket"))


def start(worker: Any) -> None:
    """Build and start the sidecar for the worker's app (nothing when `grpc.port` is 0)."""
    core = getattr(worker.wsgi, "extensions", {}).get("modelport")
    if core is None:
        worker.log.warning("gRPC sidecar not started: the WSGI app is not Modelport's")
        return
    if core.settings.server.grpc.port == 0:
        return
    if _gevent_patched():
        from grpc.experimental import gevent as grpc_gevent

        grpc_gevent.init_gevent()
    from grpc_service.server import create_server

    master = worker.ppid

    def stop_everything() -> None:
        # OMI Shutdown stops the whole server: the master then stops every worker gracefully.
        # The RPC is over when this runs, but its reply may still be in flight: a worker that
        # exits at once can reset the connection under it, so the signal waits a moment.
        timer = threading.Timer(SHUTDOWN_DELAY_SECONDS, os.kill, (master, signal.SIGTERM))
        timer.daemon = True
        timer.start()

    server, port = create_server(core.dataplane, core.settings, on_shutdown=stop_everything)
    server.start()
    setattr(worker, _ATTRIBUTE, server)
    worker.log.info("gRPC sidecar listening on port %s (pid %s)", port, os.getpid())


def stop(worker: Any, grace: float | None = None) -> None:
    """Stop accepting gRPC calls, let in-flight ones finish within `grace` seconds."""
    server = getattr(worker, _ATTRIBUTE, None)
    if server is None:
        return  # never started, already stopped, or called in the master
    setattr(worker, _ATTRIBUTE, None)
    if grace is None:
        grace = float(worker.cfg.graceful_timeout)
    server.stop(grace).wait(grace + 1)
