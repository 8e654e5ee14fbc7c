"""The envelope fast path accepts nothing marshmallow refuses, and returns what it would use."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.codec import envelopes, schemas
from app.errors import InvalidInput

TENSOR = {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(value, json_values)


tensors = st.fixed_dictionaries(
    {},
    optional={
        "name": _maybe(st.text(max_size=5)),
        "shape": _maybe(st.lists(st.integers(-1, 5), max_size=3)),
        "datatype": _maybe(st.sampled_from(["FP32", "INT64"])),
        "parameters": _maybe(st.dictionaries(st.text(max_size=3), json_values, max_size=2)),
        "data": json_values,
        "extra": json_values,
    },
)
outputs = st.fixed_dictionaries(
    {}, optional={"name": _maybe(st.text(max_size=3)), "parameters": json_values}
)
envelopes_ = st.fixed_dictionaries(
    {},
    optional={
        "id": _maybe(st.text(max_size=3)),
        "parameters": _maybe(st.dictionaries(st.text(max_size=3), json_values, max_size=2)),
        "inputs": _maybe(st.lists(_maybe(tensors), max_size=2)),
        "outputs": _maybe(st.lists(_maybe(outputs), max_size=2)),
    },
)


def _marshmallow_accepts(schema: Any, payload: Any) -> bool:
    try:
        schemas.load(schema, payload)
    except InvalidInput:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(envelopes_ | json_values)
def test_an_accepted_envelope_is_one_marshmallow_accepts(payload: Any) -> None:
    if envelopes._infer_request_ok(payload):
        assert _marshmallow_accepts(schemas.INFER_REQUEST, payload)


@settings(max_examples=400, deadline=None)
@given(st.lists(tensors | json_values, max_size=3) | json_values)
def test_accepted_tensors_are_ones_marshmallow_accepts(items: Any) -> None:
    if type(items) is list and all(envelopes._tensor_ok(item) for item in items):
        assert _marshmallow_accepts(schemas.INPUT_TENSORS, items)


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({}, optional={"instances": json_values, "inputs": json_values}))
def test_v1_fast_path_agrees(payload: Any) -> None:
    try:
        envelopes.v1_request(payload)
    except InvalidInput:
        assert not _marshmallow_accepts(schemas.V1_REQUEST, payload)
    else:
        assert _marshmallow_accepts(schemas.V1_REQUEST, payload)


def test_a_well_formed_request_takes_the_fast_path_and_keeps_its_values() -> None:
    payload = {"id": "a", "inputs": [TENSOR], "outputs": [{"name": "y"}], "parameters": {}}
    assert envelopes.infer_request(payload) is payload
    assert envelopes.input_tensors(payload["inputs"]) is payload["inputs"]
    validated = schemas.load(schemas.INFER_REQUEST, payload)
    assert {key: payload[key] for key in validated} == validated


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"inputs": [TENSOR], "id": None}, "id: Field may not be null."),
        ({"inputs": None}, "inputs: Field may not be null."),
        ([TENSOR], "request body must be a JSON object"),
    ],
)
def test_bad_envelopes_get_marshmallows_messages(payload: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        envelopes.infer_request(payload)


def test_bad_tensors_get_marshmallows_messages() -> None:
    with pytest.raises(InvalidInput, match=r"0\.shape\.0: Not a valid integer"):
        envelopes.input_tensors([{**TENSOR, "shape": [True, 4]}])
