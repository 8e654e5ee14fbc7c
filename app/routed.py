"""Serve a body-routed request (`app.codec.routed`) through the data plane.

REST `POST /` and `POST /v2/infer` and every stream consumer (`streams/`) call `serve`, and it
calls the same data plane methods, with the same codec, as the URL routes do: an answer is
byte for byte the body that the URL form of the request gets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.codec import binary as binary_codec
from app.codec import envelopes, forms
from app.codec import explanation as explanation_codec
from app.codec import rest as codec
from app.codec.metadata import model_metadata_to_json
from app.codec.routed import Route
from app.dataplane import DataPlane
from app.types import InferRequest


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful answer: its body, and the JSON header length of a binary one."""

    route: Route
    body: bytes
    json_length: int | None = None  # set when binary outputs follow the JSON part


def serve(
    plane: DataPlane,
    route: Route,
    binary: memoryview | None = None,
    *,
    data_roots: Sequence[Path] = (),
    limit: int,
) -> Answer:
    """Answer one body-routed request, routed by `app.codec.routed.route_from_body`.

    `binary`, `data_roots` and `limit` are what an `/infer` body may use (binary tensor data,
    `data_url`). Raises what the route's operation raises over REST (`InvalidInput`,
    `ModelNotFound`, `ModelUnavailable`, `ModelFailed`, ...), the caller turns it into the
    error answer of its wire.
    """
    name, version, body = route.model, route.version, route.payload
    operation = route.operation
    if operation == "metadata":
        return Answer(
            route, codec.dumps(model_metadata_to_json(plane.model_metadata(name, version)))
        )
    if operation == "ready":
        if not plane.model_ready(name, version):
            plane.model(name, version)  # raises the 503 that says why
        return Answer(route, codec.dumps({"name": name, "ready": True}))
    if "instances" in body and operation in ("infer", "predict", "explain"):
        v1 = _v1_request(name, version, body)
        if operation == "explain":
            return Answer(route, explanation_codec.explanation_to_v1(plane.explain(v1)))
        return Answer(route, codec.response_to_v1(plane.infer(v1)))
    if operation == "infer_dict":
        request = forms.request_from_records(
            name, version, body, lambda: plane.model(name, version)
        )
    else:
        request = forms.request_from_body(
            name, version, body, binary, data_roots=data_roots, limit=limit
        )
    form = binary_codec.OutputForm.of(request)
    response = plane.explain(request) if operation == "explain" else plane.infer(request)
    body_bytes, json_length = binary_codec.response_body(response, form)
    return Answer(route, body_bytes, json_length)


def _v1_request(name: str, version: str | None, body: Any) -> InferRequest:
    """A KServe v1 `instances` body, for the version the route names."""
    request = codec.request_from_v1(name, envelopes.v1_request(body))
    return dataclasses.replace(request, model_version=version) if version else request
