"""gunicorn settings for `gunicorn wsgi:app`; environment variables override each default."""

import os

from config.settings import load_settings

_server = load_settings().server

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
keepalive = 5
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
