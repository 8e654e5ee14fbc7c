"""A stable slot number per worker, so a replaced worker takes over its predecessor's identity.

An MQTT broker keeps a persistent session, with its unacknowledged messages, under a client
id, and sends them again only to a client that comes back with that id. A worker's pid changes
when gunicorn replaces it, so each worker holds an exclusive lock on one slot file instead:
the kernel drops a dead worker's lock, and its replacement takes the lowest free slot, which
is the dead one's whenever the others still live.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class Slot:
    """An exclusive, process-lifetime claim on the lowest free slot number under `folder`."""

    def __init__(self, folder: Path, name: str, limit: int = 1024) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for number in range(limit):
            handle = open(folder / f"{name}.{number}.lock", "a")  # noqa: SIM115 - held for life
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self.number = number
            self._handle: IO[str] | None = handle
            os.set_inheritable(handle.fileno(), False)
            return
        raise RuntimeError(f"no free slot among {limit} under {folder}")

    def release(self) -> None:
        """Give the slot back (a dead process gives it back by dying)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
