"""The Flask class Modelport's factory builds: Flask, minus a check it repeats per request.

Measured: with plain `Flask`, W1 (iris [1,4] REST JSON, c=8) served 3.4 % fewer requests
(1,264 vs 1,309 req/s, 12 interleaved rounds of 2 s, bench/). `ensure_sync` is public API but
its calls are Flask 3.1.3's internals (`WRITTEN_FOR`); the pin test fails on any other version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

#: The library version this override was written for (tests/app/test_library_pins.py).
WRITTEN_FOR = ("flask", "3.1.3")


class ModelportFlask(Flask):
    """Flask with `ensure_sync` answered once per function instead of once per call.

    Flask asks `inspect.iscoroutinefunction` about every hook and view on every request: three
    to four times per inference. A function's answer never changes, so it is remembered.
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
