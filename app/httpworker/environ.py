"""The WSGI environ of a parsed request, as gunicorn's would be for what Modelport reads.

A request's target (origin or absolute form, percent-decoded path), its peer and local
addresses, and its headers as `HTTP_*` keys: repeated ones joined with commas, names with an
underscore dropped (gunicorn's `header_map = drop`), `CONTENT_LENGTH` dropped from a chunked
one. Header names map to keys through a bounded table, so a common header costs one lookup.

Written for httptools 0.9.0 (`WRITTEN_FOR`; the pin test fails on another httptools): its
`parse_url`, for a target in absolute form.
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools

from app.httpworker.body import Body
from app.httpworker.connection import Connection, Request

#: The library versions this module was written and measured for (tests/app/test_library_pins.py).
WRITTEN_FOR = ("httptools", "0.9.0")
_HEADER_KEYS: dict[bytes, str | None] = {}


def _environ_key(name: bytes) -> str | None:
    """The environ key of a header name (None: dropped), remembered per spelling."""
    key = _HEADER_KEYS.get(name)
    if key is None and name not in _HEADER_KEYS:
        text = name.decode("latin-1")
        if "_" in text:
            key = None
        else:
            upper = text.upper().replace("-", "_")
            key = upper if upper in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + upper
        if len(_HEADER_KEYS) < 4096:  # clients choose names: keep the table bounded
            _HEADER_KEYS[name] = key
    return key


def wsgi_environ(
    connection: Connection, request: Request, body: Body, multiprocess: bool
) -> dict[str, Any]:
    """The environ the app is called with; `multiprocess`: whether gunicorn runs several workers."""
    path, _, query = request.url.partition(b"?")
    if not path.startswith(b"/"):  # absolute form: http://host/path
        parsed = httptools.parse_url(request.url)
        path, query = parsed.path or b"/", parsed.query or b""
    local, peer = connection.local, connection.peer
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "RAW_URI": request.url.decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{request.version}",
        "SERVER_NAME": str(local[0]) if isinstance(local, tuple) else "localhost",
        "SERVER_PORT": str(local[1]) if isinstance(local, tuple) else "80",
        "REMOTE_ADDR": str(peer[0]) if isinstance(peer, tuple) else "",
        "REMOTE_PORT": str(peer[1]) if isinstance(peer, tuple) else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "gunicorn.socket": connection.sock,
    }
    for name, value in request.headers:
        key = _environ_key(name)
        if key is None:
            continue
        text = value.decode("latin-1")
        if key in environ:
            text = f"{environ[key]},{text}"
        environ[key] = text
    if request.chunked:
        environ.pop("CONTENT_LENGTH", None)
    return environ
