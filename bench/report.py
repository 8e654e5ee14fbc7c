"""The benchmark's results: one table per run, the issue's targets checked, written to disk."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.workloads import Workload

#: A load generator that used this much of its core may have been the bottleneck.
CLIENT_BOUND = 0.85
PEERS = ("mlserver", "kserve")
COLUMNS = (
    "workload",
    "c",
    "Modelport req/s",
    "p50 ms",
    "p99 ms",
    "MLServer req/s",
    "p50 ms",
    "p99 ms",
    "KServe req/s",
    "p50 ms",
    "p99 ms",
    "ceiling req/s",
    "MP/MLServer",
    "MP/KServe",
    "MP/ceiling",
    "notes",
)


@dataclass
class Point:
    """One server at one workload and concurrency (rps None: not measured, `note` says why)."""

    server: str
    workload: str
    concurrency: int
    rps: float | None = None
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    failures: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    server_cpu: float | None = None
    client_cpu: float = 0.0
    note: str = ""

    @classmethod
    def of(cls, server: str, workload: str, concurrency: int, result: dict[str, Any]) -> Point:
        """A point from the load generator's JSON."""
        return cls(
            server,
            workload,
            concurrency,
            rps=result["rps"],
            p50_ms=result["p50_ms"],
            p90_ms=result["p90_ms"],
            p99_ms=result["p99_ms"],
            failures=result["failures"],
            statuses=result["statuses"],
            server_cpu=result.get("server_cpu"),
            client_cpu=result["client_cpu"],
        )

    @classmethod
    def of_rounds(
        cls, server: str, workload: str, concurrency: int, rounds: list[dict[str, Any]]
    ) -> Point:
        """A point from several runs of the load generator (rounds of one point).

        req/s is every answer over every measured second; p50/p90/p99 are the median of the
        rounds' percentiles; CPU fractions are the rounds' mean, except the client's, which is
        the largest: one client-bound round marks the point.
        """
        if len(rounds) == 1:
            return cls.of(server, workload, concurrency, rounds[0])
        statuses: dict[str, int] = {}
        for result in rounds:
            for status, count in result["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        server_cpus = [result.get("server_cpu") for result in rounds]
        seconds = sum(result["seconds"] for result in rounds)
        return cls(
            server,
            workload,
            concurrency,
            rps=sum(result["requests"] for result in rounds) / seconds if seconds else 0.0,
            p50_ms=statistics.median(result["p50_ms"] for result in rounds),
            p90_ms=statistics.median(result["p90_ms"] for result in rounds),
            p99_ms=statistics.median(result["p99_ms"] for result in rounds),
            failures=sum(result["failures"] for result in rounds),
            statuses=statuses,
            server_cpu=None
            if None in server_cpus
            else statistics.fmean(c for c in server_cpus if c is not None),
            client_cpu=max(result["client_cpu"] for result in rounds),
        )

    @property
    def client_bound(self) -> bool:
        return self.rps is not None and self.client_cpu >= CLIENT_BOUND

    @property
    def valid(self) -> bool:
        """Measured, every answer right, and the client was not the bottleneck."""
        return self.rps is not None and not self.failures and not self.client_bound

    def line(self) -> str:
        """A progress line."""
        cpu = f"{self.server_cpu:.2f}" if self.server_cpu is not None else "?"
        return (
            f"{self.server:>18} {self.workload:>8} c={self.concurrency:<3} "
            f"{self.rps or 0:9.1f} req/s  p50 {self.p50_ms:8.2f}  p99 {self.p99_ms:8.2f} ms  "
            f"server cpu {cpu}  client cpu {self.client_cpu:.2f}  failures {self.failures}"
        )


@dataclass
class Run:
    """Everything one `make bench` measured."""

    points: list[Point]
    servers: dict[str, dict[str, Any]]
    workloads: list[Workload]
    settings: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def point(self, server: str, workload: str, concurrency: int) -> Point | None:
        for point in self.points:
            if (point.server, point.workload, point.concurrency) == (server, workload, concurrency):
                return point
        return None

    def modelport(self, workload: str, concurrency: int) -> Point | None:
        return self.point("modelport", workload, concurrency) or self.point(
            "modelport-batching", workload, concurrency
        )

    def ceiling(self, workload: Workload, concurrency: int) -> Point | None:
        if workload.ceiling is None:
            return None
        return self.point(f"ceiling-{workload.ceiling}", workload.key, concurrency)

    def faster_peer(self, workload: str, concurrency: int) -> Point | None:
        measured = [
            p
            for p in (self.point(peer, workload, concurrency) for peer in PEERS)
            if p is not None and p.rps is not None
        ]
        return max(measured, key=lambda p: p.rps or 0.0, default=None)


def _cell(point: Point | None) -> list[str]:
    if point is None:
        return ["—", "—", "—"]
    if point.rps is None:
        return ["n/a", "", ""]
    mark = "*" if point.client_bound else ("!" if point.failures else "")
    return [f"{point.rps:,.1f}{mark}", f"{point.p50_ms:.2f}", f"{point.p99_ms:.2f}"]


def _ratio(ours: Point | None, theirs: Point | None) -> str:
    if ours is None or theirs is None or not ours.rps or not theirs.rps:
        return "—"
    text = f"{ours.rps / theirs.rps:.2f}×"
    return text + " (client-bound)" if ours.client_bound or theirs.client_bound else text


def table(run: Run) -> str:
    """The one table: req/s, p50, p99 per server, and the ratios Modelport / others."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for workload in run.workloads:
        levels = sorted({p.concurrency for p in run.points if p.workload == workload.key})
        for concurrency in levels:
            ours = run.modelport(workload.key, concurrency)
            peers = [run.point(peer, workload.key, concurrency) for peer in PEERS]
            ceiling = run.ceiling(workload, concurrency)
            notes = sorted(
                {
                    f"{p.server}: {p.note}"
                    for p in [ours, *peers, ceiling]
                    if p is not None and p.note
                }
                | {
                    f"{p.server}: {p.failures} failed"
                    for p in [ours, *peers, ceiling]
                    if p is not None and p.failures
                }
            )
            row = [workload.key, str(concurrency)]
            row += _cell(ours) + _cell(peers[0]) + _cell(peers[1])
            row.append(_cell(ceiling)[0])
            row += [_ratio(ours, peers[0]), _ratio(ours, peers[1]), _ratio(ours, ceiling)]
            row.append("; ".join(notes))
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def targets(run: Run) -> list[str]:
    """The issue's targets at concurrency 8 (batching at 32), each met or not, with figures."""
    results: list[str] = []

    def against_peer(key: str, factor: float, label: str, p99: bool = False) -> None:
        ours, peer = run.modelport(key, 8), run.faster_peer(key, 8)
        if ours is None or peer is None or ours.rps is None or peer.rps is None:
            return
        ratio = ours.rps / peer.rps
        met = ratio >= factor and ours.valid and peer.valid
        text = f"{label}: {ratio:.2f}× {peer.server} ({ours.rps:,.0f} vs {peer.rps:,.0f} req/s)"
        if p99:
            met = met and ours.p99_ms <= peer.p99_ms
            text += f", p99 {ours.p99_ms:.1f} vs {peer.p99_ms:.1f} ms"
        results.append(f"- {'met' if met else 'NOT met'} — {text}; target ≥ {factor}×")

    # Issue 16's targets (W4 gRPC keeps issue 9's).
    against_peer("W1", 2.0, "W1 REST c=8", p99=True)
    against_peer("W2", 2.0, "W2 gRPC c=8")
    against_peer("W3", 2.0, "W3 REST [256,4] c=8")
    against_peer("W4-json", 2.0, "W4 REST JSON 4 MiB c=8")
    against_peer("W4-grpc", 1.3, "W4 gRPC raw 4 MiB c=8")
    by_key = {w.key: w for w in run.workloads}
    for key in ("W4-bin", "W4-bin64"):
        ours = run.modelport(key, 8)
        ceiling = run.ceiling(by_key[key], 8) if key in by_key else None
        if ours and ceiling and ours.rps and ceiling.rps:
            share = ours.rps / ceiling.rps
            results.append(
                f"- {'met' if share >= 0.7 and ours.valid else 'NOT met'} — {key} binary REST "
                f"c=8: {share:.0%} of the bare WSGI app on the same worker class "
                f"({ours.rps:,.1f} vs {ceiling.rps:,.1f} req/s); target ≥ 70 %"
            )
    on, off = run.modelport("B-on", 32), run.modelport("B-off", 32)
    if on and off and on.rps and off.rps:
        gain = on.rps / off.rps
        results.append(
            f"- {'met' if gain >= 3 and on.valid and off.valid else 'NOT met'} — batching, 5 ms "
            f"per call, c=32: {gain:.1f}× ({on.rps:,.0f} vs {off.rps:,.0f} req/s); target ≥ 3×"
        )
    for check, key, ours in _perf_analyzer_gaps(run):
        if "rps" in check and ours is not None and ours.rps:
            gap = check["rps"] / ours.rps - 1
            results.append(
                f"- {'met' if abs(gap) <= 0.15 else 'NOT met'} — perf_analyzer "
                f"{check['protocol']} against our {key} c=8: {gap:+.0%} "
                f"({check['rps']:,.0f} vs {ours.rps:,.0f} req/s); target within 15 %"
            )
    return results


#: The load generator's point that sends what perf_analyzer sends, per protocol: over HTTP
#: binary tensors both ways with every output named (W1-bin), over gRPC raw tensors (W2).
CROSS_CHECKED = {"http": "W1-bin", "grpc": "W2"}


def _perf_analyzer_gaps(run: Run) -> list[tuple[dict[str, Any], str, Point | None]]:
    """Each perf_analyzer check with the workload it is set beside and our point for it."""
    checks = run.extra.get("perf_analyzer") or []
    found = []
    for check in checks:
        key = CROSS_CHECKED.get(check.get("protocol", ""), "")
        found.append((check, key, run.modelport(key, 8)))
    return found


def cross_check(run: Run) -> list[str]:
    """perf_analyzer's throughput beside ours for the same request, and whether they agree
    within 15 % (issue 16): a disagreement means one of the two measures something else."""
    lines = []
    for check, key, ours in _perf_analyzer_gaps(run):
        protocol = check.get("protocol", "?")
        if "rps" not in check:
            lines.append(f"- {protocol}: perf_analyzer did not measure: {check.get('error')}")
            continue
        text = f"- {protocol}: perf_analyzer {check['rps']:,.1f} req/s (p99 {check['p99_ms']} ms)"
        if ours is None or not ours.rps:
            lines.append(f"{text}; {key} c=8 not in this run")
            continue
        gap = check["rps"] / ours.rps - 1
        verdict = "agrees" if abs(gap) <= 0.15 else "DISAGREES"
        lines.append(
            f"{text}, our load generator {ours.rps:,.1f} req/s on {key} c=8: {gap:+.0%}, "
            f"{verdict} (within 15 %)"
        )
    return lines


def memory(run: Run) -> list[str]:
    """Resident memory per serving process: idle with its models loaded, and after the run."""
    lines = []
    for name, facts in run.servers.items():
        idle, after = facts.get("rss_idle_kib"), facts.get("rss_kib")
        if idle and after:
            lines.append(
                f"- {name}: {idle['per_worker_max'] / 1024:.0f} MiB per serving process with its "
                f"models loaded, {after['per_worker_max'] / 1024:.0f} MiB after the run "
                f"(whole process tree: {idle['all'] / 1024:.0f} / {after['all'] / 1024:.0f} MiB)"
            )
    examples = run.extra.get("modelport_examples_rss_kib")
    if examples:
        lines.append(
            f"- modelport with config/models.yaml (all 8 example models): "
            f"{examples / 1024:.0f} MiB per worker, idle"
        )
    return lines


def details(run: Run) -> str:
    """Every point with p90, both CPUs (fractions of one core) and whether the client's core
    was saturated (its busiest round at or past `CLIENT_BOUND`: then the point measures the load
    generator, not the server)."""
    lines = [
        "| server | workload | c | req/s | p50 ms | p90 ms | p99 ms | server CPU | client CPU |"
        " load generator saturated | failures |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in run.points:
        if p.rps is None:
            lines.append(f"| {p.server} | {p.workload} | {p.concurrency} | {p.note} ||||||||")
            continue
        cpu = f"{p.server_cpu:.2f}" if p.server_cpu is not None else "?"
        saturated = "yes" if p.client_bound else "no"
        lines.append(
            f"| {p.server} | {p.workload} | {p.concurrency} | {p.rps:,.1f} | {p.p50_ms:.2f} | "
            f"{p.p90_ms:.2f} | {p.p99_ms:.2f} | {cpu} | {p.client_cpu:.2f} | {saturated} | "
            f"{p.failures} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """The facts a reader needs to compare two runs."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    glibc = " ".join(platform.libc_ver())
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "glibc": glibc,
        "gunicorn_workers": _gunicorn_defaults(),
    }


def _gunicorn_defaults() -> str:
    code = (
        "import os, runpy; os.sched_setaffinity(0, {0}); "
        "os.environ['MODELPORT_CONFIG'] = 'bench/modelport.yaml'; "
        "g = runpy.run_path('gunicorn.conf.py'); "
        "print(g['workers'], g['worker_class'], g['threads'])"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    workers, worker_class, threads = (done.stdout.split() + ["?", "?", "?"])[:3]
    return f"{workers} {worker_class} worker(s) × {threads} threads on one core"


def parse_perf_analyzer(protocol: str, output: str, returncode: int) -> dict[str, Any]:
    """Throughput and p99 from perf_analyzer's report (or why it did not run)."""
    throughput = re.search(r"Throughput:\s*([\d.]+)\s*infer/sec", output)
    p99 = re.search(r"p99 latency:\s*(\d+)\s*usec", output)
    if returncode != 0 or throughput is None:
        return {"protocol": protocol, "error": output.strip().splitlines()[-1:] or "no output"}
    return {
        "protocol": protocol,
        "rps": float(throughput.group(1)),
        "p99_ms": int(p99.group(1)) / 1000 if p99 else None,
    }


def stretched(workloads: list[Workload]) -> str:
    """Which of the run's workloads measure longer than the rest (`Workload.stretch`), for the
    header: a reader comparing points must know one was measured over more seconds."""
    longer = [f"{w.key} {w.stretch:g}× that" for w in workloads if w.stretch != 1.0]
    return f"; {', '.join(longer)}" if longer else ""


def render(run: Run) -> str:
    """The whole report as Markdown."""
    facts = machine()
    versions = ", ".join(f"{name} {f.get('version', '?')}" for name, f in run.servers.items())
    settings = run.settings
    rounds = settings.get("rounds", 1)
    parts = [
        f"# Modelport benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}",
        "",
        f"Machine: {facts['cpu']}, {facts['cores']} cores, Linux {facts['kernel']}, "
        f"Python {facts['python']}, {facts['glibc']}. Servers pinned to core 0, the load "
        f"generator (bench/loadgen.py) to core 1. Every server and the load generator ran with "
        f"MALLOC_MMAP_THRESHOLD_={settings['MALLOC_MMAP_THRESHOLD_']} and "
        f"MALLOC_TRIM_THRESHOLD_={settings['MALLOC_TRIM_THRESHOLD_']}. "
        f"Modelport: gunicorn.conf.py defaults, {facts['gunicorn_workers']}.",
        f"Versions: {versions}.",
        f"Each point: {rounds} round(s) per server, servers taking turns, each a "
        f"{settings['warmup_s']} s warm-up then {settings['duration_s'] / rounds:g} s measured "
        f"({settings['duration_s']} s in all{stretched(run.workloads)}) of closed loop, every "
        f"answer checked (HTTP 200 / gRPC OK); {settings['elapsed_s']} s in all."
        + (" QUICK MODE: a smoke run, not a measurement." if settings["quick"] else ""),
        "",
        "`*` client-bound (the load generator used ≥ 85 % of its core: not a win), "
        "`!` some answers failed, `n/a` not supported (notes say why), `—` not run.",
        "",
        table(run),
        "",
        "## Targets",
        "",
        *(targets(run) or ["- (not enough servers in this run to judge)"]),
        "",
        "## Resident memory",
        "",
        *(memory(run) or ["- (not measured)"]),
    ]
    checks = run.extra.get("perf_analyzer")
    if checks:
        parts += ["", "## perf_analyzer cross-check (Modelport, iris, concurrency 8)", ""]
        parts += cross_check(run)
    parts += ["", "## Every point", "", details(run), ""]
    return "\n".join(parts)


def write(run: Run, text: str, folder: Path) -> Path:
    """`<folder>/<date-time>.md` and the raw figures beside it as JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y-%m-%d-%H%M%S") + ("-quick" if run.settings["quick"] else "")
    path = folder / f"{stem}.md"
    path.write_text(text)
    raw = {
        "settings": run.settings,
        "machine": machine(),
        "servers": run.servers,
        "extra": run.extra,
        "points": [asdict(p) for p in run.points],
    }
    (folder / f"{stem}.json").write_text(json.dumps(raw, indent=1))
    return path
