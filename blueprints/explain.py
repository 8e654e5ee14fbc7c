"""Explanations: KServe v1 `:explain` and MLRun's v2 `/explain`, over one data plane call.

Both views read their body exactly as the matching predict view does, so a row explained over
v1, v2 or OMI is the same request to the data plane and gets the same attributions.
"""

from __future__ import annotations

from flask import Blueprint, Response

from app.codec import binary as binary_codec
from app.codec import explanation as explanation_codec
from app.codec import rest as codec
from blueprints.common import (
    dataplane,
    infer_response,
    raw_json_response,
    read_json,
)
from blueprints.v2 import infer_request  # the v2 infer body, every form

bp = Blueprint("explain", __name__)


@bp.post("/v1/models/<name>:explain")
def explain_v1(name: str) -> Response:
    """`{"predictions": [...], "explanations": [{"attributions", "base_values"}, ...]}`."""
    request = codec.request_from_v1(name, read_json())
    return raw_json_response(explanation_codec.explanation_to_v1(dataplane().explain(request)))


@bp.post("/v2/models/<name>/explain")
@bp.post("/v2/models/<name>/versions/<version>/explain")
def explain_v2(name: str, version: str | None = None) -> Response:
    """The v2 infer body in, the v2 response out: predictions, then the explanation tensors."""
    request = infer_request(name, version)
    form = binary_codec.OutputForm.of(request)
    return infer_response(*binary_codec.response_body(dataplane().explain(request), form))
