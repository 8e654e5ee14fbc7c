"""The Flask class Modelport's factory builds: Flask, minus a check it repeats per request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask


class ModelportFlask(Flask):
    """Flask with `ensure_sync` answered once per function instead of once per call.

    Flask asks `inspect.iscoroutinefunction` about every hook and view on every request: three
    to four times per inference, 3 % of an iris request in the app (bench/, cProfile). A
    function's answer never changes, so it is remembered.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_functions: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """`Flask.ensure_sync`, remembered per function."""
        try:
            return self._sync_functions[func]
        except KeyError:
            sync = self._sync_functions[func] = super().ensure_sync(func)
            return sync
        except TypeError:  # an unhashable callable: ask every time
            return super().ensure_sync(func)
