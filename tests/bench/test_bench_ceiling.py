"""The bare WSGI ceiling reads a body the way Modelport does on each kind of `wsgi.input`."""

from __future__ import annotations

import io
from typing import Any

from app.buffers import READINTO_BYTES
from bench import ceilings


class ReadOnly:
    """An input with `read` only, as gunicorn's gthread worker gives."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.calls: list[str] = []

    def read(self, size: int = -1) -> bytes:
        self.calls.append("read")
        return self._data.read(size)


class WithReadinto(ReadOnly):
    """An input with `readinto` too, as Modelport's httptools worker gives."""

    def readinto(self, buffer: Any) -> int:
        self.calls.append("readinto")
        return self._data.readinto(buffer)


def serve(stream: ReadOnly, length: int) -> bytes:
    statuses: list[str] = []
    environ = {"CONTENT_LENGTH": str(length), "wsgi.input": stream}
    body = b"".join(ceilings.wsgi_app(environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["200 OK"]
    return body


def test_a_large_body_goes_by_readinto_where_the_input_has_it() -> None:
    size = READINTO_BYTES
    with_readinto, read_only = WithReadinto(bytes(size)), ReadOnly(bytes(size))
    assert serve(with_readinto, size) == ceilings.ANSWER == serve(read_only, size)
    assert with_readinto.calls == ["readinto"] and read_only.calls == ["read"]
    small = WithReadinto(b"{}")
    serve(small, 2)
    assert small.calls == ["read"]
