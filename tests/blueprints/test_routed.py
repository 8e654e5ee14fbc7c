"""The body-routed form (`POST /`, `POST /v2/infer`): the same answer as the URL form, or the
same error, for every operation; and the stream core answers a message with those bytes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app.codec.routed import route_from_body
from app.errors import InvalidInput
from config.streams import StreamSettings
from streams.core import Answerer

ROW = [6.8, 2.8, 4.8, 1.4]
TENSOR = {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": ROW}
RECORD = {"sepal_length": 6.8, "sepal_width": 2.8, "petal_length": 4.8, "petal_width": 1.4}

# (body-routed body, URL form: method, path, body)
CASES: list[tuple[dict[str, Any], str, str, Any]] = [
    ({"model": "iris", "id": "a", "inputs": [TENSOR]}, "POST", "/v2/models/iris/infer",
     {"id": "a", "inputs": [TENSOR]}),
    ({"model": "iris:1", "id": "a", "operation": "predict", "inputs": [ROW]}, "POST",
     "/v2/models/iris/versions/1/predict", {"id": "a", "inputs": [ROW]}),
    ({"model": "iris", "version": "1", "id": "a", "operation": "infer_dict",
      "inputs": [RECORD]}, "POST", "/v2/models/iris/versions/1/infer_dict",
     {"id": "a", "inputs": [RECORD]}),
    ({"model": "iris", "id": "a", "operation": "explain", "inputs": [ROW]}, "POST",
     "/v2/models/iris/explain", {"id": "a", "inputs": [ROW]}),
    ({"model": "iris", "operation": "explain", "instances": [ROW]}, "POST",
     "/v1/models/iris:explain", {"instances": [ROW]}),
    ({"model": "iris-xgboost", "instances": [ROW, ROW]}, "POST",
     "/v1/models/iris-xgboost:predict", {"instances": [ROW, ROW]}),
    ({"model": "iris", "operation": "ready"}, "GET", "/v2/models/iris/ready", None),
    ({"model": "iris:2", "operation": "metadata"}, "GET", "/v2/models/iris/versions/2", None),
    ({"model": "digits", "id": "a", "inputs": [[0.0] * 64], "outputs": [{"name": "label"}]},
     "POST", "/v2/models/digits/infer",
     {"id": "a", "inputs": [[0.0] * 64], "outputs": [{"name": "label"}]}),
    # Errors: the same status and body.
    ({"model": "nope", "inputs": [ROW]}, "POST", "/v2/models/nope/infer", {"inputs": [ROW]}),
    ({"model": "iris", "version": "9", "operation": "ready"}, "GET",
     "/v2/models/iris/versions/9/ready", None),
    ({"model": "iris", "inputs": [{**TENSOR, "data": [1.0]}]}, "POST", "/v2/models/iris/infer",
     {"inputs": [{**TENSOR, "data": [1.0]}]}),
    ({"model": "broken", "inputs": [ROW]}, "POST", "/v2/models/broken/infer", {"inputs": [ROW]}),
    ({"model": "failing", "inputs": [[1.0]]}, "POST", "/v2/models/failing/infer",
     {"inputs": [[1.0]]}),
    ({"model": "echo", "operation": "explain", "inputs": [[1.0]]}, "POST",
     "/v2/models/echo/explain", {"inputs": [[1.0]]}),
]  # fmt: skip


def _url_form(client: FlaskClient, method: str, path: str, body: Any) -> tuple[int, bytes]:
    response = client.open(path, method=method, data=orjson.dumps(body) if body else None)
    return response.status_code, response.data


@pytest.mark.parametrize("route", ["/", "/v2/infer"])
@pytest.mark.parametrize(("routed", "method", "path", "body"), CASES)
def test_body_form_answers_as_the_url_form(
    client: FlaskClient, route: str, routed: dict, method: str, path: str, body: Any
) -> None:
    response = client.post(route, data=orjson.dumps(routed))
    assert (response.status_code, response.data) == _url_form(client, method, path, body)


@pytest.mark.parametrize(("routed", "method", "path", "body"), CASES)
def test_a_stream_message_is_answered_as_the_url_form(
    app: Flask, client: FlaskClient, routed: dict, method: str, path: str, body: Any
) -> None:
    stream = StreamSettings("s", "redis", "redis://x:1", "in", "out")
    reply = Answerer(app, stream).answer(orjson.dumps(routed))
    assert (reply.status, reply.body) == _url_form(client, method, path, body)


def test_a_transport_id_wins_and_headers_only_fill_in(app: Flask) -> None:
    answerer = Answerer(app, StreamSettings("s", "kafka", "kafka://x:1", "in", "out"))
    plain = orjson.dumps({"id": "body", "inputs": [TENSOR]})
    reply = answerer.answer(plain, transport_id="key", defaults={"model": "iris"})
    assert (reply.status, reply.id, orjson.loads(reply.body)["id"]) == (200, "key", "key")
    routed = orjson.dumps({"model": "nope", "inputs": [TENSOR]})
    assert answerer.answer(routed, defaults={"model": "iris"}).status == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{oops", 400, "request body is not valid JSON"),
        (b"", 400, "request body is empty"),
        (b"[1, 2]", 400, "must be a JSON object naming its 'model'"),
        (b'{"inputs": []}', 400, "names no 'model'"),
        (b'{"model": "iris", "operation": "train"}', 400, "unknown operation 'train'"),
        (b'{"model": "iris:1", "version": "2", "operation": "ready"}', 400, "names version"),
        (b'{"model": "iris", "id": 7, "inputs": [[1, 2, 3, 4]]}', 400, "id"),
    ],
)
def test_a_bad_message_gets_the_rest_error_and_an_id(
    app: Flask, client: FlaskClient, body: bytes, status: int, message: str
) -> None:
    answerer = Answerer(app, StreamSettings("s", "mqtt", "mqtt://x:1", "in", "out"))
    reply = answerer.answer(body)
    assert reply.status == status and reply.id
    assert message in orjson.loads(reply.body)["error"]
    response = client.post("/", data=body)
    assert (response.status_code, response.data) == (reply.status, reply.body)


def test_a_message_over_the_limit_is_413(app: Flask) -> None:
    answerer = Answerer(app, StreamSettings("s", "mqtt", "mqtt://x:1", "in", "out"))
    limit = app.extensions["modelport"].settings.server.limits.max_request_bytes
    reply = answerer.answer(b" " * (limit + 1), transport_id="big")
    assert (reply.status, reply.id) == (413, "big")


def test_route_reads_name_version_and_ids() -> None:
    route = route_from_body({"model": "iris:2", "inputs": []})
    assert (route.model, route.version, route.operation) == ("iris", "2", "infer")
    assert route.payload["id"] == route.id and "model" not in route.payload
    assert route_from_body({"model": "iris", "version": 3, "id": "x"}).version == "3"
    assert route_from_body({"model": "iris", "id": "x"}, transport_id="k").payload["id"] == "k"
    with pytest.raises(InvalidInput, match="'version' must be a string"):
        route_from_body({"model": "iris", "version": [1]})


@pytest.mark.e2e
@pytest.mark.parametrize("route", ["/", "/v2/infer"])
def test_body_form_answers_as_the_url_form_over_gunicorn(server, route: str) -> None:
    """A real `gunicorn wsgi:app`, requests-shaped calls: both forms, every operation."""
    for routed, method, path, body in CASES:
        got = requests.post(f"{server.url}{route}", data=orjson.dumps(routed), timeout=30)
        want = requests.request(
            method, f"{server.url}{path}", data=orjson.dumps(body) if body else None, timeout=30
        )
        assert (got.status_code, got.content) == (want.status_code, want.content), routed
