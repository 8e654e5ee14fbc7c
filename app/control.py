"""The control channel: small files in one folder shared by the gunicorn workers of one master.

gunicorn.conf.py makes the folder in the master (`MODELPORT_STATE_DIR`); each worker reads and
writes it through a `ControlChannel`. Files:

- `desired.json`: the model repository's desired state: a generation number, and per model its
  last change (`Change`) with the generation that asked for it. Changed under `lock` (read,
  bump, write), so generations only grow and no change is lost when two workers publish.
- `repository.lock`: held by the worker whose repository change is under way, so changes
  are applied one at a time server-wide (a load is two generations: prepare, then commit or
  abort, and nothing may come between them).
- `worker-<pid>.json`: a worker's acknowledgement: the generation it has applied, with the outcome
  per model. Writing it is also how a worker joins; it goes when the worker leaves.
- `stats-request.json`: a statistics request number, bumped under `lock` by the asking worker.
- `stats-<pid>.json`: a worker's counters, with the request number they answer. A worker
  rewrites it after each request, every `FORCED_SECONDS` while its counters change, and once more
  as it exits; it stays when the worker leaves, until the master retires it.
- `retired.json`: the counters of every worker that has exited, added up: the master folds a
  dead worker's last `stats-<pid>.json` into it (`retire`), so they stay in the totals.

Every file is written whole (temporary file, then `os.replace`): a reader sees the old or the new
content, never part of one. Each record names its master, so files left by another server (a
reused folder) are ignored. Nothing here runs per inference request.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

from app.stats import merge_records

log = logging.getLogger("modelport.control")
T = TypeVar("T")

#: The changes of one model: LOAD puts the models of a PREPARE in service (or loads them), ABORT
#: drops them, UNLOAD takes the model out of service.
LOAD = "load"
UNLOAD = "unload"
PREPARE = "prepare"
ABORT = "abort"
#: How often a watcher looks at its file (a `stat`): the delay before a worker follows a change.
POLL_SECONDS = 0.025
#: How often a waiting worker looks at the others' answers.
WAIT_SECONDS = 0.005
#: A watcher reads its file every this many polls even when `stat` saw no change: a replaced
#: file can get the freed inode back with an mtime in the same clock tick, and look unchanged.
FORCED_EVERY = 20
#: How often a watcher calls back at the latest, changed file or not.
FORCED_SECONDS = FORCED_EVERY * POLL_SECONDS

_DESIRED = "desired.json"
_STATS_REQUEST = "stats-request.json"
_RETIRED = "retired.json"
_LOCK = "lock"
_REPOSITORY_LOCK = "repository.lock"
_WORKER = "worker-"
_STATS = "stats-"


def write_json(path: Path, record: Mapping[str, Any]) -> None:
    """Replace `path` with `record` as JSON in one step (no reader ever sees half a file).

    No fsync: the readers are processes on this host, which see the page cache; the folder does
    not outlive the server.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(orjson.dumps(record))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """The record at `path`, or None when there is none (or it is not a JSON object)."""
    try:
        record = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def process_alive(pid: int, parent: int) -> bool:
    """Whether `pid` is running as a child of `parent`.

    A dead worker's pid can be reused by another process, and until the master reaps it a dead
    worker is a zombie that `kill(pid, 0)` still finds: /proc says both. Without /proc (not
    Linux), only whether the pid exists.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    state, ppid = stat[stat.rindex(b")") + 2 :].split()[:2]
    return state not in (b"Z", b"X") and int(ppid) == parent


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one worker made of the last change to one model."""

    generation: int
    ok: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """The last change asked of one model.

    `loaded` is whether the model is meant to serve once it is applied: what a worker that starts
    meanwhile follows (a PREPARE or an ABORT keeps the value before it). `prepared` is, for a
    LOAD, the generation of the PREPARE whose models it puts in service (0: none).
    """

    action: str
    generation: int
    loaded: bool = True
    prepared: int = 0


@dataclass(frozen=True, slots=True)
class Desired:
    """The repository's desired state: per model, its last change."""

    generation: int = 0
    models: Mapping[str, Change] = field(default_factory=dict)

    def changes_after(self, generation: int) -> list[tuple[str, Change]]:
        """`(model, change)` of every change newer than `generation`, oldest first."""
        return sorted(
            (
                (name, change)
                for name, change in self.models.items()
                if change.generation > generation
            ),
            key=lambda item: item[1].generation,
        )


@dataclass(frozen=True, slots=True)
class Ack:
    """A worker's acknowledgement: the generation it has applied, and per model its outcome."""

    pid: int
    generation: int
    outcomes: Mapping[str, Outcome]


class ControlChannel:
    """One worker's view of the shared folder: publish, acknowledge, ask, and wait for the others.

    `master` is the gunicorn master's pid: only its live children count as workers. `pid` is this
    worker (tests pass others to play several workers in one process).
    """

    def __init__(self, directory: str | Path, master: int, pid: int | None = None) -> None:
        self.directory = Path(directory)
        self.master = master
        self.pid = os.getpid() if pid is None else pid
        self.desired_path = self.directory / _DESIRED
        self.stats_request_path = self.directory / _STATS_REQUEST

    # -- the repository's desired state ------------------------------------------------------

    def publish(self, name: str, action: str, prepared: int = 0) -> int:
        """Record `action` for model `name` as a new generation; return it.

        `prepared` is, for a LOAD, the generation of the PREPARE it commits.
        """
        with self._locked():
            desired = self.desired()
            generation = desired.generation + 1
            previous = desired.models.get(name)
            loaded = {LOAD: True, UNLOAD: False}.get(action, previous is None or previous.loaded)
            models = {
                n: [c.action, c.generation, c.loaded, c.prepared] for n, c in desired.models.items()
            }
            models[name] = [action, generation, loaded, prepared]
            write_json(
                self.desired_path,
                {"master": self.master, "generation": generation, "models": models},
            )
        return generation

    def desired(self) -> Desired:
        """The current desired state (empty when nothing was published under this master)."""
        record = self._own(read_json(self.desired_path))
        if record is None:
            return Desired()
        models = {name: Change(*values) for name, values in record["models"].items()}
        return Desired(int(record["generation"]), models)

    @contextlib.contextmanager
    def exclusive(self, timeout: float) -> Iterator[bool]:
        """Hold the repository lock for one change; yields False if it was not free in time.

        Polled rather than waited on, so a gevent worker's other greenlets (its watchers among
        them) keep running meanwhile. A worker that dies holding it releases it (flock).
        """
        deadline = time.monotonic() + timeout
        fd = os.open(self.directory / _REPOSITORY_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            yield _try_lock(fd, deadline)
        finally:
            os.close(fd)

    def acknowledge(self, generation: int, outcomes: Mapping[str, Outcome]) -> None:
        """Say that this worker has applied `generation`, with its outcome per model."""
        write_json(
            self._worker_path(self.pid),
            {
                "master": self.master,
                "pid": self.pid,
                "generation": generation,
                "outcomes": {name: [o.generation, o.ok, o.reason] for name, o in outcomes.items()},
            },
        )

    def ack(self, pid: int) -> Ack | None:
        """The acknowledgement of worker `pid`, if it has written one under this master."""
        record = self._own(read_json(self._worker_path(pid)))
        if record is None:
            return None
        outcomes = {name: Outcome(*values) for name, values in record["outcomes"].items()}
        return Ack(pid, int(record["generation"]), outcomes)

    def wait_for_acks(self, generation: int, timeout: float) -> tuple[dict[int, Ack], list[int]]:
        """Wait until every other live worker has applied `generation`, for `timeout` seconds.

        Returns the acknowledgements, and the pids that had not acknowledged when time ran out.
        """

        def answer(pid: int) -> Ack | None:
            ack = self.ack(pid)
            return ack if ack is not None and ack.generation >= generation else None

        return self._wait(answer, timeout)

    # -- statistics ------------------------------------------------------------------------

    def request_stats(self) -> int:
        """Ask every worker for its counters; returns the request number to wait for."""
        with self._locked():
            token = self.stats_token() + 1
            write_json(self.stats_request_path, {"master": self.master, "token": token})
        return token

    def stats_token(self) -> int:
        """The latest statistics request number (0 when none was made under this master)."""
        record = self._own(read_json(self.stats_request_path))
        return 0 if record is None else int(record["token"])

    def answer_stats(self, token: int, records: list[dict[str, Any]]) -> None:
        """Publish this worker's counters, taken after request `token` was made."""
        write_json(
            self._stats_path(self.pid),
            {"master": self.master, "pid": self.pid, "token": token, "stats": records},
        )

    def wait_for_stats(self, token: int, timeout: float) -> list[int]:
        """Wait until every other live worker has answered request `token` (or a later one).

        Returns the pids that had not answered in time.
        """

        def answer(pid: int) -> bool | None:
            record = self._own(read_json(self._stats_path(pid)))
            return True if record is not None and record["token"] >= token else None

        return self._wait(answer, timeout)[1]

    def gather_stats(self) -> list[list[dict[str, Any]]]:
        """The counters of every other worker, live or exited, each list counted once.

        That is every `stats-<pid>.json` but this worker's own, and `retired.json`, read under
        `lock`: the master's `retire` moves a dead worker's counters from one to the other under
        it, so a reader sees them in one place or the other, never in both or neither.
        """
        with self._locked():
            gathered = [self._retired()]
            with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
                for entry in entries:
                    if self._stats_pid(entry.name) not in (None, self.pid):
                        record = self._own(read_json(Path(entry.path)))
                        if record is not None:
                            gathered.append(record["stats"])
        return gathered

    def retire(self, pid: int) -> None:
        """Fold the last counters of exited worker `pid` into the retired totals; drop its files.

        The master calls it when it has reaped the worker (gunicorn's child_exit), killed or not.
        """
        with self._locked():
            record = self._own(read_json(self._stats_path(pid)))
            if record is not None:
                write_json(
                    self.directory / _RETIRED,
                    {
                        "master": self.master,
                        "stats": merge_records(self._retired(), record["stats"]),
                    },
                )
            for path in (self._worker_path(pid), self._stats_path(pid)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    # -- workers -----------------------------------------------------------------------------

    def peers(self) -> list[int]:
        """The pids of the other live workers of this master that have joined (acknowledged)."""
        pids = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
            for entry in entries:
                name = entry.name
                if not (name.startswith(_WORKER) and name.endswith(".json")):
                    continue
                pid = name[len(_WORKER) : -len(".json")]
                if pid.isdigit() and int(pid) != self.pid:
                    pids.append(int(pid))
        return sorted(pid for pid in pids if process_alive(pid, self.master))

    def leave(self) -> None:
        """Remove this worker's acknowledgement, so nobody waits for it any more.

        Its counters stay for the master to retire.
        """
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._worker_path(self.pid))

    # -- helpers ---------------------------------------------------------------------------

    def _wait(
        self, answer: Callable[[int], T | None], timeout: float
    ) -> tuple[dict[int, T], list[int]]:
        """Poll every live peer's `answer` until all have one, or `timeout` seconds passed.

        The peers are listed again on every round: one that dies is no longer waited for, one
        that joins meanwhile is.
        """
        deadline = time.monotonic() + timeout
        while True:
            answers: dict[int, T] = {}
            missing: list[int] = []
            for pid in self.peers():
                value = answer(pid)
                if value is None:
                    missing.append(pid)
                else:
                    answers[pid] = value
            if not missing or time.monotonic() >= deadline:
                return answers, missing
            time.sleep(WAIT_SECONDS)

    def _own(self, record: dict[str, Any] | None) -> dict[str, Any] | None:
        return record if record is not None and record.get("master") == self.master else None

    def _worker_path(self, pid: int) -> Path:
        return self.directory / f"{_WORKER}{pid}.json"

    def _stats_path(self, pid: int) -> Path:
        return self.directory / f"{_STATS}{pid}.json"

    @staticmethod
    def _stats_pid(name: str) -> int | None:
        """The pid in a `stats-<pid>.json` file name (None for any other file)."""
        pid = name[len(_STATS) : -len(".json")]
        return (
            int(pid)
            if name.startswith(_STATS) and name.endswith(".json") and pid.isdigit()
            else None
        )

    def _retired(self) -> list[dict[str, Any]]:
        record = self._own(read_json(self.directory / _RETIRED))
        return [] if record is None else record["stats"]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the folder's lock: one read-modify-write at a time over all workers (and threads:
        each call opens its own descriptor, and flock locks belong to the open file)."""
        fd = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _try_lock(fd: int, deadline: float) -> bool:
    """Take the flock on `fd` if it comes free before `deadline` (monotonic); say whether."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(WAIT_SECONDS)


def retire(directory: str | Path, master: int, pid: int) -> None:
    """`ControlChannel.retire` for the gunicorn master, whose pid is `master`."""
    ControlChannel(directory, master, pid=master).retire(pid)


class Watcher:
    """A daemon thread that calls `on_change` soon after `path` is replaced.

    It looks at the file's `stat` every `interval` seconds and calls `on_change` when that
    changed, and every `FORCED_EVERY` polls anyway: `on_change` must be idempotent. An exception
    in `on_change` is logged and the watching goes on.
    """

    def __init__(
        self,
        path: Path,
        on_change: Callable[[], None],
        interval: float = POLL_SECONDS,
        name: str = "modelport-control",
    ) -> None:
        self.path = path
        self._on_change = on_change
        self._interval = interval
        self._seen: tuple[int, int, int] | None = None
        self._polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and wait for the thread to end."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def poll(self) -> None:
        """One look at the file: call `on_change` if it changed (or a forced read is due)."""
        try:
            stat = os.stat(self.path)
            seen: tuple[int, int, int] | None = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            seen = None
        forced = self._polls % FORCED_EVERY == 0
        self._polls += 1
        if seen != self._seen or forced:
            self._seen = seen
            self._on_change()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll()
            except Exception:  # a watcher that dies would leave its worker behind for good
                log.exception("control watcher of %s failed; retrying", self.path.name)
