"""gunicorn settings for `gunicorn wsgi:app`; environment variables override each default."""

import logging
import os
import shutil
import sys
import tempfile

from gunicorn.config import Config

from app import logging as json_logging
from app.gunicorn_logger import QuietAccessLogger
from app.repositories import scan
from app.storage import prefetch
from config.settings import REPORTED_ENV, ConfigError, Settings, load_settings


def _checking_config() -> bool:
    """Whether this gunicorn runs `--check-config` (from its arguments or GUNICORN_CMD_ARGS)."""
    config = Config()
    parser = config.parser()
    for argv in (sys.argv[1:], config.get_cmd_args_from_env()):
        try:
            args, _ = parser.parse_known_args(argv)
        except SystemExit:  # not gunicorn's command line (runpy from bench/, say)
            continue
        if args.check_config:
            return True
    return False


def _read_settings() -> Settings:
    """The config file's settings, with each problem logged as one JSON line on stderr.

    An unusable file ends gunicorn here with that one line: raised, the error would become
    gunicorn's "Failed to read config file" and a traceback. Unknown keys are warnings, and the
    server serves (DESIGN §2); `gunicorn --check-config` fails on them and on broken model
    entries instead, so CI can be strict. The master logs them once for every worker.
    """
    json_logging.configure()
    log = logging.getLogger("modelport.config")
    try:
        settings = load_settings()
    except ConfigError as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None
    if _checking_config():
        found = scan(settings.repositories)  # what the repositories hold, read without loading
        models = [*settings.models, *found.models]
        problems = [
            *settings.warnings,
            *found.problems,
            *(model.error for model in models if model.error),
        ]
        for problem in problems:
            log.error("%s", problem)
        if problems:
            raise SystemExit(1)
    for warning in settings.warnings:
        log.warning("%s", warning)
    os.environ[REPORTED_ENV] = str(settings.source)
    return settings


_settings = _read_settings()
_server = _settings.server
# Remote `uri:`s are downloaded here, in the master before it forks, once for every worker
# (app/storage); the repositories' remote paths are by the scan below.
if not _checking_config():
    prefetch(_settings)

# Bind where the config file says (server.http), unless MODELPORT_BIND says otherwise.
bind = os.environ.get("MODELPORT_BIND", f"{_server.http.host}:{_server.http.port}")
# Chosen from `make bench` (bench/run.py; numbers in the README's Performance section), on one
# core with the load generator on another:
# - workers: one per CPU this process may run on. Two workers on one core served 25 % fewer
#   iris requests than one, with twice the p99 (they only take turns on the same core).
# - gthread: requests are CPU-bound Python, so a worker gains nothing from more than one request
#   running at a time; it needs one thread in Python while another waits on a socket or in
#   native code. 2 threads served as many iris requests as 8 at concurrency 8 with a third of
#   the p99 (13 ms vs 37 ms): extra threads only queue for the GIL. gevent served REST as fast
#   (with the fairness yield below) but its gRPC sidecar at half gthread's rate (977 vs 1,781).
# - httptools (app/httpworker/), threads as gthread's: the same loop-and-pool shape on a
#   C HTTP parser. Taking turns with gthread on one core (8 rounds of 4 s, c=8, bench/loadgen,
#   medians) it served W1 at 2,188 req/s against 1,427 (p99 7.6 ms against 10.0; 453 us of
#   server CPU per request against 694), W3 at 1,897 against 1,348 (516 us against 734), and
#   4 MiB binary at 253 against 178 (c=1). `gthread` stays selectable.
# - A model with `max_batch_size` needs that many requests in flight in one worker to fill a
#   batch, so a worker gets as many threads as the largest batch (`tests/app/test_batching.py`).
workers = int(os.environ.get("MODELPORT_WORKERS", "0")) or len(os.sched_getaffinity(0))
worker_class = os.environ.get("MODELPORT_WORKER_CLASS", "httptools")
if worker_class == "gthread":
    # gunicorn's, with deadlines on reading requests (app/gthread_worker.py): its own lets a
    # client that sends its headers a byte a second hold a thread as long as it likes.
    worker_class = "app.gthread_worker.ThreadWorker"
elif worker_class == "gevent":
    # gunicorn's, closing idle keep-alive connections when it stops (app/gevent_worker.py):
    # gunicorn's own waits out graceful_timeout for any client that keeps one open. It has
    # the same read deadlines as gthread's.
    worker_class = "app.gevent_worker.GeventWorker"
elif worker_class == "httptools":
    # Modelport's own, on httptools' C parser (app/httpworker/).
    worker_class = "app.httpworker.worker.HttptoolsWorker"
threads = int(os.environ.get("MODELPORT_THREADS", "0")) or max(
    [
        2,
        *(model.max_batch_size for model in _settings.models),
        *(model.max_batch_size for model in scan(_settings.repositories).models),
    ]
)
# Models load in each worker after the fork (never preload): the gRPC sidecar and native
# runtimes must not be shared across fork().
preload_app = False
timeout = int(os.environ.get("MODELPORT_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("MODELPORT_GRACEFUL_TIMEOUT", "30"))
# tritonclient's HTTP client never retries a POST on a connection the server closed while it was
# compressing a large body: keep idle connections longer than a slow client takes.
keepalive = int(os.environ.get("MODELPORT_KEEPALIVE", "75"))
# One JSON object a line for gunicorn's own messages too; the access log is Modelport's
# (`modelport.access`, with model, protocol and request id), so gunicorn's is off.
accesslog = None


# gunicorn's own access line is off unless `--access-logfile` is given (app/gunicorn_logger.py).
logger_class = QuietAccessLogger
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


def on_starting(server):
    # The workers' control channel (app/control.py): the repository's desired state, each
    # worker's acknowledgement, statistics requests and answers, so load/unload and statistics
    # are server-wide. Made once in the master, before any worker (on_starting, unlike this
    # module, runs neither on `kill -HUP` nor for `gunicorn --check-config`, which would leave
    # the folder behind), so workers started by a reload or replacing a dead one share it. An
    # owned folder seen here is the old master's (USR2 re-exec): it removes that one on exit.
    if not os.environ.get("MODELPORT_STATE_DIR") or os.environ.get("MODELPORT_OWNS_STATE_DIR"):
        os.environ["MODELPORT_STATE_DIR"] = tempfile.mkdtemp(prefix="modelport-state-")
        os.environ["MODELPORT_OWNS_STATE_DIR"] = "1"
    # prometheus-client's multiprocess mode: every worker writes its samples under this folder
    # and /metrics adds them up. The same reasons place it here: kept across `kill -HUP` (so
    # counters survive a reload), never made by `--check-config`, the old master's own after a
    # USR2 re-exec. A folder given from outside is used as it is and never removed.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get(
        "MODELPORT_OWNS_METRICS_DIR"
    ):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="modelport-metrics-")
        os.environ["MODELPORT_OWNS_METRICS_DIR"] = "1"


# The gRPC sidecar (grpc_service/worker.py): built in each worker after the fork, stopped with it.
# Before it, and before the worker serves HTTP, the worker joins the control channel and applies
# the current desired state: a replaced worker never serves a model that was unloaded.
def post_worker_init(worker):
    from grpc_service import worker as sidecar
    from streams import worker as streams

    _join_control(worker)
    sidecar.start(worker)
    streams.start(worker)  # the `streams:` consumers (streams/worker.py), once models serve


def _join_control(worker):
    core = getattr(worker.wsgi, "extensions", {}).get("modelport")
    if core is None:
        return  # not Modelport's app: the sidecar's hook says so in the log
    from app import workers

    # The app chose the control channel of MODELPORT_STATE_DIR (app/core.py); it joins here.
    # A sync worker that waits longer than `timeout` is killed by the master: stay under it.
    core.dataplane.workers.start(min(workers.REPOSITORY_TIMEOUT_SECONDS, worker.cfg.timeout / 2))


def post_request(worker, req, environ, resp):
    # gunicorn's gevent worker reads a keep-alive connection's next request straight after
    # answering it; a client that sends at once is served again before anyone else, and the
    # other connections starve (bench: p99 62 ms at concurrency 8, 279 ms at 32, p50 1 ms).
    # Yielding once per request serves ready connections in turn: p99 12 ms and 38 ms.
    if _gevent_worker(worker):
        import gevent

        gevent.sleep(0)


def _gevent_worker(worker) -> bool:
    # Ours (MODELPORT_WORKER_CLASS=gevent) or gunicorn's own (`-k gevent`).
    return type(worker).__module__ in ("app.gevent_worker", "gunicorn.workers.ggevent")


def worker_int(worker):
    from grpc_service import worker as sidecar
    from streams import worker as streams

    streams.stop(worker, grace=1.0)  # SIGINT/SIGQUIT: gunicorn's quick shutdown
    sidecar.stop(worker, grace=1.0)


def worker_exit(server, worker):
    from app import metrics
    from grpc_service import worker as sidecar
    from streams import worker as streams

    streams.stop(worker)  # answer and acknowledge what was taken, then leave the broker
    sidecar.stop(worker)
    metrics.flush()  # the last requests' counts are buffered in this worker (app/metrics.py)
    core = getattr(worker.wsgi, "extensions", {}).get("modelport")
    if core is not None:
        core.dataplane.workers.close()  # leave the control channel: nobody waits for us now


def child_exit(server, worker):
    # A dead worker's live gauges must stop counting; its counters stay in the totals.
    from prometheus_client import multiprocess

    from app import control

    multiprocess.mark_process_dead(worker.pid)
    # The same for repository statistics: its last counters join the retired totals, and a
    # killed worker's files, which it could not remove itself, go.
    control.retire(os.environ["MODELPORT_STATE_DIR"], server.pid, worker.pid)


def on_exit(server):
    if os.environ.get("MODELPORT_OWNS_METRICS_DIR"):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    if os.environ.get("MODELPORT_OWNS_STATE_DIR"):
        shutil.rmtree(os.environ["MODELPORT_STATE_DIR"], ignore_errors=True)
