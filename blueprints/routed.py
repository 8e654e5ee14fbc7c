"""REST's body-routed form: `POST /` and `POST /v2/infer` name the model in the body.

MLRun routes a URL-less request by the body's `model` and `operation`; these two routes take
the same body as a stream message does (`app.routed`), and answer what the URL form answers.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g

from app.codec.routed import route_from_body
from app.routed import serve
from blueprints.common import dataplane, infer_response, read_infer_body, request_limit

bp = Blueprint("routed", __name__)


@bp.post("/")
@bp.post("/v2/infer")
def routed() -> Response:
    """Any operation of the model the body names: `{"model", "operation"?, ...its body}`."""
    payload, binary = read_infer_body()
    route = route_from_body(payload)
    g.model = route.model  # the metrics label (blueprints/hooks.py)
    limits = current_app.extensions["modelport"].settings.server.limits
    answer = serve(dataplane(), route, binary, data_roots=limits.data_roots, limit=request_limit())
    return infer_response(answer.body, answer.json_length)
