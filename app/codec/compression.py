"""HTTP body compression as tritonclient uses it: gzip and deflate, both ways (reference §4.7).

Requests are inflated in a stream with a running cap, so a small compressed body that expands past
`limits.max_request_bytes` is refused (413) after at most that many bytes, never by running out of
memory. Responses are compressed whole (JSON header and binary outputs together), which is what
tritonclient undoes before it splits the body at `Inference-Header-Content-Length`.
"""

from __future__ import annotations

import zlib

from app.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

#: What the server decodes, as the `Accept-Encoding` of a 415 answer says.
ACCEPTED = "gzip, deflate"

_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip container
_ZLIB_WBITS = zlib.MAX_WBITS  # RFC 1950 container: what "deflate" means on the wire
_RAW_WBITS = -zlib.MAX_WBITS  # bare RFC 1951 stream: what some clients send as "deflate"
_ALIASES = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate", "identity": "identity"}
# Compressed bytes fed to zlib per step: what zlib keeps as unconsumed input stays this small.
_STEP = 1 << 20
# Level 1 gives most of the size reduction of level 6 at several times the speed; a client asks
# for compression to save a slow link, not to wait for the server's CPU.
_LEVEL = 1


def content_codings(header: str | None) -> list[str]:
    """The codings of a `Content-Encoding` header, in the order they were applied.

    Raises `UnsupportedMediaType` (415) for a coding this server cannot undo.
    """
    codings: list[str] = []
    for token in (header or "").split(","):
        token = token.strip().lower()
        if not token:
            continue
        coding = _ALIASES.get(token)
        if coding is None:
            raise UnsupportedMediaType(
                f"content encoding '{token}' is not supported; use {ACCEPTED} or identity"
            )
        if coding != "identity":
            codings.append(coding)
    return codings


def decode_body(body: bytes | bytearray, codings: list[str], limit: int) -> bytes | bytearray:
    """Undo `codings` (from `content_codings`), never producing more than `limit` bytes.

    Raises `PayloadTooLarge` past the limit and `InvalidInput` for a corrupt or truncated stream.
    """
    for coding in reversed(codings):
        if not body:
            break
        if coding == "gzip":
            body = _inflate(body, _GZIP_WBITS, limit, "gzip")
        elif _looks_like_zlib(body):
            body = _inflate_zlib_or_raw(body, limit)
        else:
            body = _inflate(body, _RAW_WBITS, limit, "deflate")
    return body


def _inflate_zlib_or_raw(body: bytes | bytearray, limit: int) -> bytes:
    """zlib first; two bytes of raw deflate can pass the zlib header check by chance."""
    try:
        return _inflate(body, _ZLIB_WBITS, limit, "deflate")
    except InvalidInput as zlib_failure:
        try:
            return _inflate(body, _RAW_WBITS, limit, "deflate")
        except InvalidInput:
            raise zlib_failure from None


def _looks_like_zlib(data: bytes | bytearray) -> bool:
    """RFC 1950 header: method 8, window at most 32 KiB, and a check sum divisible by 31."""
    if len(data) < 2:
        return False
    cmf, flg = data[0], data[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0


def _inflate(data: bytes | bytearray, wbits: int, limit: int, name: str) -> bytes:
    view = memoryview(data)
    pieces: list[bytes] = []
    total = 0
    position = 0
    while position < len(view):  # a gzip body may hold several members, one after another
        inflater = zlib.decompressobj(wbits)
        while position < len(view) and not inflater.eof:
            chunk = view[position : position + _STEP]
            position += len(chunk)
            try:
                # At most one byte past the budget: either all of `chunk` was consumed, or the
                # limit is exceeded and nothing more will be read.
                piece = inflater.decompress(chunk, limit - total + 1)
            except zlib.error as exc:
                raise InvalidInput(f"request body is not valid {name} data: {exc}") from None
            total += len(piece)
            if total > limit:
                raise PayloadTooLarge(
                    f"decompressed request body is larger than limits.max_request_bytes "
                    f"({limit} bytes)"
                )
            pieces.append(piece)
        if not inflater.eof:
            raise InvalidInput(f"request body is truncated {name} data")
        unused = len(inflater.unused_data)
        position -= unused
        if unused and wbits != _GZIP_WBITS:
            raise InvalidInput(f"request body has {unused} bytes after the end of its {name} data")
    return b"".join(pieces)


def choose_encoding(accept_encoding: str | None) -> str | None:
    """The coding to answer with for an `Accept-Encoding` header: gzip, deflate, or None.

    Weights (`;q=`) are honoured; `*` stands for any coding not named. Identity is the fallback
    and wins only when the client weights it above every coding it accepts.
    """
    if not accept_encoding:
        return None
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        token, _, params = part.partition(";")
        token = token.strip().lower()
        if not token:
            continue
        weight = _weight(params)
        if weight is not None:
            weights[_ALIASES.get(token, token)] = weight
    wildcard = weights.get("*", 0.0)
    best, best_weight = None, 0.0
    for coding in ("gzip", "deflate"):  # gzip first: it wins a tie
        weight = weights.get(coding, wildcard)
        if weight > best_weight:
            best, best_weight = coding, weight
    if best is not None and weights.get("identity", 0.0) > best_weight:
        return None
    return best


def _weight(params: str) -> float | None:
    """The `q` of one Accept-Encoding entry (1 when absent); None when it cannot be read."""
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                weight = float(value.strip())
            except ValueError:
                return None
            return weight if 0.0 <= weight <= 1.0 else None
    return 1.0


def encode_body(body: bytes, coding: str) -> bytes:
    """`body` compressed with `coding` ("gzip" or "deflate", the latter zlib-wrapped)."""
    wbits = _GZIP_WBITS if coding == "gzip" else _ZLIB_WBITS
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, wbits)
    return compressor.compress(body) + compressor.flush()
