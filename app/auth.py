"""Credentials shared by REST and gRPC: bearer tokens and API keys, compared in constant time."""

from __future__ import annotations

import hmac

from app.errors import Unauthenticated
from config.settings import AuthSettings


class Authenticator:
    """Checks a request's credentials against the configured tokens and keys.

    Every configured secret is compared, whether or not an earlier one matched, so the time taken
    does not tell an attacker which (or whether a prefix) matched.
    """

    def __init__(self, settings: AuthSettings | None) -> None:
        self._tokens = tuple(t.encode() for t in settings.bearer_tokens) if settings else ()
        self._keys = tuple(k.encode() for k in settings.api_keys) if settings else ()
        self.enabled = settings is not None

    def verify(self, authorization: str | None, api_key: str | None) -> None:
        """Accept the request or raise `Unauthenticated` (never saying which secret was close)."""
        if not self.enabled:
            return
        if not authorization and not api_key:
            raise Unauthenticated("credentials required: send 'Authorization: Bearer <token>'")
        token = _bearer(authorization)
        matched = False
        if token is not None:
            for secret in self._tokens:
                matched |= hmac.compare_digest(token, secret)
        if api_key:
            candidate = api_key.encode()
            for secret in self._keys:
                matched |= hmac.compare_digest(candidate, secret)
        if not matched:
            raise Unauthenticated("invalid credentials")


def _bearer(authorization: str | None) -> bytes | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip().encode()
