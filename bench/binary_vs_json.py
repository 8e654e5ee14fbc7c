"""Binary tensors vs JSON over v2 REST: throughput of a real `gunicorn wsgi:app`, one client.

    .venv/bin/python bench/binary_vs_json.py [--seconds 3] [--model echo|sum] [--sizes 4096,...]

Starts Modelport on a free loopback port (tests/data/e2e.yaml, one worker, the request limit raised
to 1 GiB so 64 MiB travels as JSON too), then, for each FP32 tensor size and each form, sends
requests one after another for a bounded time and prints requests/s and tensor MiB/s.

Each timed request does what an efficient client does: encode the tensor (orjson for JSON,
`tobytes` behind the JSON header for binary), send it over a keep-alive connection, read the whole
answer and decode it back to numpy. With `echo` the tensor travels both ways; with `sum` only the
request carries it. MiB/s counts the tensor once per request.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.server import GunicornServer  # noqa: E402 - needs ROOT on sys.path first

HEADER = "Inference-Header-Content-Length"
MIB = 1024 * 1024
DEFAULT_SIZES = (4 * 1024, MIB, 64 * MIB)
ROW = 1024  # floats per row: 4 KiB


@dataclass(frozen=True)
class Cell:
    """One measured (size, form) pair."""

    size: int
    form: str
    requests: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def mib_per_second(self) -> float:
        return self.rate * self.size / MIB


def tensor_of(size: int) -> np.ndarray:
    """An FP32 matrix of `size` bytes, rows of 1024 floats."""
    rng = np.random.default_rng(size)
    return rng.random((size // 4 // ROW, ROW), dtype=np.float32)


def json_exchange(model: str, array: np.ndarray) -> Callable[[http.client.HTTPConnection], None]:
    """One JSON request: `data` written by orjson, the answer's `data` read by numpy."""
    name = "x" if model == "echo" else "input-0"

    def run(connection: http.client.HTTPConnection) -> None:
        body = orjson.dumps(
            {
                "inputs": [
                    {"name": name, "shape": list(array.shape), "datatype": "FP32", "data": array}
                ]
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        connection.request("POST", f"/v2/models/{model}/infer", body=body)
        answer = connection.getresponse()
        content = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"JSON request failed: {answer.status} {content[:200]!r}")
        output = orjson.loads(content)["outputs"][0]
        np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])

    return run


def binary_exchange(model: str, array: np.ndarray) -> Callable[[http.client.HTTPConnection], None]:
    """One binary request: raw bytes after the JSON header, the answer read with frombuffer."""
    name = "x" if model == "echo" else "input-0"

    def run(connection: http.client.HTTPConnection) -> None:
        header = orjson.dumps(
            {
                "inputs": [
                    {
                        "name": name,
                        "shape": list(array.shape),
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": array.nbytes},
                    }
                ],
                "parameters": {"binary_data_output": True},
            }
        )
        connection.request(
            "POST",
            f"/v2/models/{model}/infer",
            body=header + array.tobytes(),
            headers={HEADER: str(len(header))},
        )
        answer = connection.getresponse()
        content = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"binary request failed: {answer.status} {content[:200]!r}")
        length = int(answer.headers[HEADER])
        output = orjson.loads(content[:length])["outputs"][0]
        np.frombuffer(content, dtype="<f4", offset=length).reshape(output["shape"])

    return run


def measure(
    connection: http.client.HTTPConnection,
    exchange: Callable[[http.client.HTTPConnection], None],
    seconds: float,
) -> tuple[int, float]:
    """Run `exchange` back to back for about `seconds` (at least once) after one warm-up."""
    exchange(connection)
    count = 0
    started = time.perf_counter()
    while True:
        exchange(connection)
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return count, elapsed


def human(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // 1024} KiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per size and form")
    parser.add_argument("--model", choices=("echo", "sum"), default="echo")
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in DEFAULT_SIZES),
        help="tensor sizes in bytes, multiples of 4096",
    )
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    cells: list[Cell] = []
    env = {"MODELPORT_MAX_REQUEST_BYTES": str(1024 * MIB)}
    with GunicornServer(workers=1, env=env) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=600)
        for size in sizes:
            array = tensor_of(size)
            for form, make in (("json", json_exchange), ("binary", binary_exchange)):
                count, elapsed = measure(connection, make(args.model, array), args.seconds)
                cells.append(Cell(size, form, count, elapsed))
        connection.close()
    print(f"model {args.model}, one client, FP32 tensors, {args.seconds:g} s per row")
    print(f"{'size':>8} {'form':>7} {'requests':>9} {'req/s':>10} {'MiB/s':>9} {'binary/json':>12}")
    for cell in cells:
        json_cell = next(c for c in cells if c.size == cell.size and c.form == "json")
        ratio = f"{cell.rate / json_cell.rate:.1f}x" if cell.form == "binary" else ""
        print(
            f"{human(cell.size):>8} {cell.form:>7} {cell.requests:>9} {cell.rate:>10.1f} "
            f"{cell.mib_per_second:>9.1f} {ratio:>12}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
