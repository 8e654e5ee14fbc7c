"""Models in other servers' repository layouts (`repositories:`), read as Modelport entries.

Each reader turns one folder into model entries (`ModelSettings`), as if the config file had
listed them under `models:`: a Triton model repository (`triton`), an MLServer one (`mlserver`),
or folders of MLflow models (`mlflow`). A broken model (a config.pbtxt that does not parse, a
backend Modelport does not run, a missing file) becomes an entry with its `error` set, so it is
listed with its reason and the others serve (DESIGN §2). Nothing is loaded here: the manager
loads what the scan found, and scans again when the repository index or a load asks for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from app.repositories import mlflow_folders, mlserver, triton
from app.repositories.refused import Refused
from app.storage import StorageError, fetch
from config.settings import ModelSettings, RepositorySettings, file_path, is_remote

log = logging.getLogger("modelport.repositories")

#: `format:` -> the reader of that layout.
READERS: dict[str, Callable[[Path], list[ModelSettings]]] = {
    "triton": triton.read,
    "mlserver": mlserver.read,
    "mlflow": mlflow_folders.read,
}


@dataclass(frozen=True)
class Scan:
    """What the repositories hold now: model entries (broken ones too), and the repositories
    that could not be read at all (a missing folder), one line each."""

    models: tuple[ModelSettings, ...]
    problems: tuple[str, ...]


def local_folder(repository: RepositorySettings) -> Path:
    """The local folder a repository's `path:` names: the one place a path becomes a folder.

    Relative paths are relative to the config file's folder, as every path of the config is;
    `file://` is a local path; s3://, gs:// and http(s):// are fetched into the storage cache
    (a prefix as a folder, or an archive unpacked), once and again only when they change.
    Raises `StorageError` for a remote path that cannot be fetched.
    """
    if is_remote(repository.path):
        return fetch(repository.path, repository.storage)
    path = Path(file_path(repository.path)).expanduser()
    return path if path.is_absolute() else (repository.base / path).resolve()


def scan(repositories: Iterable[RepositorySettings]) -> Scan:
    """Read every repository as it is on disk now; never raises for what a folder holds.

    Each entry remembers its repository (`ModelSettings.repository`), so a later scan can tell
    which models a repository still has.
    """
    models: list[ModelSettings] = []
    problems: list[str] = []
    for repository in repositories:
        try:
            folder = local_folder(repository)
        except StorageError as exc:
            problems.append(f"{repository.format} repository: storage {exc}")
            continue
        if not folder.is_dir():
            problems.append(
                f"{repository.format} repository '{repository.path}': {folder} is not a folder"
            )
            continue
        try:
            found = READERS[repository.format](folder)
        except (OSError, Refused) as exc:  # the repository is skipped, not the server
            problems.append(f"{repository.format} repository '{repository.path}': {exc}")
            continue
        except Exception as exc:  # a reader's bug on odd content must not stop the server
            log.exception("reading %s repository '%s' failed", repository.format, folder)
            problems.append(
                f"{repository.format} repository '{repository.path}' could not be read: "
                f"{type(exc).__name__}: {exc}"
            )
            continue
        models.extend(replace(model, repository=repository) for model in found)
    return Scan(tuple(models), tuple(problems))
