"""The servers the benchmark starts: Modelport, its peers, and the two ceilings.

Each runs pinned to one core (`taskset -c 0`) with the same glibc malloc thresholds, on
loopback ports picked free at start. The peers live in their own virtual environments under
bench/.venvs (made here on first use, never in the project's), at the versions the issue names,
with scikit-learn at the project's version so every server unpickles the same iris model.
Each peer runs in its fastest one-core configuration: per-request logging off, and MLServer
with `parallel_workers: 0` (bench/peers/).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENVS = BENCH / ".venvs"
SERVER_CPU = "0"
CLIENT_CPU = "1"
SKLEARN = "scikit-learn==1.9.1"  # the project's pin: the same iris.joblib everywhere

#: What each peer's virtual environment holds.
PEER_PACKAGES: dict[str, tuple[str, ...]] = {
    "mlserver": ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", SKLEARN),
    "kserve": ("kserve==0.21.0", SKLEARN, "joblib"),
}


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server process tree this benchmark started; `stop()` ends exactly that tree."""

    name: str
    argv: list[str]
    env: dict[str, str]
    http_port: int | None
    grpc_port: int | None
    cwd: Path = ROOT
    ready_path: str = "/v2/health/ready"
    version: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = None

    def start(self, allocator: dict[str, str], timeout: float = 120.0) -> Server:
        """Start pinned to the server core with glibc's `allocator` settings; wait until it
        answers."""
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{self.name}.log"
        env = {**os.environ, **self.env, **allocator}
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps it; closed below
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *self.argv],
            cwd=self.cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            if self._answers():
                return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready:\n{self.log_tail()}")

    def _answers(self) -> bool:
        if self.http_port is None:
            assert self.grpc_port is not None
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", self.grpc_port)) == 0
        url = f"http://127.0.0.1:{self.http_port}{self.ready_path}"
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def pids(self) -> list[int]:
        """The process and its descendants (gunicorn workers, MLServer's children)."""
        assert self.process is not None
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rpartition(")")[2].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the tree we started (its own session), SIGKILL it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def ensure_peer(name: str, say: Callable[[str], None] = print) -> Path:
    """The peer's virtual environment, made and filled on first use; returns its bin folder."""
    venv = VENVS / name
    stamp = venv / ".installed"
    wanted = " ".join(PEER_PACKAGES[name])
    if stamp.exists() and stamp.read_text() == wanted:
        return venv / "bin"
    say(f"installing {name} into {venv} ({wanted}); once")
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        + ["--disable-pip-version-check", *PEER_PACKAGES[name]],
        check=True,
    )
    stamp.write_text(wanted)
    return venv / "bin"


def package_version(bin_dir: Path, package: str) -> str:
    """A package's version inside a virtual environment."""
    code = f"from importlib.metadata import version; print(version({package!r}))"
    done = subprocess.run(
        [str(bin_dir / "python"), "-c", code], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "?"


def modelport(config: str, name: str = "modelport", **env: str) -> Server:
    """Modelport under gunicorn with gunicorn.conf.py's defaults, serving a bench config."""
    http_port, grpc_port = free_port(), free_port()
    return Server(
        name,
        [sys.executable, "-m", "gunicorn", "wsgi:app"],
        {
            "MODELPORT_CONFIG": str(BENCH / config),
            "MODELPORT_HTTP_PORT": str(http_port),
            "MODELPORT_GRPC_PORT": str(grpc_port),
            "MODELPORT_BIND": f"127.0.0.1:{http_port}",
            **env,
        },
        http_port,
        grpc_port,
        version=package_version(Path(sys.executable).parent, "modelport"),
    )


def mlserver(say: Callable[[str], None] = print) -> Server:
    """MLServer 1.7.1: its sklearn runtime for iris, a custom runtime for sum."""
    bin_dir = ensure_peer("mlserver", say)
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    return Server(
        "mlserver",
        [str(bin_dir / "mlserver"), "start", str(BENCH / "peers" / "mlserver")],
        {
            "MLSERVER_HTTP_PORT": str(http_port),
            "MLSERVER_GRPC_PORT": str(grpc_port),
            "MLSERVER_METRICS_PORT": str(metrics_port),
            "MLSERVER_HOST": "127.0.0.1",
            "MLSERVER_GRPC_MAX_MESSAGE_LENGTH": str(256 * 1024 * 1024),
        },
        http_port,
        grpc_port,
        version=package_version(bin_dir, "mlserver"),
    )


def kserve(say: Callable[[str], None] = print) -> Server:
    """KServe 0.21's ModelServer with iris and sum as kserve.Model subclasses."""
    bin_dir = ensure_peer("kserve", say)
    http_port, grpc_port = free_port(), free_port()
    limit = str(256 * 1024 * 1024)
    return Server(
        "kserve",
        [
            str(bin_dir / "python"),
            str(BENCH / "peers" / "kserve" / "server.py"),
            "--http_port",
            str(http_port),
            "--grpc_port",
            str(grpc_port),
            "--iris",
            str(ROOT / "models" / "iris.joblib"),
            "--grpc_max_receive_message_length",
            limit,
            "--grpc_max_send_message_length",
            limit,
        ],
        {},
        http_port,
        grpc_port,
        version=package_version(bin_dir, "kserve"),
    )


#: The worker class Modelport's gunicorn.conf.py picks by default, and its thread count there
#: for the bench's models (none batches): the ceiling runs on the same.
MODELPORT_WORKER = "app.httpworker.worker.HttptoolsWorker"
MODELPORT_THREADS = 2


def ceiling_wsgi() -> Server:
    """A bare WSGI app under one gunicorn worker of Modelport's default class.

    It runs from bench/, so gunicorn does not read Modelport's gunicorn.conf.py; the worker
    class is imported from the checkout (PYTHONPATH).
    """
    port = free_port()
    return Server(
        "ceiling-wsgi",
        [sys.executable, "-m", "gunicorn", "-k", MODELPORT_WORKER, "-w", "1"]
        + ["--threads", str(MODELPORT_THREADS), "-b", f"127.0.0.1:{port}", "ceilings:wsgi_app"],
        {"PYTHONPATH": str(ROOT)},
        port,
        None,
        cwd=BENCH,
        ready_path="/",
        version="gunicorn, Modelport's httptools worker",
    )


def ceiling_grpc() -> Server:
    """A bare grpcio server (thread pool of 8) answering fixed bytes."""
    port = free_port()
    return Server(
        "ceiling-grpc",
        [sys.executable, "-m", "bench.ceilings", "grpc", "--port", str(port)],
        {},
        None,
        port,
        version="grpcio",
    )


def rss_kib(pid: int) -> int:
    """Resident memory of one process, KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
