"""ModelportFlask's route cache and null sessions answer as Flask's own routing does."""

from __future__ import annotations

import pytest
from flask import Flask, request, session, url_for

from blueprints import flask_app
from blueprints.flask_app import ModelportFlask


def _app(cls: type[Flask] = ModelportFlask) -> Flask:
    app = cls("cache-test")

    @app.post("/models/<name>/infer")
    def infer(name: str) -> dict[str, object]:
        return {"name": name, "args": request.view_args, "rule": request.url_rule.rule}  # type: ignore[union-attr]

    @app.get("/models/<name>/")
    def model(name: str) -> dict[str, object]:
        return {"link": url_for("infer", name=name), "host": request.host}

    @app.get("/session")
    def read_session() -> dict[str, object]:
        return {"empty": not session, "x": session.get("x")}

    @app.get("/session/write")
    def write_session() -> str:
        session["x"] = 1
        return "written"

    return app


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/models/iris/infer"),
        ("POST", "/models/ir%20is/infer"),
        ("GET", "/models/iris/"),
        ("GET", "/models/iris"),  # strict slashes: a redirect
        ("GET", "/models/iris/infer"),  # 405
        ("POST", "/nowhere"),  # 404
        ("HEAD", "/models/iris/"),
        ("OPTIONS", "/models/iris/infer"),
        ("GET", "/models//iris/"),  # merged slashes: a redirect
    ],
)
def test_answers_as_flask_does_first_and_cached(method: str, path: str) -> None:
    ours, flasks = _app().test_client(), _app(Flask).test_client()
    expected = flasks.open(path, method=method)
    for _ in range(3):  # the first match, then the remembered one
        answer = ours.open(path, method=method)
        assert (answer.status_code, answer.get_data()) == (
            expected.status_code,
            expected.get_data(),
        )
        assert answer.headers.get("Location") == expected.headers.get("Location")
        assert answer.headers.get("Allow") == expected.headers.get("Allow")


def test_only_matches_are_remembered_and_each_request_gets_its_own_arguments() -> None:
    app = _app()
    client = app.test_client()
    client.post("/models/a/infer")
    client.get("/models/a/infer")  # 405
    client.get("/nowhere")  # 404
    assert set(app.routes) == {("POST", "/models/a/infer")}  # type: ignore[attr-defined]
    assert client.post("/models/a/infer").get_json()["args"] == {"name": "a"}
    assert client.post("/models/b/infer").get_json()["name"] == "b"
    rule, args = app.routes[("POST", "/models/a/infer")]  # type: ignore[attr-defined]
    assert args == {"name": "a"} and rule.endpoint == "infer"


def test_url_for_and_host_work_on_a_remembered_route() -> None:
    client = _app().test_client()
    for _ in range(2):
        answer = client.get("/models/x/", headers={"Host": "example.test:8080"})
        assert answer.get_json() == {"link": "/models/x/infer", "host": "example.test:8080"}


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flask_app, "ROUTE_CACHE_SIZE", 5)
    app = _app()
    client = app.test_client()
    for index in range(12):
        assert client.post(f"/models/m{index}/infer").get_json()["name"] == f"m{index}"
        assert len(app.routes) <= 5  # type: ignore[attr-defined]


def test_sessions_are_null_and_refuse_writes_as_flask_does() -> None:
    ours, flasks = _app().test_client(), _app(Flask).test_client()
    assert ours.get("/session").get_json() == {"empty": True, "x": None}
    assert ours.get("/session/write").status_code == flasks.get("/session/write").status_code == 500


def test_trusted_hosts_fall_back_to_flask_routing() -> None:
    app = _app()
    app.config["TRUSTED_HOSTS"] = ["good.test"]
    client = app.test_client()
    assert client.get("/models/x/", headers={"Host": "bad.test"}).status_code == 400
    assert client.get("/models/x/", headers={"Host": "good.test"}).status_code == 200
    assert app.routes == {}  # type: ignore[attr-defined]
