"""A Docker engine for the deploy tests: installed from Debian if missing, started and stopped here.

Debian 12's `docker.io` (20.10) daemon runs as root with overlay2 and is ready in about a second.
A daemon that already answers is used as it is and left running; one started here is stopped by
its PID. `python -m tests.deploy.engine available` tells `.ci/run` whether a daemon can be had
(exit 0), or prints why not (exit 3), starting and stopping one to find out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Debian packages, by the command each provides.
PACKAGES = {
    "dockerd": "docker.io",
    "docker-compose": "docker-compose",
    "debootstrap": "debootstrap",
}
#: Debian's own docker CLI (20.10, BuildKit built in); /usr/local/bin may hold another.
DEBIAN_DOCKER = "/usr/bin/docker"
STATE = Path(os.environ.get("TMPDIR", "/tmp")) / "modelport-deploy-test"
_UNAVAILABLE = 3  # the exit status of `available` when no daemon can be had


class Unavailable(Exception):
    """No Docker daemon can be had on this machine; the message says why."""


def run(command: Sequence[str], timeout: float = 600, **options: Any) -> str:
    """Run a command; its stdout, or AssertionError with everything it printed."""
    result = subprocess.run(
        list(command), capture_output=True, text=True, timeout=timeout, check=False, **options
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout


def _answers(command: Sequence[str], timeout: float = 20) -> bool:
    try:
        return (
            subprocess.run(
                list(command), capture_output=True, timeout=timeout, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def install(*commands: str) -> None:
    """apt-get install the packages of those commands that are missing (as root, like CI)."""
    missing = [PACKAGES[c] for c in commands if shutil.which(c) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable(f"{', '.join(missing)} missing, and no root apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        run(["apt-get", "update", "-qq"], env=env)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)
    except AssertionError as exc:
        raise Unavailable(f"apt-get cannot install {', '.join(missing)}: {exc}") from None


def docker_cli() -> str:
    """A docker CLI that builds with BuildKit (deploy/Dockerfile uses `RUN --mount`).

    Since 23 the CLI builds with BuildKit only through its buildx plugin; Debian's 20.10 has it
    built in (DOCKER_BUILDKIT=1, which `Engine.env` sets).
    """
    for cli in dict.fromkeys(filter(None, [shutil.which("docker"), DEBIAN_DOCKER])):
        if _answers([cli, "buildx", "version"]):
            return cli
        version = subprocess.run(
            [cli, "version", "--format", "{{.Client.Version}}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if version.split(".")[0].isdigit() and int(version.split(".")[0]) < 23:
            return cli
    raise Unavailable("no docker CLI here can build with BuildKit (install docker-buildx)")


class Engine:
    """The daemon the tests talk to, with the CLI and compose command that reach it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = STATE / "dockerd.log"
        self.env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        self.docker = ""
        self.compose: list[str] = []

    def start(self, timeout: float = 60) -> Engine:
        """Install what is missing, and start dockerd unless one already answers."""
        install("dockerd")
        self.docker = docker_cli()
        if not _answers([self.docker, "version"]):
            STATE.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "wb") as log:
                self.process = subprocess.Popen(
                    ["dockerd", "--storage-driver=overlay2"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            deadline = time.monotonic() + timeout
            while not _answers([self.docker, "version"], timeout=5):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = self.log_path.read_text(errors="replace")[-2000:]
                    raise Unavailable(f"dockerd did not start:\n{tail}")
                time.sleep(0.3)
        if _answers([self.docker, "compose", "version"]):
            self.compose = [self.docker, "compose"]
        else:
            install("docker-compose")
            self.compose = ["docker-compose"]
        return self

    def stop(self, timeout: float = 60) -> None:
        """Stop the daemon started here (by its PID; it stops its containerd too)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __call__(self, *args: str, timeout: float = 600, **options: Any) -> str:
        """`docker ARGS...` against this daemon; its stdout (AssertionError on failure)."""
        return run([self.docker, *args], timeout=timeout, env=self.env, **options)

    def result(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`docker ARGS...` whatever its exit status."""
        return subprocess.run(
            [self.docker, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self.env,
        )

    def succeeds(self, *args: str, timeout: float = 120) -> bool:
        """Whether `docker ARGS...` exits 0 (a pull from an unreachable registry does not)."""
        try:
            return self.result(*args, timeout=timeout).returncode == 0
        except subprocess.TimeoutExpired:
            return False


def main(argv: Sequence[str]) -> int:
    """`available`: 0 when a daemon can be started (or answers), 3 with the reason otherwise."""
    if list(argv) != ["available"]:
        print("usage: python -m tests.deploy.engine available", file=sys.stderr)
        return 2
    engine = Engine()
    try:
        engine.start()
    except Unavailable as exc:
        print(f"no Docker daemon can be started here: {exc}")
        return _UNAVAILABLE
    finally:
        engine.stop()
    print(f"Docker daemon available ({engine.docker}, {' '.join(engine.compose)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
