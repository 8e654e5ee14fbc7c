"""The model manager: mounts every configured model version and tracks its state.

One manager per process (per gunicorn worker). Lookups are lock-free reads of a dict that is only
ever replaced whole; loads, reloads and unloads hold a lock so two of them never interleave.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from app.entries import ModelEntry, ModelState
from app.errors import ModelNotFound, ModelUnavailable
from app.model import Model
from app.repositories import scan
from app.runtimes import RUNTIME_CLASSES, import_class
from app.storage import StorageError, localized
from config.settings import ModelSettings, RepositorySettings, Settings, StorageSettings

log = logging.getLogger("modelport.manager")


@dataclass(frozen=True, slots=True)
class Prepared:
    """Every configured version of one model, loaded aside: `ModelManager.commit` serves them.

    Until then the versions in service keep serving; a load that is never committed (it failed
    here, or in another worker) leaves them as they were.
    """

    name: str
    entries: tuple[ModelEntry, ...]

    @property
    def failure(self) -> str:
        """What `load` raises for it: the first version that failed ("" when all loaded)."""
        return _failure(self.name, self.entries)


def version_key(version: str) -> tuple[int, int, str]:
    """Sort key that orders numeric versions numerically, before any non-numeric ones."""
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def instantiate(settings: ModelSettings, storage: StorageSettings | None = None) -> Model:
    """Build and load the model an entry describes, with the config's metadata on top.

    A remote `uri:` is fetched first, into the cache `storage` names. Raises whatever the
    runtime raises (`StorageError` for a fetch): the caller records it as the model's failure.
    """
    if settings.error:
        raise ValueError(settings.error)
    settings = localized(settings, storage or StorageSettings())
    if settings.runtime == "python":
        if settings.path is not None and str(settings.path) not in sys.path:
            sys.path.insert(0, str(settings.path))
        cls = import_class(settings.class_path or "")
    else:
        cls = import_class(RUNTIME_CLASSES[settings.runtime])
    model = cls(settings)
    model.load()
    if settings.inputs is not None:
        model.inputs = list(settings.inputs)
    if settings.outputs is not None:
        model.outputs = list(settings.outputs)
        declared = {spec.name for spec in model.outputs}
        if model.default_outputs is not None:
            model.default_outputs = [n for n in model.default_outputs if n in declared] or None
    if settings.features is not None:
        model.features = list(settings.features)
    if settings.inputs is not None or settings.outputs is not None:
        model.check_declared()
    return model


class ModelManager:
    """Mounts the models of a `Settings` and answers which version serves a request.

    The models are the `models:` entries and what the `repositories:` hold when the manager is
    made. `rescan` lists the models a repository gained since (not loaded); `prepare` (and so
    `load`) reads a repository model's versions again before loading them.
    """

    def __init__(self, settings: Settings) -> None:
        self._lock = threading.RLock()
        self._entries: dict[str, dict[str, ModelEntry]] = {}
        self._configured: dict[str, list[ModelSettings]] = {}
        self._repositories: tuple[RepositorySettings, ...] = settings.repositories
        self._storage = settings.server.storage  # where remote `uri:`s are fetched to
        #: Called with each model that stops serving (reloaded, unloaded, or no longer
        #: configured) once lookups no longer return it: the data plane closes its batcher.
        self.on_retire: list[Callable[[Model], None]] = []
        for model_settings in settings.models:
            self._configured.setdefault(model_settings.name, []).append(model_settings)
        for model_settings in self._scan():
            self._configured.setdefault(model_settings.name, []).append(model_settings)
        for model_settings in (s for versions in self._configured.values() for s in versions):
            if model_settings.load_at_start:
                self._set(ModelEntry(model_settings, ModelState.LOADING, "not loaded yet"))
            else:
                self._set(_not_loaded(model_settings))

    def load_all(self) -> None:
        """Load every configured model; a failure is logged and recorded, never raised."""
        for settings_list in list(self._configured.values()):
            for model_settings in settings_list:
                if model_settings.load_at_start:
                    self._load_one(model_settings)

    def _scan(self, quiet: bool = False) -> list[ModelSettings]:
        """What the repositories hold now, less the models `models:` or an earlier repository
        already names (each such clash is logged, once at start)."""
        if not self._repositories:
            return []
        found = scan(self._repositories)
        taken = {name for name, versions in self._configured.items() if _from_config(versions)}
        owner: dict[str, RepositorySettings] = {}
        seen: set[tuple[str, str]] = set()
        models = []
        for settings in found.models:
            repository = settings.repository
            assert repository is not None  # scan sets it on every entry
            key = (settings.name, settings.version)
            if key in seen and settings.error is None:
                message = f"model '{key[0]}' version '{key[1]}' is in the repository twice"
                settings = replace(settings, error=message)
            seen.add(key)
            if settings.name in taken or owner.setdefault(settings.name, repository) != repository:
                if not quiet:
                    log.error(
                        "%s repository '%s': model '%s' is skipped: another source already "
                        "has a model of that name",
                        repository.format,
                        repository.path,
                        settings.name,
                    )
                continue
            models.append(settings)
        if not quiet:
            for problem in found.problems:
                log.error("%s", problem)
        return models

    def rescan(self) -> None:
        """Read the repositories again and list the models they gained, not loaded yet.

        As Triton's repository index does: what serves does not change; a new model serves
        once `load` is asked for it (server-wide), and a broken one is listed with its reason.
        """
        with self._lock:
            known = set(self._configured)
            for settings in self._scan(quiet=True):
                if settings.name not in known:
                    self._configured.setdefault(settings.name, []).append(settings)
            for name, versions in self._configured.items():
                for settings in versions:
                    if name not in self._entries or settings.version not in self._entries[name]:
                        self._set(
                            _not_loaded(settings)
                            if not settings.error
                            else _instantiate_entry(settings, self._storage)
                        )

    def require(self, name: str) -> None:
        """Raise `ModelNotFound` unless `name` is configured, or a repository now holds it."""
        with self._lock:
            if name not in self._entries:
                self.rescan()
            self._versions(name)

    def _set(self, entry: ModelEntry) -> None:
        with self._lock:
            versions = dict(self._entries.get(entry.name, {}))
            previous = versions.get(entry.version)
            versions[entry.version] = entry
            ordered = dict(sorted(versions.items(), key=lambda item: version_key(item[0])))
            self._entries = {**self._entries, entry.name: ordered}
            self._retire(previous, entry)

    def _retire(self, old: ModelEntry | None, new: ModelEntry) -> None:
        """The one place a model leaves service: tell `on_retire` about it."""
        if old is None or old.model is None or new.model is old.model:
            return
        for callback in self.on_retire:
            callback(old.model)

    def _load_one(self, settings: ModelSettings) -> ModelEntry:
        entry = _instantiate_entry(settings, self._storage)
        self._install(entry)
        return entry

    def _install(self, entry: ModelEntry) -> None:
        self._set(entry)
        if entry.ready:
            log.info("model '%s' version '%s' is ready", entry.name, entry.version)

    # -- lookups ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every configured model name, in configuration order."""
        return list(self._entries)

    def has(self, name: str) -> bool:
        """Whether `name` is configured: one dict lookup, for per-request checks (metric labels)."""
        return name in self._entries

    def entries(self, name: str | None = None) -> list[ModelEntry]:
        """Every version entry (of one model, or of all), oldest version first."""
        entries = self._entries
        if name is not None:
            return list(self._versions(name).values())
        return [entry for versions in entries.values() for entry in versions.values()]

    def _versions(self, name: str) -> dict[str, ModelEntry]:
        versions = self._entries.get(name)
        if not versions:
            raise ModelNotFound(f"model '{name}' not found")
        return versions

    def entry(self, name: str, version: str | None = None) -> ModelEntry:
        """The entry serving `name` at `version` (None or "" = the highest configured version).

        Raises `ModelNotFound` for an unknown name or version.
        """
        versions = self._versions(name)
        if not version:
            return next(reversed(versions.values()))
        try:
            return versions[version]
        except KeyError:
            raise ModelNotFound(f"model '{name}' version '{version}' not found") from None

    def get(self, name: str, version: str | None = None) -> Model:
        """The ready model that serves a request.

        Raises `ModelNotFound`, or `ModelUnavailable` when it is loading, unloaded or failed.
        """
        entry = self.entry(name, version)
        if entry.model is None or entry.state is not ModelState.READY:
            raise ModelUnavailable(
                f"model '{name}' version '{entry.version}' is not ready"
                + (f" ({entry.reason})" if entry.reason else "")
            )
        return entry.model

    def ready(self) -> bool:
        """True once no model is loading: failed models are reported per model, not here."""
        return all(entry.state is not ModelState.LOADING for entry in self.entries())

    # -- repository control ---------------------------------------------------------------

    def load(self, name: str) -> list[ModelEntry]:
        """Load, or reload, every configured version of `name` (repository extension).

        All or nothing: the new versions serve only once every one of them has loaded; when
        one fails, the versions in service keep serving (as Triton keeps the previous model).
        Raises `ModelNotFound` for a name the configuration does not have, and
        `ModelUnavailable` when a version fails to load.
        """
        with self._lock:
            prepared = self.prepare(name)
            if prepared.failure:
                raise ModelUnavailable(prepared.failure)
            return self.commit(prepared)

    def prepare(self, name: str) -> Prepared:
        """Load every configured version of `name` aside, without serving them yet.

        A version that fails is logged and recorded in the result. Raises `ModelNotFound` for a
        name the configuration does not have.
        """
        with self._lock:
            if not _from_config(self._configured.get(name, [])):
                self._reread(name)
            settings_list = self._configured.get(name)
            if not settings_list:
                raise ModelNotFound(f"model '{name}' not found")
            return Prepared(
                name, tuple(_instantiate_entry(s, self._storage) for s in settings_list)
            )

    def _reread(self, name: str) -> None:
        """Replace a repository model's versions by what its repository holds now.

        Raises `ModelNotFound` when no repository holds it (any more).
        """
        versions = [settings for settings in self._scan(quiet=True) if settings.name == name]
        if not versions:
            gone = " any more" if name in self._configured else ""
            raise ModelNotFound(f"model '{name}' not found in the repositories{gone}")
        self._configured[name] = versions

    def commit(self, prepared: Prepared) -> list[ModelEntry]:
        """Serve the versions of `prepared` in place of those in service; return them.

        A version the configuration no longer has (a config change came between) is skipped.
        """
        with self._lock:
            configured = self._configured.get(prepared.name, [])
            entries = [entry for entry in prepared.entries if entry.settings in configured]
            for entry in entries:
                self._install(entry)
            if not _from_config(configured):  # versions its repository no longer serves go
                self._drop_versions(prepared.name, {s.version for s in configured})
            return entries

    def _drop_versions(self, name: str, kept: set[str]) -> None:
        versions = self._entries.get(name, {})
        if all(version in kept for version in versions):
            return
        remaining = {v: entry for v, entry in versions.items() if v in kept}
        self._entries = {**self._entries, name: remaining}
        for version, entry in versions.items():
            if version not in kept:
                log.info("model '%s' version '%s' is no longer served", name, version)
                self._retire(entry, ModelEntry(entry.settings, ModelState.UNAVAILABLE))

    def check_loaded(self, name: str) -> None:
        """Raise what `load` would for `name`'s versions as they are, without loading again.

        A worker that mounted a model at start reports on it this way when the desired state
        says "loaded". Raises `ModelNotFound` or `ModelUnavailable`.
        """
        failure = _failure(name, self.entries(name))
        if failure:
            raise ModelUnavailable(failure)

    def unload(self, name: str) -> None:
        """Unload every version of `name`; requests then get 503 until it is loaded again.

        Raises `ModelNotFound` for an unknown name.
        """
        with self._lock:
            for entry in self._versions(name).values():
                self._set(ModelEntry(entry.settings, ModelState.UNAVAILABLE, "unloaded"))


def _from_config(versions: Iterable[ModelSettings]) -> bool:
    """Whether these are the versions of a `models:` entry (empty: of no source yet)."""
    return any(settings.repository is None for settings in versions)


def _not_loaded(settings: ModelSettings) -> ModelEntry:
    """The entry of a repository model listed but not loaded (yet)."""
    return ModelEntry(
        settings,
        ModelState.UNAVAILABLE,
        f"not loaded: POST /v2/repository/models/{settings.name}/load loads it",
    )


def _instantiate_entry(settings: ModelSettings, storage: StorageSettings) -> ModelEntry:
    """A READY entry with the loaded model, or an UNAVAILABLE one saying why it failed (logged)."""
    try:
        model = instantiate(settings, storage)
    except StorageError as exc:  # its message is the whole story: no traceback in the log
        log.error(
            "model '%s' version '%s' failed to load: %s", settings.name, settings.version, exc
        )
        return ModelEntry(settings, ModelState.UNAVAILABLE, f"failed to load: storage {exc}")
    except Exception as exc:  # any failure of user code marks the model, never the server
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.error(
            "model '%s' version '%s' failed to load: %s",
            settings.name,
            settings.version,
            reason,
            exc_info=not settings.error,
        )
        return ModelEntry(settings, ModelState.UNAVAILABLE, f"failed to load: {reason}")
    return ModelEntry(settings, ModelState.READY, "", model)


def _failure(name: str, entries: Iterable[ModelEntry]) -> str:
    """The message of the first version among `entries` that is not ready ("" if none)."""
    failed = next((entry for entry in entries if not entry.ready), None)
    return "" if failed is None else f"model '{name}' version '{failed.version}' {failed.reason}"
