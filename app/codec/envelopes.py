"""Request envelopes, validated by marshmallow only when they are not plainly well-formed.

Measured: validating every envelope with marshmallow, W1 (iris [1,4] REST JSON, c=8) served
21 % fewer requests (1,033 vs 1,309 req/s, 12 interleaved rounds of 2 s, bench/). The checks
mirror marshmallow 4.4.0's fields (`WRITTEN_FOR`); the pin test fails on any other version.

The marshmallow schemas (`app.codec.schemas`) are the contract: they document the envelopes
in the OpenAPI document and phrase every validation error. Running them costs about 50 µs per
inference request (one envelope and one list of tensors), a tenth of an iris request's time in
the app (bench/, cProfile). The checks below accept only bodies that those schemas accept too:
each test is as strict as the field it stands for, or stricter (exact JSON types, lists only),
which `tests/app/codec/test_envelopes.py` checks on generated bodies. Every other body, every
invalid one included, goes through marshmallow, so its verdict and messages are unchanged. An
accepted body is returned as parsed; marshmallow would also drop unknown keys, which no reader
looks at.
"""

from __future__ import annotations

from typing import Any, cast

from app.codec import schemas

#: The library version whose field rules the checks mirror (tests/app/test_library_pins.py).
WRITTEN_FOR = ("marshmallow", "4.4.0")


def infer_request(payload: Any) -> dict[str, Any]:
    """An OIP infer envelope (`schemas.INFER_REQUEST`); raises `InvalidInput` like it."""
    if _infer_request_ok(payload):
        return cast("dict[str, Any]", payload)
    return cast("dict[str, Any]", schemas.load(schemas.INFER_REQUEST, payload))


def input_tensors(items: Any) -> list[dict[str, Any]]:
    """The OIP input tensors of an envelope (`schemas.INPUT_TENSORS`)."""
    if type(items) is list and all(_tensor_ok(item) for item in items):
        return cast("list[dict[str, Any]]", items)
    return cast("list[dict[str, Any]]", schemas.load(schemas.INPUT_TENSORS, items))


def v1_request(payload: Any) -> dict[str, Any]:
    """A KServe v1 predict envelope (`schemas.V1_REQUEST`)."""
    if type(payload) is dict and payload.get("instances", 0) is not None:
        if payload.get("inputs", 0) is not None:
            return cast("dict[str, Any]", payload)
    return cast("dict[str, Any]", schemas.load(schemas.V1_REQUEST, payload))


def _optional(payload: dict[str, Any], key: str, kind: type) -> bool:
    """Absent, or present with exactly this JSON type (marshmallow refuses null)."""
    return key not in payload or type(payload[key]) is kind


def _infer_request_ok(payload: Any) -> bool:
    if type(payload) is not dict:
        return False
    inputs = payload.get("inputs")
    if type(inputs) is not list or None in inputs:
        return False
    if not (_optional(payload, "id", str) and _optional(payload, "parameters", dict)):
        return False
    if "outputs" not in payload:
        return True
    outputs = payload["outputs"]
    return type(outputs) is list and all(
        type(output) is dict
        and type(output.get("name")) is str
        and _optional(output, "parameters", dict)
        for output in outputs
    )


def _tensor_ok(item: Any) -> bool:
    if type(item) is not dict:
        return False
    shape = item.get("shape")
    return (
        type(item.get("name")) is str
        and type(item.get("datatype")) is str
        and type(shape) is list
        and all(type(dim) is int and dim >= 0 for dim in shape)
        and _optional(item, "parameters", dict)
        and item.get("data", 0) is not None
    )
