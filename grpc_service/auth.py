"""Credentials from gRPC metadata: `authorization: Bearer <token>` or `x-api-key: <key>`.

The checking itself is REST's (`app.auth.Authenticator`, constant-time against every secret);
this module only knows where gRPC carries the credentials.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.auth import Authenticator
from app.errors import Unauthenticated
from config.settings import AuthSettings

Metadata = Iterable[tuple[str, str | bytes]]


def _credentials(metadata: Metadata | None) -> tuple[str | None, str | None]:
    authorization = api_key = None
    for key, value in metadata or ():
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        if key == "authorization":
            authorization = text
        elif key == "x-api-key":
            api_key = text.strip()
    return authorization, api_key


class Credentials:
    """Checks request metadata against the configured bearer tokens and API keys."""

    def __init__(self, auth: AuthSettings | None) -> None:
        self._authenticator = Authenticator(auth)

    @property
    def configured(self) -> bool:
        """True when `server.auth` is present: requests then need credentials."""
        return self._authenticator.enabled

    def valid(self, metadata: Metadata | None) -> bool:
        """True when auth is configured and the metadata carries a configured token or key."""
        if not self.configured:
            return False
        try:
            self._authenticator.verify(*_credentials(metadata))
        except Unauthenticated:
            return False
        return True

    def require(self, metadata: Metadata | None) -> None:
        """Pass when auth is off or the metadata is valid; raises `Unauthenticated` otherwise."""
        if self.configured and not self.valid(metadata):
            raise Unauthenticated(
                "missing or invalid credentials: send 'authorization: Bearer <token>' "
                "or 'x-api-key' metadata"
            )
