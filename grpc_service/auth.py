"""Credentials from gRPC metadata: `authorization: Bearer <token>` or `x-api-key: <key>`.

The same tokens and keys as REST (`server.auth`); compared with `hmac.compare_digest` so the time
taken says nothing about how much of a guess was right.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from app.errors import Unauthenticated
from config.settings import AuthSettings

Metadata = Iterable[tuple[str, str | bytes]]


def _matches(candidate: str, secrets: tuple[str, ...]) -> bool:
    given = candidate.encode("utf-8")
    # No short-cut: every secret is compared, whatever matched first.
    return sum(hmac.compare_digest(given, secret.encode("utf-8")) for secret in secrets) > 0


class Credentials:
    """Checks request metadata against the configured bearer tokens and API keys."""

    def __init__(self, auth: AuthSettings | None) -> None:
        self._auth = auth

    @property
    def configured(self) -> bool:
        """True when `server.auth` is present: requests then need credentials."""
        return self._auth is not None

    def valid(self, metadata: Metadata | None) -> bool:
        """True when the metadata carries a configured token or key."""
        if self._auth is None:
            return False
        for key, value in metadata or ():
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            if key == "authorization":
                scheme, _, token = text.strip().partition(" ")
                if (
                    scheme.lower() == "bearer"
                    and token
                    and _matches(token.strip(), self._auth.bearer_tokens)
                ):
                    return True
            elif key == "x-api-key" and text and _matches(text.strip(), self._auth.api_keys):
                return True
        return False

    def require(self, metadata: Metadata | None) -> None:
        """Pass when auth is off or the metadata is valid; raises `Unauthenticated` otherwise."""
        if self._auth is not None and not self.valid(metadata):
            raise Unauthenticated(
                "missing or invalid credentials: send 'authorization: Bearer <token>' "
                "or 'x-api-key' metadata"
            )
