"""Storage URIs: models and repositories kept in object storage or on an HTTP server.

A model `uri:` or a repository `path:` may be `s3://`, `gs://`, `http(s)://` (fetched here into
a local cache, once per server and again only when the remote changed) besides a local path or
`file://` (read in place; config/settings.py resolves those). Everything past this package sees
a local path, so the runtimes and repository readers never know where a model came from.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from app.storage.cache import cache_root, fetch
from app.storage.remote import StorageError
from config.settings import ModelSettings, Settings, StorageSettings

__all__ = ["StorageError", "cache_root", "fetch", "localized", "prefetch"]
log = logging.getLogger("modelport.storage")


def localized(settings: ModelSettings, storage: StorageSettings) -> ModelSettings:
    """The entry with its remote `uri:` fetched: `uri` is then the local copy.

    Raises `StorageError`; an entry without a remote URI comes back as it is.
    """
    if settings.storage_uri is None:
        return settings
    local: Path = fetch(settings.storage_uri, storage)
    return replace(settings, uri=local)


def prefetch(settings: Settings) -> None:
    """Fetch every remote `uri:` of `models:` now; never raises.

    The gunicorn master calls it before it forks, so the workers find the cache current and
    only ask the remote whether it changed: a large model is downloaded once, and never inside
    a worker, which the master would kill after `timeout` seconds of loading. What fails here
    is left to each worker's load, which reports it as that model's reason.
    """
    for model in settings.models:
        if model.storage_uri is None or model.error:
            continue
        try:
            fetch(model.storage_uri, settings.server.storage)
        except StorageError as exc:
            log.error("model '%s' version '%s': storage %s", model.name, model.version, exc)
