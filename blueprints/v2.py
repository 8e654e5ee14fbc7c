"""Open Inference Protocol REST (KServe v2 / Triton), with the MLRun request forms."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, Response

from app.codec import binary as binary_codec
from app.codec import forms
from app.codec.metadata import (
    health_to_json,
    model_list_to_json,
    model_metadata_to_json,
    server_metadata_to_json,
)
from app.errors import ModelUnavailable
from app.types import InferRequest
from blueprints.common import (
    Current,
    current,
    dataplane,
    infer_response,
    json_response,
    read_infer_body,
    read_json,
)

bp = Blueprint("v2", __name__)

View = TypeVar("View", bound=Callable[..., Response])


def _model_routes(rule: str, methods: list[str]) -> Callable[[View], View]:
    """Register a view on `/v2/models/<name>{rule}` and its `/versions/<version>` twin."""

    def decorator(view: View) -> View:
        bp.add_url_rule(f"/v2/models/<name>{rule}", view_func=view, methods=methods)
        bp.add_url_rule(
            f"/v2/models/<name>/versions/<version>{rule}",
            endpoint=f"{view.__name__}_versioned",
            view_func=view,
            methods=methods,
        )
        return view

    return decorator


@bp.get("/v2")
def server_metadata() -> Response:
    """Server name, version and extensions."""
    return json_response(server_metadata_to_json(dataplane().server_metadata()))


@bp.get("/v2/health")
def health() -> Response:
    """MLRun's health route: the server metadata, with liveness and readiness."""
    plane = dataplane()
    return json_response(health_to_json(plane.server_metadata(), plane.ready()))


@bp.get("/v2/health/live")
def live() -> Response:
    """200 `{"live": true}` while the process answers."""
    return json_response({"live": dataplane().live()})


@bp.get("/v2/health/ready")
def ready() -> Response:
    """200 `{"ready": true}` once loading is over, else 503."""
    if not dataplane().ready():
        raise ModelUnavailable("server is not ready: models are still loading")
    return json_response({"ready": True})


@bp.get("/v2/models")
def list_models() -> Response:
    """MLRun and KServe's model list: every name, and `name:version` for every version."""
    return json_response(model_list_to_json(dataplane().repository_index()))


@_model_routes("", methods=["GET"])
def model_metadata(name: str, version: str | None = None) -> Response:
    """Model metadata: inputs, outputs, platform, versions."""
    return json_response(model_metadata_to_json(dataplane().model_metadata(name, version)))


@_model_routes("/ready", methods=["GET"])
def model_ready(name: str, version: str | None = None) -> Response:
    """200 `{"name", "ready": true}`; 503 when not ready, 404 when unknown."""
    plane = dataplane()
    if not plane.model_ready(name, version):
        plane.check_model_ready(name, version)  # raises the 503 that says why
    return json_response({"name": name, "ready": True})


@_model_routes("/infer", methods=["POST"])
@_model_routes("/predict", methods=["POST"])
def infer(name: str, version: str | None = None) -> Response:
    """Inference with OIP tensors (JSON or binary), MLRun plain rows, or an MLRun `data_url`."""
    now = current()
    request = infer_request(name, version, now)
    form = binary_codec.OutputForm.of(request)
    answer = now.core.dataplane.infer(request)
    return infer_response(*binary_codec.response_body(answer, form), now.request)


def infer_request(name: str, version: str | None, now: Current | None = None) -> InferRequest:
    """The internal request of this request's `/infer` body, in any of its forms."""
    now = now or current()
    payload, binary = read_infer_body(now, numbers=True)
    limits = now.core.settings.server.limits
    return forms.request_from_body(
        name, version, payload, binary, data_roots=limits.data_roots, limit=now.limit
    )


@_model_routes("/infer_dict", methods=["POST"])
@_model_routes("/predict_dict", methods=["POST"])
def infer_dict(name: str, version: str | None = None) -> Response:
    """MLRun's `infer_dict`: rows of `{feature: value}` in the model's declared feature order."""
    plane = dataplane()
    request = forms.request_from_records(
        name, version, read_json(), lambda: plane.model(name, version)
    )
    form = binary_codec.OutputForm.of(request)
    return infer_response(*binary_codec.response_body(plane.infer(request), form))
