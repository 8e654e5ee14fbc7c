"""Credentials from gRPC metadata: `authorization: Bearer <token>` or `x-api-key: <key>`.

The checking itself is REST's (`app.auth.Authenticator`, constant-time against every secret);
this module knows where gRPC carries the credentials, and refuses calls without them
(`AuthInterceptor`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc

from app.auth import Authenticator
from app.errors import Unauthenticated
from config.settings import AuthSettings
from grpc_service.handlers import behaviour_of, with_behaviour

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


class AuthInterceptor(grpc.ServerInterceptor):
    """Raises `Unauthenticated` before a non-public method runs without valid credentials.

    Registered inside `ErrorInterceptor`, which answers the refusal UNAUTHENTICATED and counts
    it. `public(method)` names the methods anyone may call (health, reflection, liveness).
    """

    def __init__(self, credentials: Credentials, public: Callable[[str], bool]) -> None:
        self._credentials = credentials
        self._public = public
        # method -> (the handler found for it, the one checking credentials first): built once
        # per method, reading each call's metadata from its context (`ErrorInterceptor` keeps
        # its wrapper of this one).
        self._checked: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        """The handler found for this call, checking its credentials first where they count."""
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not self._credentials.configured or self._public(method):
            return handler
        cached = self._checked.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        checked = self._check(handler)
        self._checked[method] = (handler, checked)
        return checked

    def _check(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        require = self._credentials.require
        behaviour = behaviour_of(handler)
        if handler.response_streaming:

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                require(context.invocation_metadata())
                yield from behaviour(request, context)

            return with_behaviour(handler, stream)

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            require(context.invocation_metadata())
            return behaviour(request, context)

        return with_behaviour(handler, call)
