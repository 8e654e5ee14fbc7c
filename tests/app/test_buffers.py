"""`app.buffers.unfilled_bytearray`: a real bytearray of the asked size, writable whole."""

from __future__ import annotations

import sys

import pytest

from app.buffers import unfilled_bytearray


@pytest.mark.parametrize("size", [0, 1, 4096, 4 * 1024 * 1024])
def test_it_is_a_bytearray_of_the_size_that_takes_writes(size: int) -> None:
    buffer = unfilled_bytearray(size)
    assert type(buffer) is bytearray and len(buffer) == size
    buffer[:] = b"\x07" * size
    assert buffer == b"\x07" * size
    buffer.extend(b"ab")  # an ordinary bytearray: it grows, and is freed by its refcount
    assert len(buffer) == size + 2 and sys.getrefcount(buffer) == 2


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError):
        unfilled_bytearray(-1)
