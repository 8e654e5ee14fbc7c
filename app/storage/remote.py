"""What a storage URI holds, and copying it to a local folder, through fsspec.

s3:// goes through s3fs (the `s3` extra), gs:// through gcsfs (the `gcs` extra), http(s)://
through fsspec's own HTTP filesystem (aiohttp). Every failure becomes a `StorageError` whose
message says what happened in words a user acts on (not found, access denied, unreachable, too
big, timed out), never a library's traceback.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from config.settings import StorageSettings

#: fsspec protocol of each scheme Modelport fetches, and the extra that installs it.
_PROTOCOLS = {"s3": "s3", "gs": "gs", "gcs": "gs", "http": "http", "https": "https"}
_EXTRAS = {"s3": "s3fs (pip install 'modelport[s3]')", "gs": "gcsfs (pip install 'modelport[gcs]')"}
#: What identifies one version of an object, in the order asked: ETag-like tags first.
_TAGS = ("ETag", "etag", "md5Hash", "generation", "Last-Modified", "LastModified", "mtime")


class StorageError(Exception):
    """A storage URI could not be fetched; the message names the URI and the reason."""


@dataclass(frozen=True)
class RemoteFile:
    """One object to copy: its fsspec path, where it goes under the copy, size and tag."""

    path: str
    relative: str  # "" for a URI that names one file
    size: int | None
    tag: str


@dataclass(frozen=True)
class Listing:
    """What a URI holds now: one file, or every file under a folder (prefix)."""

    uri: str
    folder: bool
    files: tuple[RemoteFile, ...]

    def identity(self) -> list[list[Any]]:
        """What the cache marker keeps: the same identity means the same content."""
        return [[f.relative, f.size, f.tag] for f in self.files]

    @property
    def size(self) -> int:
        """Bytes the listing declares (files of unknown size count 0 until fetched)."""
        return sum(f.size or 0 for f in self.files)


class Remote:
    """One storage URI, opened through the filesystem its scheme names."""

    def __init__(
        self, uri: str, storage: StorageSettings, environ: Mapping[str, str] | None = None
    ) -> None:
        self.uri = uri
        self.storage = storage
        scheme = uri.split("://", 1)[0].lower()
        self.protocol = _PROTOCOLS[scheme]
        # fsspec paths: s3fs and gcsfs take `bucket/key`; the HTTP filesystem the whole URL.
        self.path = uri if self.protocol in ("http", "https") else uri.split("://", 1)[1]
        self.path = self.path.rstrip("/") or self.path
        self.fs = self._filesystem(os.environ if environ is None else environ)

    def _filesystem(self, environ: Mapping[str, str]) -> Any:
        import fsspec

        timeout = self.storage.timeout_s
        options: dict[str, Any] = {"skip_instance_cache": True}
        if self.protocol == "s3":
            endpoint = (
                self.storage.s3_endpoint_url
                or environ.get("AWS_ENDPOINT_URL_S3")
                or environ.get("AWS_ENDPOINT_URL")
            )
            options["endpoint_url"] = endpoint or None
            options["config_kwargs"] = {
                "connect_timeout": timeout,
                "read_timeout": timeout,
                "retries": {"max_attempts": 2},  # an unreachable store fails in seconds
            }
        elif self.protocol == "gs":
            options["requests_timeout"] = timeout  # each request's (aiohttp's total)
        else:
            import aiohttp

            options["client_kwargs"] = {
                "timeout": aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout)
            }
        try:
            with warnings.catch_warnings():
                # google-api-core warns at import about grpcio < 1.83, which tritonclient pins.
                warnings.simplefilter("ignore", FutureWarning)
                if self.protocol == "gs":
                    # gcsfs's default class asks a gRPC control plane for the bucket's layout:
                    # a gRPC channel made in the gunicorn master before it forks would break the
                    # workers' own gRPC. The JSON API over aiohttp is all a download needs.
                    from gcsfs.core import GCSFileSystem

                    return GCSFileSystem(**options)
                return fsspec.filesystem(self.protocol, **options)
        except ImportError:
            extra = _EXTRAS.get(self.protocol, "aiohttp")
            raise StorageError(f"'{self.uri}': {self.protocol}:// needs {extra}") from None

    def listing(self) -> Listing:
        """What the URI holds now (one file, or a folder's files), from the store's metadata.

        Raises `StorageError` (not found, access denied, unreachable, timed out).
        """
        try:
            info = self.fs.info(self.path)
            if info.get("type") != "directory":
                return Listing(self.uri, False, (self._file(self.path, "", info),))
            found = self.fs.find(self.path, detail=True)
        except Exception as exc:
            raise self.error(exc) from None
        root = self.path.rstrip("/") + "/"
        files = tuple(
            self._file(path, path[len(root) :], detail)
            for path, detail in sorted(found.items())
            if detail.get("type") != "directory" and path.startswith(root)
        )
        if not files:
            raise StorageError(f"'{self.uri}': not found (an empty folder)")
        return Listing(self.uri, True, files)

    def _file(self, path: str, relative: str, info: Mapping[str, Any]) -> RemoteFile:
        size = info.get("size")
        tag = next((str(info[key]) for key in _TAGS if info.get(key)), "")
        return RemoteFile(path, relative, int(size) if size is not None else None, tag)

    def copy(self, listing: Listing, target: Path) -> int:
        """Copy every file of `listing` under `target` (a file, or a folder); return the bytes.

        Bounded by `max_bytes` (checked before and while copying: a server may not say the
        size, or say it wrong) and by `timeout_s` for the whole copy. Raises `StorageError`.
        """
        limit = self.storage.max_bytes
        self.check_size(listing)
        guard = _Guard(self.uri, limit, time.monotonic() + self.storage.timeout_s, self.storage)
        for remote_file in listing.files:
            local = target / remote_file.relative if listing.folder else target
            if not _inside(target, local):
                raise StorageError(f"'{self.uri}': object '{remote_file.path}' escapes the folder")
            local.parent.mkdir(parents=True, exist_ok=True)
            extra = {"max_concurrency": 1} if self.protocol == "s3" else {}  # one GET per object
            try:
                self.fs.get_file(remote_file.path, str(local), callback=guard, **extra)
            except StorageError:
                raise
            except Exception as exc:
                raise self.error(exc) from None
            guard.done_file()
        return guard.total

    def check_size(self, listing: Listing) -> None:
        """Raise `StorageError` when the listing declares more than `max_bytes`."""
        limit = self.storage.max_bytes
        if listing.size > limit:
            raise StorageError(
                f"'{self.uri}': too big ({listing.size} bytes; server.storage.max_bytes is {limit})"
            )

    def error(self, exc: BaseException) -> StorageError:
        """A library's exception as the one-line reason a user reads."""
        return StorageError(f"'{self.uri}': {_reason(exc, self.storage.timeout_s)}")


def _reason(exc: BaseException, timeout: float) -> str:
    # fsspec's HTTP filesystem raises FileNotFoundError for any failed HEAD and GET, from the
    # aiohttp error that tells a 403 or a timeout from a 404: that one says why.
    cause = exc.__cause__
    if isinstance(exc, FileNotFoundError) and cause is not None:
        reason = _reason(cause, timeout)
        return "not found" if reason.startswith(type(cause).__name__) else reason
    status = getattr(exc, "status", None)  # aiohttp's ClientResponseError
    name = type(exc).__name__
    if isinstance(exc, PermissionError) or status in (401, 403):
        return "access denied (check the credentials: AWS_*, GOOGLE_APPLICATION_CREDENTIALS)"
    if isinstance(exc, FileNotFoundError) or status == 404:
        return "not found"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError) or "Timeout" in name:
        return f"timed out after {timeout:g} s (server.storage.timeout_s)"
    if isinstance(status, int):
        return f"the server answered HTTP {status}"
    if "Connect" in name or isinstance(exc, ConnectionError):
        return f"unreachable ({exc})"
    return f"{name}: {exc}" if str(exc) else name


def _inside(folder: Path, path: Path) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(folder) + os.sep) or path == folder


class _Guard:
    """fsspec's progress callback, used to stop a copy that grows too big or takes too long."""

    def __init__(self, uri: str, limit: int, deadline: float, storage: StorageSettings) -> None:
        self.uri, self.limit, self.deadline, self.storage = uri, limit, deadline, storage
        self.total = 0  # bytes of the files already copied
        self.value = 0  # bytes of the file being copied

    def set_size(self, size: int | None) -> None:
        """fsspec tells the size it expects (unused: the listing said it)."""

    def absolute_update(self, value: int) -> None:
        """fsspec's progress: `value` bytes of this file so far."""
        self.value = value
        self._check()

    def relative_update(self, inc: int | None = 1) -> None:
        """fsspec's progress: `inc` more bytes of this file."""
        self.value += inc or 0
        self._check()

    def branched(self, path_1: str, path_2: str, **kwargs: Any) -> _Guard:
        """fsspec asks for a callback per file of a folder copy: the same guard counts all."""
        return self

    def call(self, *args: Any, **kwargs: Any) -> None:
        """fsspec's hook, called on progress; the checks run in the updates."""

    def done_file(self) -> None:
        """One file is copied: its bytes join the total."""
        self.total += self.value
        self.value = 0

    def _check(self) -> None:
        if self.total + self.value > self.limit:
            raise StorageError(
                f"'{self.uri}': too big (more than server.storage.max_bytes, {self.limit} bytes)"
            )
        if time.monotonic() > self.deadline:
            raise StorageError(
                f"'{self.uri}': timed out after {self.storage.timeout_s:g} s "
                "(server.storage.timeout_s)"
            )


def copy_name(uri: str) -> str:
    """The name the local copy keeps: the URI's last path part (runtimes read its suffix)."""
    path = uri.split("://", 1)[1].split("?", 1)[0].rstrip("/")
    return PurePosixPath(path).name or "model"
