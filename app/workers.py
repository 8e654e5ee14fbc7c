"""Repository changes and statistics for the whole server, not just the worker that was asked.

gunicorn runs several workers, each with its own model manager and counters. `Workers` is what
one process does alone (Flask's test client, or one worker). `SharedWorkers` goes through the
control channel (`app.control`): a repository change is applied here, published as a new
generation, applied by every other worker's watcher, and answered once all have acknowledged it;
a statistics request asks every worker for its counters and adds them up. The inference path
never touches any of this.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from app.control import LOAD, UNLOAD, ControlChannel, Outcome, Watcher
from app.errors import ModelNotFound, ModelportError, ModelUnavailable, WorkersUnresponsive
from app.manager import ModelManager
from app.stats import ModelStats, StatsRegistry

log = logging.getLogger("modelport.workers")

#: How long a repository change waits for the other workers (they load models meanwhile).
REPOSITORY_TIMEOUT_SECONDS = 60.0
#: How long a statistics request waits for the other workers' counters.
STATS_TIMEOUT_SECONDS = 5.0

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
    the other answers statistics requests (so a long model load never holds up statistics).
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
        self._answered = 0
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
        """Stop following, and leave: the others no longer wait for this worker."""
        for watcher in self._watchers:
            watcher.stop()
        self.channel.leave()

    # -- repository --------------------------------------------------------------------------

    def load(self, name: str) -> None:
        """Load or reload `name` in every worker; raises when any of them failed or lagged.

        Raises `ModelNotFound` (nothing published), `ModelUnavailable` naming the failed load
        and the workers it failed in, or `WorkersUnresponsive` naming the workers that did not
        answer in time.
        """
        self.manager.entries(name)  # ModelNotFound before anything is published
        self._change(name, LOAD)

    def unload(self, name: str) -> None:
        """Unload `name` in every worker; raises `ModelNotFound` or `WorkersUnresponsive`."""
        self.manager.entries(name)
        self._change(name, UNLOAD)

    def _change(self, name: str, action: str) -> None:
        generation = self.channel.publish(name, action)
        self.sync()
        acks, missing = self.channel.wait_for_acks(generation, self.timeout)
        outcomes = {self.channel.pid: self._outcomes.get(name)}
        outcomes |= {pid: ack.outcomes.get(name) for pid, ack in acks.items()}
        failed: dict[str, list[int]] = {}
        for pid, outcome in outcomes.items():
            # An outcome of a later generation means another change of this model came after.
            if outcome is not None and outcome.generation == generation and not outcome.ok:
                failed.setdefault(outcome.reason, []).append(pid)
        problems = [
            reason if len(outcomes) == 1 else f"{reason} (in {_workers(pids)})"
            for reason, pids in failed.items()
        ]
        if missing:
            problems.append(
                f"{_workers(missing)} did not {action} model '{name}' within {self.timeout:g} s"
            )
        if problems:
            error = ModelUnavailable if failed else WorkersUnresponsive
            raise error("; ".join(problems))

    def sync(self, starting: bool = False) -> None:
        """Apply every change of the desired state newer than this worker's, then acknowledge.

        At start the models were just mounted from the config, so a "load" is checked, not
        repeated; an "unload" is applied.
        """
        with self._lock:
            desired = self.channel.desired()
            if desired.generation <= self._applied and not starting:
                return
            for generation, name, action in desired.changes_after(self._applied):
                self._outcomes[name] = self._apply(name, action, generation, starting)
            self._applied = max(self._applied, desired.generation)
            self.channel.acknowledge(self._applied, self._outcomes)

    def _apply(self, name: str, action: str, generation: int, starting: bool) -> Outcome:
        try:
            if action == UNLOAD:
                self.manager.unload(name)
            elif starting:
                self.manager.check_loaded(name)
            else:
                self.manager.load(name)
        except ModelNotFound:  # not in this worker's config (a HUP changed it): nothing to do
            return Outcome(generation, True, "not configured")
        except ModelportError as exc:
            return Outcome(generation, False, str(exc))
        log.info("model '%s': %s (generation %d) applied", name, action, generation)
        return Outcome(generation, True)

    # -- statistics --------------------------------------------------------------------------

    def statistics(self, versions: Iterable[Version]) -> list[ModelStats]:
        """The counters of each `(name, version)` added up over every live worker.

        Exact once traffic stops: every other worker's counters are taken after this request.
        Raises `WorkersUnresponsive` naming the workers that did not answer in time.
        """
        versions = list(versions)
        answers: dict[int, list[dict[str, Any]]] = {}
        if self.channel.peers():
            token = self.channel.request_stats()
            answers, missing = self.channel.wait_for_stats(token, self.stats_timeout)
            if missing:
                raise WorkersUnresponsive(
                    f"{_workers(missing)} did not send statistics within {self.stats_timeout:g} s"
                )
        totals = {version: self.stats.snapshot(*version) for version in versions}
        for records in answers.values():
            for record in records:
                version = (record["name"], record["version"])
                if version in totals:
                    totals[version] = totals[version].merged(ModelStats.from_record(record))
        return [totals[version] for version in versions]

    def answer_stats(self) -> None:
        """Send this worker's counters when a statistics request is newer than the last answer."""
        token = self.channel.stats_token()
        if token > self._answered:
            self.channel.answer_stats(token, [s.to_record() for s in self.stats.snapshot_all()])
            self._answered = token


def _workers(pids: Iterable[int]) -> str:
    """ "worker 12" or "workers 12, 34": messages name the processes an operator can look at."""
    ordered = sorted(pids)
    return ("worker " if len(ordered) == 1 else "workers ") + ", ".join(map(str, ordered))
