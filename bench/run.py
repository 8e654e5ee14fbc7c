"""`make bench`: Modelport against MLServer and KServe, on one machine in one run.

    python -m bench.run                      # everything (about 27 minutes)
    python -m bench.run --quick              # smoke run: Modelport only, concurrency 8, 1 s
    python -m bench.run --servers modelport,kserve --workloads W1,W2 --concurrency 8

Every server runs pinned to core 0 and our load generator (bench/loadgen.py) to core 1; every
server gets the same glibc malloc thresholds. All servers are started first; each (server,
workload) is probed once for a right answer; then, point by point and in rounds, the servers
take turns (each first left to go idle) at a closed loop of fixed concurrency for a fixed time.
A point whose
load generator used most of its core is marked client-bound: it measures the client, not the
server. The table (req/s, p50 and p99 per server, ratios Modelport / peer and / ceiling) is
printed and written to bench/results/ with the date, versions and machine facts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import report, servers
from bench.loadgen import process_cpu
from bench.report import Point
from bench.workloads import WORKLOADS, Workload, build, probe

#: glibc's largest dynamic mmap threshold: every server keeps 4 MiB buffers on its heap.
MALLOC_MMAP_THRESHOLD = 32 * 1024 * 1024
#: A fixed mmap threshold also fixes the trim threshold at 128 KiB: freeing a 4 MiB buffer
#: then hands its pages back to the kernel, and the next request faults them in again (a
#: quarter of a 4 MiB gRPC call's time in page faults, perf). 256 MiB keeps them.
MALLOC_TRIM_THRESHOLD = 256 * 1024 * 1024
RESTART_AFTER = 30.0  # seconds a server may stay busy after a point before it is restarted
PEERS = ("mlserver", "kserve")
CEILINGS = ("ceiling-wsgi", "ceiling-grpc")
ALL_SERVERS = ("modelport", "modelport-batching", *PEERS, *CEILINGS)


def runs_on(server: str, workload: Workload) -> bool:
    """Whether `server` takes part in `workload` (ceilings: only for their own transport)."""
    if workload.only:
        return server in workload.only
    if server == "modelport-batching":
        return False
    if server in CEILINGS:
        return workload.ceiling == server.removeprefix("ceiling-")
    return True


def make_server(name: str, say: Callable[[str], None]) -> servers.Server:
    factories: dict[str, Callable[[], servers.Server]] = {
        "modelport": lambda: servers.modelport("modelport.yaml"),
        "modelport-batching": lambda: servers.modelport(
            "modelport-batching.yaml", name="modelport-batching"
        ),
        "mlserver": lambda: servers.mlserver(say),
        "kserve": lambda: servers.kserve(say),
        "ceiling-wsgi": servers.ceiling_wsgi,
        "ceiling-grpc": servers.ceiling_grpc,
    }
    return factories[name]()


def allocator(args: argparse.Namespace) -> dict[str, str]:
    """glibc's malloc settings, the same for every server and for the load generator."""
    return {
        "MALLOC_MMAP_THRESHOLD_": str(args.malloc_mmap_threshold),
        "MALLOC_TRIM_THRESHOLD_": str(args.malloc_trim_threshold),
    }


def drive(
    server: servers.Server,
    workload: Workload,
    concurrency: int,
    body_file: Path,
    args: argparse.Namespace,
    duration: float,
    warmup: float,
) -> dict:
    """One closed-loop run of the load generator, pinned to the client core."""
    request = build(workload)
    argv = ["taskset", "-c", servers.CLIENT_CPU, sys.executable, "-m", "bench.loadgen"]
    if workload.protocol == "grpc":
        argv += ["grpc", "--target", f"127.0.0.1:{server.grpc_port}", "--method", request.path]
    else:
        argv += ["http", "--url", f"http://127.0.0.1:{server.http_port}{request.path}"]
        for key, value in request.headers.items():
            argv += ["--header", f"{key}: {value}"]
    argv += ["--body", str(body_file), "--concurrency", str(concurrency)]
    argv += ["--duration", str(duration), "--warmup", str(warmup)]
    argv += ["--pids", ",".join(str(pid) for pid in server.pids())]
    done = subprocess.run(
        argv,
        cwd=servers.ROOT,
        env={**os.environ, **allocator(args)},
        capture_output=True,
        text=True,
        timeout=duration + warmup + 300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr[-800:]}")
    return json.loads(done.stdout)


def start_all(
    names: list[str], args: argparse.Namespace, say: Callable[[str], None]
) -> tuple[dict[str, servers.Server], dict[str, dict]]:
    """Start every server of the run; one that cannot start is reported, not fatal."""
    running: dict[str, servers.Server] = {}
    facts: dict[str, dict] = {}
    for name in names:
        try:
            running[name] = make_server(name, say).start(allocator(args))
        except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
            say(f"{name}: cannot run here: {exc}")
            facts[name] = {"version": f"not run: {str(exc).splitlines()[0][:160]}"}
        else:
            settle({name: running[name]}, args, say)
            facts[name] = {"version": running[name].version, "rss_idle_kib": _rss(running[name])}
    return running, facts


def settle(
    running: dict[str, servers.Server], args: argparse.Namespace, say: Callable[[str], None]
) -> str:
    """Wait until no server uses the core: one may still be parsing requests that the last
    point's client gave up on (KServe spends minutes on 64 MiB bodies), and that would steal
    the next server's time. A server still busy after `RESTART_AFTER` seconds is restarted."""
    deadline = time.monotonic() + RESTART_AFTER
    while True:
        pids = {name: server.pids() for name, server in running.items()}
        before = {name: process_cpu(p) for name, p in pids.items()}
        time.sleep(0.5)
        busy = [name for name, p in pids.items() if process_cpu(p) - before[name] > 0.05]
        if not busy:
            return ""
        if time.monotonic() > deadline:
            for name in busy:
                say(f"{name}: still busy {RESTART_AFTER:.0f} s after its point; restarting it")
                running[name].stop()
                running[name].start(allocator(args))
            return f"restarted {', '.join(busy)} (busy with abandoned requests) before this point"


def measure(
    running: dict[str, servers.Server],
    workloads: list[Workload],
    levels: tuple[int, ...],
    args: argparse.Namespace,
    bodies: Path,
    say: Callable[[str], None],
) -> list[Point]:
    """Every point, servers taking turns at each (workload, concurrency), in rounds.

    The host's speed drifts by tens of percent over minutes here (MLServer's W1 at c=8 measured
    615 to 915 req/s in runs an hour apart; KServe's W4 gRPC 182 and 243 req/s in two runs
    minutes apart), so servers measured one after another would be compared across that drift.
    Each point's measured time is split into `--rounds` rounds, and in every round each server
    takes its turn (A B C A B C A B C); a server's point adds its rounds up (`Point.of_rounds`).
    """
    points: list[Point] = []
    unsupported: dict[tuple[str, str], str] = {}
    duration = args.duration / args.rounds
    for workload in workloads:
        body_file = bodies / f"{workload.key}.bin"
        body_file.write_bytes(build(workload).body)
        names = [name for name in running if runs_on(name, workload)]
        for name in names:
            server = running[name]
            port = server.grpc_port if workload.protocol == "grpc" else server.http_port
            problem = (
                "no such port"
                if port is None
                else probe(workload, "127.0.0.1", port, check_answer=name not in CEILINGS)
            )
            if problem:
                say(f"{name} {workload.key}: unsupported ({problem})")
                unsupported[(name, workload.key)] = problem
        wanted = [c for c in levels if c in workload.concurrency] or list(workload.concurrency)
        for concurrency in wanted:
            measured = [name for name in names if (name, workload.key) not in unsupported]
            rounds: dict[str, list[dict]] = {name: [] for name in measured}
            notes: dict[str, list[str]] = {name: [] for name in measured}
            for _ in range(args.rounds):
                for name in measured:
                    notes[name].append(settle(running, args, say))
                    try:
                        result = drive(
                            running[name],
                            workload,
                            concurrency,
                            body_file,
                            args,
                            duration * workload.stretch,
                            args.warmup,
                        )
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        failure = f"load generator failed: {str(exc).splitlines()[-1][:120]}"
                        say(f"{name} {workload.key} c={concurrency}: {failure}")
                        notes[name].append(failure)
                    else:
                        rounds[name].append(result)
            for name in names:
                problem = unsupported.get((name, workload.key))
                if problem:
                    points.append(
                        Point(name, workload.key, concurrency, note=f"unsupported: {problem}")
                    )
                    continue
                note = "; ".join(dict.fromkeys(filter(None, notes[name])))
                if not rounds[name]:
                    points.append(Point(name, workload.key, concurrency, note=note))
                    continue
                point = Point.of_rounds(name, workload.key, concurrency, rounds[name])
                point.note = note
                say(point.line())
                points.append(point)
    return points


def _rss(server: servers.Server) -> dict[str, int]:
    """Resident memory, KiB: each serving process (gunicorn's workers, not its master)."""
    assert server.process is not None
    pids = server.pids()
    workers = (
        [pid for pid in pids if pid != server.process.pid] if "modelport" in server.name else []
    )
    serving = workers or pids
    return {
        "per_worker_max": max(servers.rss_kib(p) for p in serving),
        "all": sum(map(servers.rss_kib, pids)),
    }


def example_models_rss(args: argparse.Namespace) -> int | None:
    """One Modelport worker's resident memory with config/models.yaml (every example) loaded."""
    server = servers.modelport(
        str(servers.ROOT / "config" / "models.yaml"), name="modelport-examples"
    )
    server.env["MODELPORT_OMI_PORT"] = "0"
    try:
        server.start(allocator(args))
    except RuntimeError:
        return None
    try:
        return _rss(server)["per_worker_max"]
    finally:
        server.stop()


def perf_analyzer_check(args: argparse.Namespace, say: Callable[[str], None]) -> list[dict]:
    """perf_analyzer's own figures for W1 and W2 at concurrency 8, on Modelport only.

    It reads the model configuration (`/config`, ModelConfig), which the peers do not serve.
    Over HTTP it sends binary tensors and asks for both outputs in binary: the report sets it
    beside W1-bin, which sends the same, not beside W1 (JSON, the default output only).
    """
    script = servers.BENCH / "perf_analyzer.sh"
    server = servers.modelport("modelport.yaml").start(allocator(args))
    checks = []
    try:
        for protocol, port in (("http", server.http_port), ("grpc", server.grpc_port)):
            argv = ["taskset", "-c", servers.CLIENT_CPU, str(script), "-m", "iris"]
            argv += ["-u", f"127.0.0.1:{port}", "-i", protocol, "--shape", "input-0:1,4"]
            argv += ["--concurrency-range", "8", "--measurement-interval", "4000"]
            argv += ["--percentile", "99", "--stability-percentage", "100", "--max-trials", "5"]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
            output = done.stdout + done.stderr
            check = report.parse_perf_analyzer(protocol, output, done.returncode)
            say(f"perf_analyzer {protocol}: {check}")
            checks.append(check)
    finally:
        server.stop()
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: Modelport, c=8, 1 s")
    parser.add_argument("--servers", help=f"comma list of {', '.join(ALL_SERVERS)}")
    parser.add_argument("--workloads", help="comma list of workload keys (W1, W4-bin, B-on...)")
    parser.add_argument("--concurrency", help="comma list (default 1,8,32)")
    parser.add_argument("--duration", type=float, help="measured seconds per point (6; quick: 1)")
    parser.add_argument(
        "--warmup", type=float, help="unmeasured seconds before each round (1; quick: 0.3)"
    )
    parser.add_argument(
        "--rounds", type=int, help="servers take turns this many times per point (3; quick: 1)"
    )
    parser.add_argument("--malloc-mmap-threshold", type=int, default=MALLOC_MMAP_THRESHOLD)
    parser.add_argument("--malloc-trim-threshold", type=int, default=MALLOC_TRIM_THRESHOLD)
    parser.add_argument("--no-perf-analyzer", action="store_true")
    parser.add_argument("--out", type=Path, default=servers.BENCH / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.servers = args.servers or "modelport"
        args.concurrency = args.concurrency or "8"
        args.workloads = args.workloads or "W1,W1-bin,W2,W3,W4-bin,W4-grpc"
        args.no_perf_analyzer = True
    if args.duration is None:
        args.duration = 1.0 if args.quick else 6.0
    if args.warmup is None:
        args.warmup = 0.3 if args.quick else 1.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    names = args.servers.split(",") if args.servers else list(ALL_SERVERS)
    keys = args.workloads.split(",") if args.workloads else [w.key for w in WORKLOADS]
    levels = tuple(int(c) for c in (args.concurrency or "1,8,32").split(","))
    workloads = [w for w in WORKLOADS if w.key in keys]

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    # SIGTERM unwinds like Ctrl-C, so every server started so far is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = time.time()
    names = [name for name in names if any(runs_on(name, w) for w in workloads)]
    running, facts = start_all(names, args, say)
    try:
        with tempfile.TemporaryDirectory(prefix="modelport-bench-") as scratch:
            points = measure(running, workloads, levels, args, Path(scratch), say)
        for name, server in running.items():
            facts[name]["rss_kib"] = _rss(server)
    finally:
        for server in running.values():
            server.stop()
    extra: dict = {}
    if "modelport" in names and not args.quick:
        extra["modelport_examples_rss_kib"] = example_models_rss(args)
    if "modelport" in names and not args.no_perf_analyzer:
        extra["perf_analyzer"] = perf_analyzer_check(args, say)
    run = report.Run(
        points=points,
        servers=facts,
        workloads=workloads,
        settings={
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "MALLOC_MMAP_THRESHOLD_": args.malloc_mmap_threshold,
            "MALLOC_TRIM_THRESHOLD_": args.malloc_trim_threshold,
            "quick": args.quick,
            "elapsed_s": round(time.time() - started),
        },
        extra=extra,
    )
    text = report.render(run)
    print(text)
    written = report.write(run, text, args.out)
    say(f"written: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
