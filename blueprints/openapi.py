"""The OpenAPI 3 document of the REST API, built once per app from its url_map and our schemas.

Paths, methods and path parameters come from the Flask url_map, and summaries from the views'
docstrings, so a route cannot exist without being documented. What an endpoint reads and answers
(body, success schema, error statuses) comes from `blueprints.operations.OPERATIONS`, whose
marshmallow schemas apispec turns into JSON Schema. An endpoint missing from that catalogue is
still listed, with a 200 of unknown shape and a `default` error, and
`tests/blueprints/test_openapi.py` fails until it is described.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from werkzeug.routing import Rule

from app.codec.rest import dumps
from app.version import __version__
from blueprints.hooks import PUBLIC_ENDPOINTS
from blueprints.operations import ERRORS, OPERATIONS, PARAMETERS, TAGS, Operation
from blueprints.schemas import DetailedErrorSchema, ErrorSchema

OPENAPI_VERSION = "3.0.3"
_EXTENSION_KEY = "modelport.openapi"
# Methods Flask adds to every rule by itself; the document lists the ones the views declare.
_IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})
# `<converter(args):name>` or `<name>` in a werkzeug rule.
_PLACEHOLDER = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
#: How `server.auth` credentials are sent (app.auth); documented only where auth is configured.
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
_ANY_ERROR = {"description": "An error", "content": {"application/json": {"schema": "Error"}}}
_CONVERTER_SCHEMAS: dict[str, dict[str, str]] = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
}


def openapi_json(app: Flask) -> bytes:
    """The serialized document of `app`, built on first use and then reused.

    Built lazily rather than in the factory because blueprints may still be registered after
    `create_app` returns (tests do); by the first request the url_map is final.
    """
    cached = app.extensions.get(_EXTENSION_KEY)
    if cached is None:
        cached = app.extensions[_EXTENSION_KEY] = dumps(build_document(app))
    return cached


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of every documented route of `app`, as a plain dict."""
    spec = APISpec(
        title="Modelport",
        version=__version__,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "KServe v1, Open Inference Protocol (v2) and MLRun REST endpoints of one "
                f"Modelport server ('{app.extensions['modelport'].settings.server.name}'). "
                "The gRPC services (OIP, OMI) are described by their .proto files."
            )
        },
        tags=[{"name": name, "description": text} for name, text in TAGS.items()],
    )
    server = app.extensions["modelport"].settings.server
    secured = server.auth is not None
    if secured:
        for scheme, definition in SECURITY_SCHEMES.items():
            spec.components.security_scheme(scheme, definition)
    # The one form this server answers (`server.errors`), so schemathesis checks it exactly.
    error_schema = DetailedErrorSchema if server.errors == "detailed" else ErrorSchema
    spec.components.schema("Error", schema=error_schema)
    for status, text in ERRORS.items():
        spec.components.response(
            _error_component(status),
            {"description": text, "content": {"application/json": {"schema": "Error"}}},
        )
    for name, parameter in PARAMETERS.items():
        spec.components.parameter(name, "path", parameter)
    for rule in _documented_rules(app):
        path, parameters = _openapi_path(rule)
        view = app.view_functions[rule.endpoint]
        operations = {
            method.lower(): _operation(method, path, parameters, view, rule.endpoint)
            for method in sorted((rule.methods or set()) - _IMPLICIT_METHODS)
        }
        if secured and rule.endpoint not in PUBLIC_ENDPOINTS:
            for operation in operations.values():
                operation["security"] = [{scheme: []} for scheme in SECURITY_SCHEMES]
                operation["responses"]["401"] = _error_component(401)
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def undocumented_endpoints(app: Flask) -> list[str]:
    """Endpoints of `app` that `OPERATIONS` does not describe (the test keeps this empty)."""
    return sorted({rule.endpoint for rule in _documented_rules(app)} - OPERATIONS.keys())


def _documented_rules(app: Flask) -> Iterator[Rule]:
    """Every rule except static files, in registration order (the document's path order)."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint != "static" and not rule.endpoint.endswith(".static"):
            yield rule


def _openapi_path(rule: Rule) -> tuple[str, list[str | dict[str, Any]]]:
    """`/v2/models/<name>/infer` -> `/v2/models/{name}/infer` and its path parameters."""
    parameters: list[str | dict[str, Any]] = []
    for match in _PLACEHOLDER.finditer(rule.rule):
        name = match["name"]
        if name in PARAMETERS:
            parameters.append(name)  # a reference to the shared component
        else:
            schema = _CONVERTER_SCHEMAS.get(match["converter"] or "", {"type": "string"})
            parameters.append({"in": "path", "name": name, "required": True, "schema": schema})
    return _PLACEHOLDER.sub(lambda m: "{" + m["name"] + "}", rule.rule), parameters


def _operation(
    method: str,
    path: str,
    parameters: list[str | dict[str, Any]],
    view: Any,
    endpoint: str,
) -> dict[str, Any]:
    summary, _, description = (inspect.getdoc(view) or endpoint).partition("\n")
    operation: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": summary.strip(),
        "parameters": list(parameters),
    }
    if description.strip():
        operation["description"] = description.strip()
    known = OPERATIONS.get(endpoint)
    if known is None:
        operation["responses"] = {"200": {"description": "OK"}, "default": _ANY_ERROR}
        return operation
    operation["tags"] = [known.tag]
    operation["parameters"] += [dict(header) for header in known.headers]
    if known.body is not None:
        operation["requestBody"] = _request_body(known)
    operation["responses"] = {"200": _success(known)} | {
        str(status): _error_component(status)
        for status in sorted(known.errors)
        # "not found" names a path parameter, or the model the body names (the routed form,
        # found by `make soak`'s schemathesis run); a path without either cannot answer it.
        if status != 404 or parameters or known.model_in_body
    }
    return operation


def _operation_id(method: str, path: str) -> str:
    """`POST /v2/models/{name}/infer` -> `post_v2_models_name_infer`: unique per path and method."""
    words = re.sub(r"\W+", "_", path).strip("_") or "root"
    return f"{method.lower()}_{words}"


def _request_body(known: Operation) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": known.body}
    if known.body_example is not None:
        media["example"] = known.body_example
    return {"required": known.body_required, "content": {"application/json": media}}


def _success(known: Operation) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": known.success_description,
        "content": dict(known.content),
    }
    if known.success_headers:
        response["headers"] = dict(known.success_headers)
    return response


def _error_component(status: int) -> str:
    return f"Error{status}"
