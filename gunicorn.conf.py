"""gunicorn settings for `gunicorn wsgi:app`; environment variables override each default."""

import os
import shutil
import tempfile

from config.settings import load_settings

_server = load_settings().server

# prometheus-client's multiprocess mode: every worker writes its samples under this folder and
# /metrics adds them up. Set in the master before any worker exists; kept across `kill -HUP`
# (the config is re-read, the variable is already set) so counters survive a reload.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="modelport-metrics-")
    os.environ["MODELPORT_OWNS_METRICS_DIR"] = "1"

# Bind where the config file says (server.http), unless MODELPORT_BIND says otherwise.
bind = os.environ.get("MODELPORT_BIND", f"{_server.http.host}:{_server.http.port}")
workers = int(os.environ.get("MODELPORT_WORKERS", "2"))
worker_class = os.environ.get("MODELPORT_WORKER_CLASS", "gthread")
threads = int(os.environ.get("MODELPORT_THREADS", "8"))
# Models load in each worker after the fork (never preload): the gRPC sidecar and native
# runtimes must not be shared across fork().
preload_app = False
timeout = int(os.environ.get("MODELPORT_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("MODELPORT_GRACEFUL_TIMEOUT", "30"))
# tritonclient's HTTP client never retries a POST on a connection the server closed while it was
# compressing a large body: keep idle connections longer than a slow client takes.
keepalive = 75
# One JSON object a line for gunicorn's own messages too; the access log is Modelport's
# (`modelport.access`, with model, protocol and request id), so gunicorn's is off.
accesslog = None
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.logging.json_formatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
    },
}
# gunicorn 27's control socket has one default path per user: several servers on one host
# (tests, compose replicas sharing a home) would fight over it, and nothing here uses it.
control_socket_disable = True


# The gRPC sidecar (grpc_service/worker.py): built in each worker after the fork, stopped with it.
def post_worker_init(worker):
    from grpc_service import worker as sidecar

    sidecar.start(worker)


def worker_int(worker):
    from grpc_service import worker as sidecar

    sidecar.stop(worker, grace=1.0)  # SIGINT/SIGQUIT: gunicorn's quick shutdown


def worker_exit(server, worker):
    from grpc_service import worker as sidecar

    sidecar.stop(worker)


def child_exit(server, worker):
    # A dead worker's live gauges must stop counting; its counters stay in the totals.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.get("MODELPORT_OWNS_METRICS_DIR"):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
