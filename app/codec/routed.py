"""The body-routed request form: the model, its version and the operation named in the body.

MLRun's serving API: "When streaming, the `model` name and `operation` can be encoded inside the
message body", for protocols without URLs. The rest of the body is any body the URL routes take
(OIP v2 tensors, MLRun rows or `data_url`, `infer_dict` records, KServe v1 `instances`), so a
stream message and REST `POST /` or `POST /v2/infer` read exactly as the URL form would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.codec.rest import new_id
from app.errors import InvalidInput

#: What the body may ask for; `infer` when it names none. `predict` is MLRun's name for infer.
OPERATIONS = ("infer", "predict", "infer_dict", "explain", "ready", "metadata")
#: The keys that route a body; the operation's form never sees them.
ROUTING_KEYS = ("model", "version", "operation")


@dataclass(frozen=True, slots=True)
class Route:
    """Where a body-routed request goes, and the body its operation reads."""

    model: str
    version: str | None
    operation: str
    id: str  # the answer's id: the transport's, else the body's, else a new one
    payload: Mapping[str, Any]  # the body without the routing keys, `id` set to `id`


def route_from_body(payload: Any, transport_id: str | None = None) -> Route:
    """Read the routing keys of a body-routed request.

    `model` is a name or `name:version` (as `GET /v2/models` lists them); `version` may also
    be given on its own. `transport_id` (a Kafka key, a Redis field) wins over the body's `id`,
    as in MLServer's Kafka server. Raises `InvalidInput` for a body that is not an object, no
    or a non-string model, conflicting versions, or an unknown operation.
    """
    if not isinstance(payload, Mapping):
        raise InvalidInput("a body-routed request must be a JSON object naming its 'model'")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidInput("the request names no 'model' (a name, or 'name:version')")
    version = payload.get("version")
    if version is not None and not isinstance(version, str | int):
        raise InvalidInput("'version' must be a string")
    version = None if version is None else str(version)
    name, _, named_version = model.partition(":")
    if named_version:
        if version is not None and version != named_version:
            raise InvalidInput(
                f"'model' names version '{named_version}' but 'version' says '{version}'"
            )
        version = named_version
    operation = payload.get("operation", "infer")
    if operation not in OPERATIONS:
        raise InvalidInput(
            f"unknown operation {operation!r}; one of: {', '.join(OPERATIONS)} (default infer)"
        )
    body_id = payload.get("id")
    rest = {key: value for key, value in payload.items() if key not in ROUTING_KEYS}
    if transport_id:
        request_id = rest["id"] = transport_id
    elif isinstance(body_id, str) and body_id:
        request_id = body_id
    else:  # a body id of another type stays, for the operation's envelope to refuse
        request_id = new_id()
        if not body_id:
            rest["id"] = request_id
    return Route(name, version, operation, request_id, rest)
