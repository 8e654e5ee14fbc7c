"""Helpers for the gRPC and OMI tests: real servers with their sidecars, client subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.server import DEFAULT_WORKER_CLASS, E2E_CONFIG, ROOT, GunicornServer, free_port

CLIENTS = Path(__file__).resolve().parent / "clients"
#: The chassisml client lives in its own venv (its protobuf pin clashes with ours, omi.md §8).
OMI_VENV = ROOT / ".venv" / "omi-client"
OMI_CLIENT_REQUIREMENT = "chassisml==1.5.0"
SIDECAR_LINE = "gRPC sidecar listening on port"


def start_server(
    worker_class: str = DEFAULT_WORKER_CLASS,
    workers: int = 2,
    env: Mapping[str, str] | None = None,
    omi_port: bool = False,
    config: Path = E2E_CONFIG,
) -> GunicornServer:
    """A started `gunicorn wsgi:app` whose every worker has its gRPC sidecar up."""
    extra = dict(env or {})
    if omi_port:
        extra["MODELPORT_OMI_PORT"] = str(free_port())
    server = GunicornServer(
        config, workers=workers, worker_class=worker_class, env=extra, grpc=True
    )
    server.omi_port = int(extra.get("MODELPORT_OMI_PORT", "0"))  # type: ignore[attr-defined]  # test-only attribute
    server.start()
    deadline = time.monotonic() + 60
    while server.log().count(SIDECAR_LINE) < workers:
        if time.monotonic() > deadline or server.process.poll() is not None:  # type: ignore[union-attr]  # started above
            log = server.log()
            server.stop()
            raise RuntimeError(f"the gRPC sidecars did not start:\n{log}")
        time.sleep(0.1)
    return server


def run_client(
    script: str, *args: object, python: str | Path = sys.executable, timeout: float = 180
) -> dict[str, Any]:
    """Run `tests/clients/<script>` in a child process and return the JSON it printed.

    Fails the test with the child's output when it exits non-zero or prints no JSON.
    """
    completed = subprocess.run(
        [str(python), str(CLIENTS / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    lines = completed.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if result is None or (completed.returncode != 0 and "transport_error" not in result):
        pytest.fail(
            f"{script} {args} exited {completed.returncode}\n"
            f"stdout:\n{completed.stdout[-4000:]}\nstderr:\n{completed.stderr[-4000:]}"
        )
    return result


def client_python(name: str, requirement: str) -> Path:
    """The python of a real client's own venv (`.venv/<name>`), made on first use.

    Real clients pin their own protobuf and register `inference.*` messages, so each lives apart
    from our generated protos. Skips (with pip's words) only when the package cannot be installed.
    """
    venv = ROOT / ".venv" / name
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists() and python.exists():
        return python
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", requirement],
            check=True,
            timeout=900,
            capture_output=True,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"cannot install {requirement}: {output.decode(errors='replace')[-500:]}")
    marker.touch()
    return python


def omi_python() -> Path:
    """The python of the chassisml client venv."""
    return client_python(OMI_VENV.name, OMI_CLIENT_REQUIREMENT)


def loopback_sidecar(app: Any, settings: Any = None, **options: Any) -> tuple[Any, int]:
    """An in-process gRPC sidecar (not started) over `app`'s data plane, on free loopback ports.

    `settings` defaults to the app's; either way the gRPC and OMI ports become 0 (free ones).
    Returns the sidecar and its bound gRPC port.
    """
    import dataclasses

    from grpc_service import server as sidecar

    core = app.extensions["modelport"]
    settings = settings or core.settings
    settings = dataclasses.replace(
        settings,
        server=dataclasses.replace(
            settings.server,
            grpc=dataclasses.replace(settings.server.grpc, port=0),
            omi=dataclasses.replace(settings.server.omi, port=0),
        ),
    )
    return sidecar.create_server(core.dataplane, settings, host="127.0.0.1", **options)
