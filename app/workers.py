"""Repository changes and statistics for the whole server, not just the worker that was asked.

gunicorn runs several workers, each with its own model manager and counters. `Workers` is what
one process does alone (Flask's test client, or one worker). `SharedWorkers` goes through the
control channel (`app.control`): a repository change is applied here, published as a new
generation, applied by every other worker's watcher, and answered once all have acknowledged it.
A load takes two rounds, so that it is all or nothing: every worker loads the new models aside
(PREPARE); only when all of them did are they put in service (LOAD), otherwise every worker
drops them (ABORT) and keeps what it served. A statistics request asks every worker for its
counters and adds them up, with those of the workers that have exited (the master keeps them,
`app.control.retire`). The inference path never touches any of this.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.control import (
    ABORT,
    LOAD,
    PREPARE,
    UNLOAD,
    Change,
    ControlChannel,
    Outcome,
    Watcher,
)
from app.errors import ModelNotFound, ModelportError, ModelUnavailable, WorkersUnresponsive
from app.manager import ModelManager, Prepared
from app.stats import ModelStats, StatsRegistry

log = logging.getLogger("modelport.workers")

#: How long a repository change waits for the other workers (they load models meanwhile).
REPOSITORY_TIMEOUT_SECONDS = 60.0
#: How long a statistics request waits for the other workers' counters.
STATS_TIMEOUT_SECONDS = 5.0
#: How long the second round of a load (commit or abort) waits at least, whatever the first
#: took: the workers only swap or drop what they loaded.
DECIDE_SECONDS = 5.0

Version = tuple[str, str]


class Workers:
    """Repository changes and statistics of this process alone."""

    def __init__(self, manager: ModelManager, stats: StatsRegistry) -> None:
        self.manager = manager
        self.stats = stats

    def load(self, name: str) -> None:
        """Load or reload every version of `name`; raises `ModelNotFound` or `ModelUnavailable`."""
        self.manager.load(name)

    def unload(self, name: str) -> None:
        """Unload every version of `name`; raises `ModelNotFound`."""
        self.manager.unload(name)

    def statistics(self, versions: Iterable[Version]) -> list[ModelStats]:
        """The counters of each `(name, version)`, in the order asked."""
        return [self.stats.snapshot(name, version) for name, version in versions]

    def start(self, timeout: float | None = None) -> None:
        """Start taking part, before this process serves (nothing to do alone)."""

    def close(self) -> None:
        """Stop taking part (nothing to do alone)."""


class SharedWorkers(Workers):
    """This worker's part in server-wide repository changes and statistics.

    Two watcher threads follow the folder: one applies new generations of the desired state,
    the other answers statistics requests and writes this worker's counters out while they
    change (so a long model load never holds up statistics).
    """

    def __init__(
        self,
        manager: ModelManager,
        stats: StatsRegistry,
        channel: ControlChannel,
        *,
        timeout: float = REPOSITORY_TIMEOUT_SECONDS,
        stats_timeout: float = STATS_TIMEOUT_SECONDS,
        interval: float | None = None,
    ) -> None:
        super().__init__(manager, stats)
        self.channel = channel
        self.timeout = timeout
        self.stats_timeout = stats_timeout
        self._lock = threading.Lock()  # one application of the desired state at a time
        self._applied = 0
        self._outcomes: dict[str, Outcome] = {}
        self._pending: dict[str, tuple[int, Prepared]] = {}  # loaded aside, per PREPARE
        self._answered = 0
        self._written = 0  # the registry's `changes` when the counters were last written
        every = {} if interval is None else {"interval": interval}
        self._watchers = (
            Watcher(channel.desired_path, self.sync, name="modelport-repository", **every),
            Watcher(channel.stats_request_path, self.answer_stats, name="modelport-stats", **every),
        )

    def start(self, timeout: float | None = None) -> None:
        """Catch up with the desired state, join (acknowledge), then follow changes.

        Runs before the worker serves anything: a worker that replaces a dead one, or comes with
        a HUP, never serves a model that was unloaded. `timeout`, when given, replaces how long
        a repository change waits for the others (gunicorn's hook keeps it under the worker
        timeout).
        """
        if timeout is not None:
            self.timeout = timeout
        self.sync(starting=True)
        for watcher in self._watchers:
            watcher.start()

    def close(self) -> None:
        """Stop following, write the counters a last time, and leave.

        The others no longer wait for this worker; its counters stay in their totals.
        """
        for watcher in self._watchers:
            watcher.stop()
        self._write_stats(self._answered)
        self.channel.leave()

    # -- repository --------------------------------------------------------------------------

    def load(self, name: str) -> None:
        """Load or reload `name` in every worker, or in none: raises when any of them failed.

        Every worker loads the new versions aside; they serve once all workers have them. If
        one failed or did not answer in time, every worker drops them and keeps serving what
        it served (the answer says so, naming the workers). Raises `ModelNotFound` (nothing
        published), `ModelUnavailable` naming the failed load and the workers it failed in, or
        `WorkersUnresponsive` naming the workers that did not answer in time.
        """
        self.manager.require(name)  # ModelNotFound before anything is published
        deadline = time.monotonic() + self.timeout
        with self.channel.exclusive(self.timeout) as held:
            if not held:
                raise self._busy(name)
            prepared = self._round(name, self.channel.publish(name, PREPARE), deadline)
            if not prepared.ok:
                aborted = self._round(
                    name, self.channel.publish(name, ABORT), self._decide_by(deadline)
                )
                behind = (
                    f" but {_workers(aborted.missing)}, still loading" if aborted.missing else ""
                )
                raise prepared.error(
                    name, LOAD, f"the load was rolled back in every worker{behind}"
                )
            committed = self.channel.publish(name, LOAD, prepared=prepared.generation)
            done = self._round(name, committed, self._decide_by(deadline))
            if not done.ok:
                raise done.error(name, LOAD)

    def unload(self, name: str) -> None:
        """Unload `name` in every worker; raises `ModelNotFound` or `WorkersUnresponsive`."""
        self.manager.entries(name)
        deadline = time.monotonic() + self.timeout
        with self.channel.exclusive(self.timeout) as held:
            if not held:
                raise self._busy(name)
            done = self._round(name, self.channel.publish(name, UNLOAD), deadline)
            if not done.ok:
                raise done.error(name, UNLOAD)

    def _round(self, name: str, generation: int, deadline: float) -> _Round:
        """Apply `generation` here, then wait for every other worker until `deadline`."""
        self.sync()
        acks, missing = self.channel.wait_for_acks(generation, deadline - time.monotonic())
        outcomes = {self.channel.pid: self._outcomes.get(name)}
        outcomes |= {pid: ack.outcomes.get(name) for pid, ack in acks.items()}
        failed: dict[str, list[int]] = {}
        for pid, outcome in outcomes.items():
            # An outcome of a later generation means another change of this model came after.
            if outcome is not None and outcome.generation == generation and not outcome.ok:
                failed.setdefault(outcome.reason, []).append(pid)
        return _Round(generation, failed, missing, len(outcomes), self.timeout)

    def _decide_by(self, deadline: float) -> float:
        """When a load's second round stops waiting: its swap or drop is quick everywhere."""
        return max(deadline, time.monotonic() + DECIDE_SECONDS)

    def _busy(self, name: str) -> WorkersUnresponsive:
        return WorkersUnresponsive(
            f"model '{name}' was not changed: another repository change took over "
            f"{self.timeout:g} s"
        )

    def sync(self, starting: bool = False) -> None:
        """Apply every change of the desired state newer than this worker's, then acknowledge.

        At start the models were just mounted from the config, so a "load" is checked, not
        repeated, and a model meant to be unloaded is unloaded, whatever its last change (an
        ABORT, or a PREPARE still under way: that one is prepared too, as the others do).
        """
        with self._lock:
            desired = self.channel.desired()
            if desired.generation <= self._applied and not starting:
                return
            for name, change in desired.changes_after(self._applied):
                self._outcomes[name] = self._apply(name, change, starting)
            self._applied = max(self._applied, desired.generation)
            self.channel.acknowledge(self._applied, self._outcomes)

    def _apply(self, name: str, change: Change, starting: bool) -> Outcome:
        generation = change.generation
        try:
            if change.action == UNLOAD or (starting and not change.loaded):
                self.manager.unload(name)
            pending = self._pending.pop(name, None)  # a change of the model ends a PREPARE
            if change.action == PREPARE:
                prepared = self.manager.prepare(name)
                self._pending[name] = (generation, prepared)
                if prepared.failure:
                    return Outcome(generation, False, prepared.failure)
            elif change.action == LOAD:
                if pending is not None and pending[0] == change.prepared and not pending[1].failure:
                    self.manager.commit(pending[1])
                elif starting:
                    self.manager.check_loaded(name)
                else:  # it missed the PREPARE (it joined during the round): load now
                    self.manager.load(name)
        except ModelNotFound:  # not in this worker's config (a HUP changed it): nothing to do
            return Outcome(generation, True, "not configured")
        except ModelportError as exc:
            return Outcome(generation, False, str(exc))
        log.info("model '%s': %s (generation %d) applied", name, change.action, generation)
        return Outcome(generation, True)

    # -- statistics --------------------------------------------------------------------------

    def statistics(self, versions: Iterable[Version]) -> list[ModelStats]:
        """The counters of each `(name, version)` added up over every worker, exited ones too.

        Exact once traffic stops: every other live worker's counters are taken after this
        request; an exited worker's are its last (all of them when it stopped gracefully, its
        last `FORCED_SECONDS` or so may be missing when it was killed). Raises
        `WorkersUnresponsive` naming the workers that did not answer in time.
        """
        versions = list(versions)
        if self.channel.peers():
            token = self.channel.request_stats()
            missing = self.channel.wait_for_stats(token, self.stats_timeout)
            if missing:
                raise WorkersUnresponsive(
                    f"{_workers(missing)} did not send statistics within {self.stats_timeout:g} s"
                )
        totals = {version: self.stats.snapshot(*version) for version in versions}
        for records in self.channel.gather_stats():
            for record in records:
                version = (record["name"], record["version"])
                if version in totals:
                    totals[version] = totals[version].merged(ModelStats.from_record(record))
        return [totals[version] for version in versions]

    def answer_stats(self) -> None:
        """Write this worker's counters when a statistics request is newer than the last answer,
        or when they changed since they were last written.

        The watcher calls this at least every `FORCED_SECONDS`: that bounds what a SIGKILL can
        take out of the server's totals.
        """
        token = self.channel.stats_token()
        if token > self._answered or self.stats.changes != self._written:
            self._write_stats(max(token, self._answered))

    def _write_stats(self, token: int) -> None:
        changes = self.stats.changes  # before the snapshot: a later change is written next time
        self.channel.answer_stats(token, [s.to_record() for s in self.stats.snapshot_all()])
        self._answered, self._written = token, changes


@dataclass(frozen=True, slots=True)
class _Round:
    """What the workers made of one generation of a model's change."""

    generation: int
    failed: dict[str, list[int]]  # reason: the pids it failed in, this worker's included
    missing: list[int]  # the workers that did not acknowledge in time
    workers: int  # how many answered, this one included
    timeout: float

    @property
    def ok(self) -> bool:
        """Every worker applied it."""
        return not self.failed and not self.missing

    def error(self, name: str, action: str, then: str = "") -> ModelUnavailable:
        """The 503 for it: each reason with the workers it failed in (alone, just the reason),
        the workers that did not follow, then `then`; `details` lists the pids."""
        problems = [
            reason if self.workers == 1 else f"{reason} (in {_workers(pids)})"
            for reason, pids in self.failed.items()
        ]
        if self.missing:
            late = _workers(self.missing)
            problems.append(f"{late} did not {action} model '{name}' within {self.timeout:g} s")
        details: dict[str, Any] = {}
        if self.failed:
            details["failed_workers"] = sorted(pid for pids in self.failed.values() for pid in pids)
        if self.missing:
            details["unresponsive_workers"] = sorted(self.missing)
        error = ModelUnavailable if self.failed else WorkersUnresponsive
        return error("; ".join(problems + ([then] if then else [])), details)


def _workers(pids: Iterable[int]) -> str:
    """ "worker 12" or "workers 12, 34": messages name the processes an operator can look at."""
    ordered = sorted(pids)
    return ("worker " if len(ordered) == 1 else "workers ") + ", ".join(map(str, ordered))
