"""Credentials on REST: bearer tokens and API keys; health and metrics stay public."""

from __future__ import annotations

import dataclasses

import pytest
from flask.testing import FlaskClient

from app.auth import Authenticator
from app.errors import Unauthenticated
from blueprints.factory import create_app
from config.settings import AuthSettings, load_settings
from tests.server import E2E_CONFIG

AUTH = AuthSettings(bearer_tokens=("tok-1", "tok-2"), api_keys=("key-1",))


@pytest.fixture(scope="module")
def secured() -> FlaskClient:
    settings = load_settings(E2E_CONFIG, {})
    settings = dataclasses.replace(settings, server=dataclasses.replace(settings.server, auth=AUTH))
    return create_app(overrides={"settings": settings, "TESTING": True}).test_client()


@pytest.mark.parametrize(
    ("authorization", "api_key", "ok"),
    [
        ("Bearer tok-1", None, True),
        ("bearer  tok-2 ", None, True),
        (None, "key-1", True),
        ("Bearer wrong", "key-1", True),
        (None, None, False),
        ("Bearer tok-", None, False),
        ("Bearer tok-1x", None, False),
        ("Basic tok-1", None, False),
        ("Bearer ", None, False),
        (None, "tok-1", False),  # a token is not a key
        ("Bearer key-1", None, False),  # nor a key a token
        (None, "", False),
    ],
)
def test_authenticator(authorization: str | None, api_key: str | None, ok: bool) -> None:
    authenticator = Authenticator(AUTH)
    if ok:
        authenticator.verify(authorization, api_key)
    else:
        with pytest.raises(Unauthenticated):
            authenticator.verify(authorization, api_key)


def test_no_auth_configured_lets_everyone_in() -> None:
    Authenticator(None).verify(None, None)


def test_empty_secret_lists_accept_nothing() -> None:
    with pytest.raises(Unauthenticated):
        Authenticator(AuthSettings()).verify("Bearer ", "")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/iris"),
        ("POST", "/v2/models/iris/infer"),
        ("POST", "/v1/models/iris:predict"),
        ("GET", "/v1/models"),
        ("GET", "/v2"),
        ("POST", "/v2/repository/index"),
        ("POST", "/v2/repository/models/iris/unload"),
        ("GET", "/v2/models/stats"),
        ("GET", "/v2/nowhere"),
    ],
)
def test_protected_routes_refuse_missing_and_wrong_credentials(
    secured: FlaskClient, method: str, path: str
) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"X-API-Key": "nope"}):
        response = secured.open(path, method=method, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="modelport"'
        assert "credentials" in response.json["error"]
        assert "tok-1" not in response.get_data(as_text=True)


def test_right_credentials_of_both_kinds_are_accepted(secured: FlaskClient) -> None:
    body = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
    for headers in ({"Authorization": "Bearer tok-2"}, {"X-API-Key": "key-1"}):
        response = secured.post("/v1/models/iris:predict", json=body, headers=headers)
        assert response.status_code == 200 and response.json == {"predictions": [1]}


@pytest.mark.parametrize(
    "path", ["/", "/v2/health/live", "/v2/health/ready", "/v2/health", "/metrics"]
)
def test_health_and_metrics_stay_public(secured: FlaskClient, path: str) -> None:
    assert secured.get(path).status_code == 200


def test_request_ids_are_taken_or_made(secured: FlaskClient) -> None:
    given = secured.get("/v2/health/live", headers={"X-Request-ID": "req-42"})
    assert given.headers["X-Request-ID"] == "req-42"
    made = secured.get("/v2/health/live").headers["X-Request-ID"]
    assert len(made) == 32
