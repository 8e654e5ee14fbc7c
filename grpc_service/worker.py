"""gunicorn glue: one gRPC sidecar per worker, built after the fork and stopped with the worker.

gunicorn.conf.py's hooks call `start` (post_worker_init) and `stop` (worker_int, worker_exit).
grpc must not cross fork(), so nothing here runs in the master; under the gevent worker grpc is
switched to gevent's event loop before the server exists.

SIGTERM reaches the worker long before worker_exit: the worker first finishes its HTTP requests.
`start` therefore hooks SIGTERM itself to turn gRPC health NOT_SERVING at once, while the sidecar
keeps serving; `stop` then lets the gRPC calls in flight finish within what is left of the grace
period that SIGTERM started (the master SIGKILLs a worker still running at its end).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # grpc is imported only after the fork, in `start`
    from grpc_service.server import Sidecar

log = logging.getLogger("modelport.grpc")
_ATTRIBUTE = "modelport_grpc_server"
#: How long after an OMI Shutdown reply the master is signalled.
SHUTDOWN_DELAY_SECONDS = 0.5
#: What `stop` keeps of the grace period for the rest of worker_exit (the last metrics and
#: statistics writes), so it ends before the master's SIGKILL.
EXIT_RESERVE_SECONDS = 1.0
#: When this worker received SIGTERM (monotonic), if it has.
_sigterm_at: float | None = None


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

    sidecar, port = create_server(core.dataplane, core.settings, on_shutdown=stop_everything)
    sidecar.start()
    setattr(worker, _ATTRIBUTE, sidecar)
    _drain_on_sigterm(sidecar)
    worker.log.info("gRPC sidecar listening on port %s (pid %s)", port, os.getpid())


def _drain_on_sigterm(sidecar: Sidecar) -> None:
    """Chain a handler before gunicorn's own SIGTERM handler that drains the sidecar's health."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        global _sigterm_at
        if _sigterm_at is None:
            _sigterm_at = time.monotonic()
        _off_the_handler(sidecar.drain)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn set it: signal() resets it


def _off_the_handler(function: Callable[[], None]) -> None:
    """Run `function` soon, outside the signal handler, which must not block.

    The health servicer's lock may be held by a gRPC thread; under gevent the handler runs in
    the event loop, where even starting a thread (it waits for the start) is a blocking call,
    so a greenlet runs it there, as gunicorn does for its own SIGQUIT.
    """
    if _gevent_patched():
        import gevent

        gevent.spawn(function)
    else:
        threading.Thread(target=function, name="modelport-grpc-drain", daemon=True).start()


def grace_left(graceful_timeout: float, since: float | None, now: float) -> float:
    """The seconds of grace `stop` gives gRPC calls at `now`: what is left of the period that
    began at `since` (SIGTERM), less `EXIT_RESERVE_SECONDS`; the whole period without a SIGTERM
    (a worker that stops on its own, after `max_requests`)."""
    if since is None:
        return graceful_timeout
    return max(0.0, graceful_timeout - (now - since) - EXIT_RESERVE_SECONDS)


def stop(worker: Any, grace: float | None = None) -> None:
    """Report NOT_SERVING (if SIGTERM has not already), stop accepting gRPC calls, and let those
    in flight finish within `grace` seconds (by default what is left of gunicorn's
    graceful_timeout since SIGTERM: the HTTP drain used the rest)."""
    sidecar: Sidecar | None = getattr(worker, _ATTRIBUTE, None)
    if sidecar is None:
        return  # never started, already stopped, or called in the master
    setattr(worker, _ATTRIBUTE, None)
    if grace is None:
        grace = grace_left(float(worker.cfg.graceful_timeout), _sigterm_at, time.monotonic())
    log.info("gRPC sidecar stopping with %.1f s of grace (pid %s)", grace, os.getpid())
    sidecar.stop(grace).wait(grace + EXIT_RESERVE_SECONDS / 2)
