"""KServe v1 REST (TensorFlow-Serving style): `instances` in, `predictions` out."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

from app.codec import rest as codec
from blueprints.common import dataplane, json_response, raw_json_response, read_json

bp = Blueprint("v1", __name__)


class ModelNameConverter(BaseConverter):
    """A model name in a v1 path: no ':', so `GET /v1/models/iris:predict` is not a status call."""

    regex = r"[^/:]+"


@bp.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters["model"] = ModelNameConverter


@bp.get("/")
def root() -> Response:
    """Liveness as kserve's v1 client reads it: `{"status": "alive"}`."""
    name = current_app.extensions["modelport"].settings.server.name
    return json_response({"status": "alive", "name": name})


@bp.get("/v1/models")
def list_models() -> Response:
    """Every configured model name, ready or not."""
    return json_response({"models": dataplane().manager.names()})


@bp.get("/v1/models/<model:name>")
def model_ready(name: str) -> Response:
    """`{"name", "ready": true}`; 503 when not ready (kserve's client reads that as False)."""
    plane = dataplane()
    if not plane.model_ready(name):
        plane.check_model_ready(name)  # raises the 503 that says why
    return json_response({"name": name, "ready": True})


@bp.post("/v1/models/<name>:predict")
def predict(name: str) -> Response:
    """Predictions for `instances` (or `inputs`) rows, from the model's first output."""
    request = codec.request_from_v1(name, read_json())
    return raw_json_response(codec.response_to_v1(dataplane().infer(request)))
