"""Our closed-loop load generator: HTTP/1.1 over raw keep-alive sockets, and gRPC unary calls.

    python -m bench.loadgen http --url http://127.0.0.1:8080/v2/models/iris/infer \\
        --body req.json [--header K:V] --concurrency 8 --duration 10 --warmup 2
    python -m bench.loadgen grpc --target 127.0.0.1:8081 \\
        --method /inference.GRPCInferenceService/ModelInfer --body req.pb --concurrency 8

It prints one JSON object: completed requests, failures, req/s, p50/p90/p99 latency (ms) and the
CPU it used itself, as a fraction of one core, so a caller can tell a point where the generator
was the bottleneck.

Why our own: Python HTTP clients (requests, http.client, aiohttp) spend 100-300 µs of CPU per
request, as much as the servers under test, and wrk cannot speak gRPC. Here each request is bytes
built once; a connection is an asyncio protocol that parses only the status line and
Content-Length, and writes the next request from its data callback, with no coroutine or future
per request (on uvloop when it is installed). gRPC goes through grpc.aio's generic unary call
with identity serializers, so the request is serialized once and the answer is never parsed.
Closed loop: each of `concurrency` connections (or in-flight gRPC calls) sends its next request
as soon as the previous answer is complete, for a fixed time after a warm-up. Every HTTP answer
is checked for status 200 and every gRPC answer for OK; anything else counts as a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MAX_MESSAGE = 256 * 1024 * 1024  # room for 64 MiB tensors as gRPC typed contents
ABANDON_AFTER = 1.0  # seconds after the window that answers still in flight are given up


@dataclass
class Window:
    """The measurement window and what was counted inside it."""

    start: float
    end: float
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0

    def record(self, began: float, now: float, ok: bool, status: str) -> None:
        """Count one answer that completed inside the window."""
        if self.start <= now <= self.end:
            self.latencies.append(now - began)
            if not ok:
                self.failures += 1
                self.statuses[status] = self.statuses.get(status, 0) + 1


# -- HTTP/1.1 ------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending `request` again as soon as its answer is complete."""

    def __init__(self, request: bytes, window: Window, finished: asyncio.Future[None]) -> None:
        self._request = request
        self._window = window
        self._finished = finished
        self._buffer = bytearray()
        self._need = -1  # bytes of the whole answer (head + body) once the head is parsed
        self._status = b""
        self._close_after = False
        self._chunked = False
        self._began = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a socket transport
        self._send()

    def _send(self) -> None:
        if time.perf_counter() >= self._window.end:
            self._finish()
            return
        self._began = time.perf_counter()
        assert self.transport is not None
        self.transport.write(self._request)

    def _finish(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self._finished.done():
            self._finished.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if self._need < 0:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(buffer[:head_end]).lower()
            self._status = head[9:12]
            self._close_after = b"\nconnection: close" in head
            at = head.find(b"\ncontent-length:")
            if at >= 0:
                line_end = head.find(b"\r\n", at + 1)
                length = int(head[at + 16 : line_end if line_end > 0 else len(head)])
                self._need = head_end + 4 + length
                self._chunked = False
            else:
                # Chunked answers end with the zero-size chunk; JSON never holds a raw CRLF.
                self._chunked = True
                self._need = head_end + 4
        if self._chunked:
            end = buffer.find(b"0\r\n\r\n", self._need - 4)
            if end < 0:
                return
            complete = end + 5
        else:
            if len(buffer) < self._need:
                return
            complete = self._need
        now = time.perf_counter()
        status = self._status.decode("ascii", "replace")
        self._window.record(self._began, now, status == "200", status)
        del buffer[:complete]
        self._need = -1
        if self._close_after:
            self._window.reconnects += 1
            self._finish()  # the caller opens a new connection
            return
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._finished.done():
            if time.perf_counter() < self._window.end:
                self._window.failures += 1
                self._window.statuses["disconnected"] = (
                    self._window.statuses.get("disconnected", 0) + 1
                )
            self._finished.set_result(None)


def http_request(url: str, body: bytes, headers: dict[str, str]) -> tuple[str, int, bytes]:
    """Host, port and the whole request as bytes, built once."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Length: {len(body)}",
        *(f"{key}: {value}" for key, value in headers.items()),
    ]
    if not any(key.lower() == "content-type" for key in headers):
        lines.append("Content-Type: application/json")
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _http_client(host: str, port: int, request: bytes, window: Window) -> None:
    loop = asyncio.get_running_loop()
    while time.perf_counter() < window.end:
        finished: asyncio.Future[None] = loop.create_future()
        try:
            transport, _ = await loop.create_connection(
                lambda f=finished: _Connection(request, window, f), host, port
            )
        except OSError:
            window.failures += 1
            window.statuses["connect"] = window.statuses.get("connect", 0) + 1
            await asyncio.sleep(0.05)
            continue
        try:
            await finished
        finally:
            transport.close()  # abandoned after the window: the answer no longer counts


async def run_http(
    url: str, body: bytes, headers: dict[str, str], concurrency: int, window: Window
) -> None:
    """`concurrency` connections in a closed loop until the window ends."""
    host, port, request = http_request(url, body, headers)
    clients = [_http_client(host, port, request, window) for _ in range(concurrency)]
    await _until_window_ends(clients, window)


async def _until_window_ends(jobs: list[Any], window: Window) -> None:
    """Run the jobs; a second after the window, abandon what is still in flight.

    An answer that was not complete inside the window is not counted either way, and waiting
    for it would let one slow server (a 64 MiB tensor taking a minute) hold up the run.
    """
    tasks = [asyncio.ensure_future(job) for job in jobs]
    grace = max(window.end - time.perf_counter(), 0) + ABANDON_AFTER
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


# -- gRPC ----------------------------------------------------------------------------------


async def run_grpc(
    target: str, method: str, body: bytes, concurrency: int, channels: int, window: Window
) -> None:
    """`concurrency` calls in flight over `channels` connections until the window ends."""
    import grpc

    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per channel, really
    ]
    opened = [grpc.aio.insecure_channel(target, options=options) for _ in range(channels)]
    calls = [channel.unary_unary(method) for channel in opened]  # bytes in, bytes out

    async def caller(call: Any) -> None:
        while time.perf_counter() < window.end:
            began = time.perf_counter()
            try:
                await call(body, timeout=600)
            except grpc.aio.AioRpcError as exc:
                window.record(began, time.perf_counter(), False, exc.code().name)
            else:
                window.record(began, time.perf_counter(), True, "OK")

    try:
        await _until_window_ends([caller(calls[i % channels]) for i in range(concurrency)], window)
    finally:
        for channel in opened:
            await channel.close()


# -- report --------------------------------------------------------------------------------


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values (0 when there are none)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(
    window: Window, cpu_seconds: float, server_seconds: float | None, loop_name: str
) -> dict[str, Any]:
    """The JSON summary of one run."""
    ordered = sorted(window.latencies)
    seconds = window.end - window.start
    return {
        "requests": len(ordered),
        "failures": window.failures,
        "statuses": window.statuses,
        "seconds": seconds,
        "rps": len(ordered) / seconds,
        "p50_ms": percentile(ordered, 0.50) * 1000,
        "p90_ms": percentile(ordered, 0.90) * 1000,
        "p99_ms": percentile(ordered, 0.99) * 1000,
        "client_cpu": cpu_seconds / seconds,
        "server_cpu": None if server_seconds is None else server_seconds / seconds,
        "reconnects": window.reconnects,
        "event_loop": loop_name,
    }


def _event_loop() -> tuple[asyncio.AbstractEventLoop, str]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop(), "asyncio"
    return uvloop.new_event_loop(), "uvloop"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("protocol", choices=("http", "grpc"))
    parser.add_argument("--url", help="http: the URL to POST to")
    parser.add_argument("--header", action="append", default=[], help="http: 'Name: value'")
    parser.add_argument("--target", help="grpc: host:port")
    parser.add_argument("--method", help="grpc: /package.Service/Method")
    parser.add_argument("--channels", type=int, default=0, help="grpc: connections (0: auto)")
    parser.add_argument("--body", required=True, type=Path, help="request body file")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--pids", default="", help="server processes whose CPU to report")
    args = parser.parse_args(argv)
    body = args.body.read_bytes()
    loop, loop_name = _event_loop() if args.protocol == "http" else (asyncio.new_event_loop(), "")
    if args.protocol == "grpc":
        loop_name = "grpc.aio"
    asyncio.set_event_loop(loop)
    start = time.perf_counter() + args.warmup
    window = Window(start, start + args.duration)
    if args.protocol == "http":
        headers = dict(h.split(":", 1) for h in args.header)
        headers = {k.strip(): v.strip() for k, v in headers.items()}
        job = run_http(args.url, body, headers, args.concurrency, window)
    else:
        channels = args.channels or min(args.concurrency, 8)
        job = run_grpc(args.target, args.method, body, args.concurrency, channels, window)
    pids = [int(pid) for pid in args.pids.split(",") if pid]
    task = loop.create_task(job)
    cpu = _cpu_in_window(loop, window, pids)
    loop.run_until_complete(task)
    loop.run_until_complete(cpu)
    loop.close()
    client, server = cpu.result()
    print(json.dumps(report(window, client, server if pids else None, loop_name)))
    return 0


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system, every thread) the processes have used so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # a process that is gone no longer counts
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_in_window(
    loop: asyncio.AbstractEventLoop, window: Window, pids: list[int]
) -> asyncio.Task[tuple[float, float]]:
    """CPU seconds of this process (all threads: grpc has its own) and of the server's
    processes, between the window's start and end."""

    async def measure() -> tuple[float, float]:
        await asyncio.sleep(max(window.start - time.perf_counter(), 0))
        before, server_before = time.process_time(), process_cpu(pids)
        await asyncio.sleep(max(window.end - time.perf_counter(), 0))
        return time.process_time() - before, process_cpu(pids) - server_before

    return loop.create_task(measure())


if __name__ == "__main__":
    sys.exit(main())
