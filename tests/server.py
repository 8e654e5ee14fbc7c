"""Start a real `gunicorn wsgi:app` for end-to-end tests, on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
E2E_CONFIG = ROOT / "tests" / "data" / "e2e.yaml"
#: The HTTP worker classes the front-end e2e tests (lifecycle, auth, binary, compression) run
#: on: gunicorn's gthread and Modelport's httptools (app/httpworker/).
HTTP_WORKER_CLASSES = ("gthread", "httptools")
#: The worker class of every other server the tests start; MODELPORT_TEST_WORKER_CLASS runs
#: the whole suite on another one.
DEFAULT_WORKER_CLASS = os.environ.get("MODELPORT_TEST_WORKER_CLASS", "httptools")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GunicornServer:
    """A gunicorn master with its workers, serving one config; stop() ends the tree."""

    def __init__(
        self,
        config: Path = E2E_CONFIG,
        workers: int = 1,
        worker_class: str = DEFAULT_WORKER_CLASS,
        env: Mapping[str, str] | None = None,
        grpc: bool = False,
        args: Sequence[str] = ("-m", "gunicorn", "wsgi:app"),
        cwd: Path = ROOT,
    ) -> None:
        self.config = config
        self.cwd = cwd  # where wsgi.py and gunicorn.conf.py are read from
        self.args = tuple(args)  # of this python: gunicorn, or what execs it
        self.http_port = free_port()
        self.grpc_port = free_port() if grpc else 0
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"modelport-{self.http_port}.log"
        self.env = {
            **os.environ,
            "MODELPORT_CONFIG": str(config),
            "MODELPORT_BIND": f"127.0.0.1:{self.http_port}",
            "MODELPORT_GRPC_PORT": str(self.grpc_port),
            "MODELPORT_OMI_PORT": "0",
            "MODELPORT_WORKERS": str(workers),
            "MODELPORT_WORKER_CLASS": worker_class,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> GunicornServer:
        """Start gunicorn and wait until `/v2/health/ready` answers 200."""
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, *self.args],
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                raise RuntimeError(f"gunicorn exited early:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not become ready:\n{self.log()}")

    def log(self) -> str:
        """What gunicorn and the workers wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def worker_pids(self) -> set[int]:
        """The master's live children (zombies left out), read from /proc."""
        assert self.process is not None
        pids = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue  # gone meanwhile
                if int(fields[1]) == self.process.pid and fields[0] != "Z":
                    pids.add(int(entry.name))
        return pids

    def signal(self, signum: int) -> None:
        """Send a signal to the gunicorn master."""
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the master, wait for the tree to exit, and return its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> GunicornServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
