"""The local cache of fetched storage URIs: one copy per URI, fetched once per server.

Each URI has a slot folder, `<cache>/<digest>-<name>/`, holding the copy (`<name>`: the file, or
the folder), `marker.json` (what the remote held when it was copied: sizes and ETags) and
`.lock`. A process that fetches takes the slot's `fcntl` lock, so of the gunicorn master and its
workers one downloads and the others wait, then find the marker matching and reuse the copy;
a restart does the same, so an unchanged remote is never downloaded again. The copy is made
aside and renamed into place before the marker is written: a fetch that dies half way leaves
no marker, and the next one starts over.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tarfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from app.storage.remote import Listing, Remote, StorageError, copy_name
from config.settings import StorageSettings

log = logging.getLogger("modelport.storage")

#: An object with one of these suffixes is unpacked, as KServe's storage initializer does: a
#: folder (an MLflow model, a repository) can then be served from plain HTTP.
ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")
_MARKER = "marker.json"


def cache_root(storage: StorageSettings, environ: Mapping[str, str] | None = None) -> Path:
    """The cache folder: `server.storage.cache_dir`, else $XDG_CACHE_HOME/modelport."""
    if storage.cache_dir is not None:
        return storage.cache_dir
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelport"


def fetch(uri: str, storage: StorageSettings) -> Path:
    """The local copy of `uri` (a file or a folder), downloaded only when the remote changed.

    Asks the remote what it holds now (a HEAD or a listing, never a download) and compares it
    with the marker of the cached copy. Raises `StorageError` with the reason: not found,
    access denied, unreachable, too big, timed out.
    """
    slot = cache_root(storage) / _slot_name(uri)
    try:
        slot.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"'{uri}': the cache folder cannot be made: {exc}") from None
    with _locked(slot / ".lock"):
        remote = Remote(uri, storage)
        listing = remote.listing()
        name = _unpacked_name(copy_name(uri)) if _archive(listing) else copy_name(uri)
        copy = slot / name
        remote.check_size(listing)  # the limit holds for a copy made under another one too
        if copy.exists() and _marker(slot) == _identity(listing):
            log.info("storage '%s': the cached copy is current, reused", uri)
            return copy
        started = time.monotonic()
        size = _download(remote, listing, slot, name)
        log.info(
            "storage '%s': downloaded %d bytes in %.1f s into %s",
            uri,
            size,
            time.monotonic() - started,
            copy,
        )
        return copy


def _download(remote: Remote, listing: Listing, slot: Path, name: str) -> int:
    """Copy aside, unpack an archive, move into place, then write the marker."""
    (slot / _MARKER).unlink(missing_ok=True)
    for stale in slot.glob(".partial-*"):  # of a fetch that died: we hold the lock now
        shutil.rmtree(stale, ignore_errors=True)
    partial = slot / f".partial-{os.getpid()}"
    partial.mkdir()
    try:
        if _archive(listing):
            archive = partial / copy_name(listing.uri)
            size = remote.copy(listing, archive)
            _unpack(listing.uri, archive, partial / name, remote.storage.max_bytes)
            archive.unlink()
        else:
            size = remote.copy(listing, partial / name)
        copy = slot / name
        if copy.is_dir():
            shutil.rmtree(copy)
        elif copy.exists():
            copy.unlink()
        (partial / name).rename(copy)
        (slot / _MARKER).write_text(json.dumps(_identity(listing)), encoding="utf-8")
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return size


def _unpack(uri: str, archive: Path, folder: Path, limit: int) -> None:
    """Unpack `archive` into `folder`; what it holds counts against `max_bytes` too, so a
    small archive of a huge file is refused before it fills the disk."""
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                _check_unpacked(uri, sum(i.file_size for i in zipped.infolist()), limit)
                zipped.extractall(folder)  # zipfile keeps members inside the folder
        else:
            with tarfile.open(archive) as tarred:
                _check_unpacked(uri, sum(m.size for m in tarred.getmembers()), limit)
                tarred.extractall(folder, filter="data")  # no links out, no absolute paths
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise StorageError(f"'{uri}': the archive cannot be unpacked: {exc}") from None


def _check_unpacked(uri: str, size: int, limit: int) -> None:
    if size > limit:
        raise StorageError(
            f"'{uri}': too big once unpacked ({size} bytes; server.storage.max_bytes is {limit})"
        )


def _archive(listing: Listing) -> bool:
    return not listing.folder and copy_name(listing.uri).endswith(ARCHIVES)


def _unpacked_name(name: str) -> str:
    for suffix in ARCHIVES:
        if name.endswith(suffix):
            return name[: -len(suffix)] or "model"
    return name


def _identity(listing: Listing) -> dict[str, object]:
    return {"uri": listing.uri, "folder": listing.folder, "files": listing.identity()}


def _marker(slot: Path) -> object:
    try:
        return json.loads((slot / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _slot_name(uri: str) -> str:
    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return f"{digest}-{copy_name(uri)}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the slot's lock: one process fetches, the others wait (the kernel frees it when a
    holder dies)."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
