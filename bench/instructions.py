"""Instructions per request, counted by callgrind: Modelport's own cost without the host's noise.

    python -m bench.instructions W1 [--requests 300] [--tree PATH]

Throughput on this two-core host, shared with other work, swings by tens of percent between
runs minutes apart, so a change of a few percent cannot be seen in req/s. Instruction counts
can: the same tree counted twice differs by 0.2-0.6 %. The request is the workload's own
(`bench.workloads.build`): REST workloads go through the WSGI app (Flask, hooks, codec, data
plane, model) in-process, without sockets or gunicorn; gRPC ones from grpcio's interceptor
pipeline to the answer's bytes, without the transport. The process starts under valgrind with
instrumentation off; once the app is loaded and warm, `callgrind_control` turns it on for
`--requests` requests, and the total is divided by them.

`--tree` counts another checkout (an older commit unpacked with `git archive`, say) with this
one's bench/: its `wsgi.py` and packages are imported from there. Needs valgrind (Debian's
`valgrind` package). Never part of `make test`.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _rest_call(app: Any, path: str, body: bytes, headers: dict[str, str]) -> Callable[[], None]:
    def environ() -> dict[str, Any]:
        env: dict[str, Any] = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        for key, value in headers.items():
            name = key.upper().replace("-", "_")
            env[name if name == "CONTENT_TYPE" else f"HTTP_{name}"] = value
        return env

    statuses: list[str] = []

    def start_response(status: str, headers: object, exc_info: object = None) -> None:
        statuses.append(status)

    def call() -> None:
        b"".join(app(environ(), start_response))
        if not statuses[-1].startswith("200"):
            raise SystemExit(f"the app answered {statuses[-1]}")

    return call


def _grpc_call(app: Any, method: str, body: bytes) -> Callable[[], None]:
    from grpc._server import _HandlerCallDetails

    from grpc_service.server import create_server

    core = app.extensions["modelport"]
    sidecar, _ = create_server(core.dataplane, core.settings, max_workers=1)
    state = sidecar.server._state  # grpcio's own pipeline and handlers, as a call meets them
    details = _HandlerCallDetails(method, ())

    def query(found: Any) -> Any:
        for handler in state.generic_handlers:
            answer = handler.service(found)
            if answer is not None:
                return answer
        return None

    class Context:
        """What the servicer asks of a context on a successful call."""

        def code(self) -> None:
            return None

        def invocation_metadata(self) -> tuple[()]:
            return ()

        def abort(self, code: object, message: str) -> None:
            raise SystemExit(f"the call failed: {code} {message}")

        def __getattr__(self, name: str) -> Callable[..., None]:
            return lambda *args, **kwargs: None

    def call() -> None:
        handler = state.interceptor_pipeline.execute(query, details)
        handler.unary_unary(body, Context())

    return call


def child(workload_key: str, requests: int) -> None:
    """Load the app from the current folder, warm it, then serve a batch per line on stdin."""
    sys.path.insert(0, os.getcwd())
    sys.path.insert(1, str(ROOT))
    os.environ.setdefault("MODELPORT_CONFIG", str(ROOT / "bench" / "modelport.yaml"))
    os.environ["MODELPORT_GRPC_PORT"] = "0"
    import wsgi
    from bench.workloads import WORKLOADS, build

    workload = next(w for w in WORKLOADS if w.key == workload_key)
    request = build(workload)
    if workload.protocol == "grpc":
        call = _grpc_call(wsgi.app, request.path, request.body)
    else:
        call = _rest_call(wsgi.app, request.path, request.body, request.headers)
    for _ in range(requests):
        call()
    print("ready", flush=True)
    for _line in sys.stdin:
        for _ in range(requests):
            call()
        print("done", flush=True)


def count(workload: str, requests: int, tree: Path) -> float:
    """Instructions per request of `workload` served by the code in `tree`."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as out:
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        argv += [f"--callgrind-out-file={out}/callgrind.%p"]
        argv += [sys.executable, str(Path(__file__).resolve()), workload, "--child"]
        argv += ["--requests", str(requests)]
        env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{ROOT}"}
        process = subprocess.Popen(
            argv,
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdin is not None and process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise SystemExit("the app did not start under valgrind")

        def control(*args: str) -> None:
            subprocess.run(
                ["callgrind_control", *args, str(process.pid)], check=True, capture_output=True
            )

        control("-i", "on")
        process.stdin.write("go\n")
        process.stdin.flush()
        process.stdout.readline()
        control("-i", "off")
        control("-d")
        time.sleep(1)
        process.stdin.close()
        process.wait()
        totals = [
            int(match.group(1))
            for name in os.listdir(out)
            for match in [re.search(r"^totals: (\d+)", (Path(out) / name).read_text(), re.M)]
            if match
        ]
    return max(totals) / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", help="W1, W2, W3, ... (bench/workloads.py)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to count")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.workload, args.requests)
        return 0
    per_request = count(args.workload, args.requests, args.tree.resolve())
    print(f"{args.workload} {args.tree}: {per_request:,.0f} instructions per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
