"""The installed version of Modelport, as server metadata and the OpenAPI document report it."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("modelport")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
