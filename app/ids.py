"""Request ids: uuid4-shaped, without the cost of `uuid.uuid4()` on every request.

`uuid.uuid4()` reads 16 bytes from the kernel and validates them through `uuid.UUID`: about
7 µs, twice per request without a client id (the log id and the OIP response id), a few per cent
of an iris request (bench/, cProfile). An id only has to be unique enough to find a request in
the logs, not unpredictable, so it comes from `random.getrandbits`, which CPython reseeds in every
forked child (each gunicorn worker draws its own sequence).
"""

from __future__ import annotations

import random

# Version 4 and the RFC 4122 variant, in the 128-bit integer of a UUID.
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (0x4000 << 64) | (0x8000 << 48)


def hex_id() -> str:
    """32 lowercase hex digits, laid out like `uuid.uuid4().hex`."""
    return "%032x" % ((random.getrandbits(128) & _CLEAR) | _SET)


def uuid_id() -> str:
    """A uuid4-shaped string, like `str(uuid.uuid4())`."""
    h = hex_id()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
