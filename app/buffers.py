"""Byte buffers that are about to be overwritten whole, allocated without zero-filling them.

`bytearray(n)` writes n zero bytes first: for a 4 MiB request body about to be received into
it that is 150 us (measured), a tenth of a binary 4 MiB inference request on the httptools
worker. CPython's `PyByteArray_FromStringAndSize(NULL, n)` allocates the same object without
touching its bytes; through `ctypes.pythonapi` the call costs well under a microsecond.
"""

from __future__ import annotations

import ctypes

#: A request body from this size is received into an unfilled bytearray where its input can
#: (`readinto`); a smaller one is mostly in the worker's buffer already, where `read` hands it
#: over uncopied. Modelport (blueprints.common) and the bench's bare WSGI ceiling both use it.
READINTO_BYTES = 1024 * 1024

_from_string_and_size = ctypes.pythonapi.PyByteArray_FromStringAndSize
_from_string_and_size.restype = ctypes.py_object
_from_string_and_size.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)


def unfilled_bytearray(size: int) -> bytearray:
    """A bytearray of `size` bytes whose contents are whatever the allocator had there.

    Only for a buffer every byte of which is written before it is read (`readinto` that is
    checked to have filled it); anything else would read stale memory of this process.
    """
    if size < 0:
        raise ValueError(f"a buffer cannot have {size} bytes")
    buffer: bytearray = _from_string_and_size(None, size)
    return buffer
