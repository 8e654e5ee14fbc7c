"""The Flask class Modelport serves with: Flask's request cycle, minus work it never needs.

Flask 3.1.3 spends about 351,000 instructions on a request to a one-route app that answers a
constant (callgrind, Werkzeug 3.1.9; an iris request through all of Modelport is about 808,000).
Two parts of that do nothing for Modelport, and this class leaves them out:

- Binding the URL map to the request and matching the path: 110,000 of them. The map is fixed
  once the blueprints are registered (Flask refuses new routes after the first request), and
  this server matches neither hosts nor subdomains, so the rule and arguments a method and path
  matched are the same every time: they are remembered, at most `ROUTE_CACHE_SIZE` of them, and
  the `MapAdapter` is only made when a path is new or something (`url_for`) asks for it.
  Failed matches (404, 405, redirects) are never remembered: they are matched afresh.
- Opening a cookie session: 10,000. Modelport sets no secret key and keeps nothing in a
  session, so every request gets the one read-only null session Flask would have made.

Everything else (contexts, signals, hooks, error handlers) is Flask's own. Written for Flask
3.1.3 (`WRITTEN_FOR`; tests/app/test_library_pins.py fails on any other version): it re-states
`RequestContext.__init__` and replaces `match_request`, so a new Flask means reading both again.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, Response
from flask.ctx import RequestContext
from flask.sessions import NullSession, SessionInterface, SessionMixin
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter, Rule

#: The library version these internals were read from (tests/app/test_library_pins.py).
WRITTEN_FOR = ("flask", "3.1.3")

#: How many (method, path) matches are kept; past it the cache starts again (model names are
#: paths, and a client must not grow the worker's memory).
ROUTE_CACHE_SIZE = 4096

_Match = tuple[Rule, dict[str, Any]]


class _NoSessions(SessionInterface):
    """Sessions as Flask has them without a secret key, without asking for one per request."""

    def __init__(self) -> None:
        self.null = NullSession()

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        """The shared null session: it refuses writes, as Flask's own does."""
        return self.null

    def is_null_session(self, obj: object) -> bool:
        """Whether `obj` is the null session (never saved)."""
        return obj is self.null or isinstance(obj, NullSession)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Nothing to save: only null sessions are handed out."""


class _DeferredAdapter:
    """The request's `MapAdapter`, made when something other than matching needs it."""

    __slots__ = ("_app", "_request", "_adapter")

    def __init__(self, app: Flask, request: Request) -> None:
        self._app = app
        self._request = request
        self._adapter: MapAdapter | None = None

    def real(self) -> MapAdapter:
        """Flask's own adapter for this request (raises its routing exceptions)."""
        if self._adapter is None:
            adapter = self._app.create_url_adapter(self._request)
            assert adapter is not None  # a request always gets one
            self._adapter = adapter
        return self._adapter

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


class _RequestContext(RequestContext):
    """Flask's request context, matching through the app's route cache."""

    def __init__(
        self,
        app: ModelportFlask,
        environ: dict[str, Any],
        request: Request | None = None,
        session: SessionMixin | None = None,
    ) -> None:
        # Flask's own __init__ without `app.create_url_adapter(request)` (the cost above).
        self.app = app
        if request is None:
            request = app.request_class(environ)
            request.json_module = app.json
        self.request = request
        self.url_adapter = _DeferredAdapter(app, request)  # type: ignore[assignment]
        self.flashes = None
        self._session = session
        self._after_request_functions = []
        self._cv_tokens = []

    def match_request(self) -> None:
        """The remembered match of this method and path, else Werkzeug's (remembered if found)."""
        request = self.request
        environ = request.environ
        key = (environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""))
        routes: dict[tuple[str, str], _Match] = self.app.routes  # type: ignore[attr-defined]
        found = routes.get(key)
        if found is not None:
            request.url_rule, view_args = found
            request.view_args = dict(view_args)
            return
        try:
            rule, view_args = self.url_adapter.real().match(return_rule=True)  # type: ignore[union-attr]
        except HTTPException as error:
            request.routing_exception = error
            return
        request.url_rule, request.view_args = rule, view_args
        if len(routes) >= ROUTE_CACHE_SIZE:
            routes.clear()
        routes[key] = (rule, dict(view_args))


class ModelportFlask(Flask):
    """Flask with the route cache and without per-request sessions (module docstring)."""

    session_interface = _NoSessions()

    def __init__(self, import_name: str, **kwargs: Any) -> None:
        super().__init__(import_name, **kwargs)
        self.routes: dict[tuple[str, str], _Match] = {}

    def request_context(self, environ: dict[str, Any]) -> RequestContext:
        """The context of one request; Flask's own where the cache cannot be trusted."""
        if (
            self.config["TRUSTED_HOSTS"] is not None  # checked while binding the map
            or self.url_map.host_matching
            or self.subdomain_matching
        ):
            return super().request_context(environ)
        return _RequestContext(self, environ)
