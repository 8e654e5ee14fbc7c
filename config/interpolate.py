"""`${VAR}` and `${VAR:-default}` in configuration strings, read from a given environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class InterpolationError(ValueError):
    """A `${VAR}` names a variable that is not set and has no default."""


def interpolate(value: Any, environ: Mapping[str, str], path: str = "") -> Any:
    """Replace variables in every string of a parsed YAML tree; other values pass unchanged.

    A string that is exactly one `${VAR}` may become a number or boolean later, when the schema
    reads it (marshmallow accepts "8081" for an integer), so values stay strings here.
    """
    if isinstance(value, str):
        return _PATTERN.sub(lambda match: _lookup(match, environ, path), value)
    if isinstance(value, list):
        return [interpolate(item, environ, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {
            key: interpolate(item, environ, f"{path}.{key}" if path else str(key))
            for key, item in value.items()
        }
    return value


def _lookup(match: re.Match[str], environ: Mapping[str, str], path: str) -> str:
    name, default = match.group(1), match.group(2)
    if name in environ:
        return environ[name]
    if default is not None:
        return default
    raise InterpolationError(f"{path}: environment variable '{name}' is not set and has no default")
