"""Large JSON float tensors read by simdjson (`app.codec.json_numbers`) answer as orjson's path.

Every body is read twice, by `parse_infer_json` and by `parse_json` (orjson alone, the path
before simdjson), and both must end in the same tensors or the same error. Each case also says
which path it must take, so a fast path that never engages, or one that takes a body it cannot
answer exactly, fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from flask.testing import FlaskClient

from app.codec import forms, json_numbers
from app.codec.json_numbers import JsonNumbers
from app.codec.rest import parse_infer_json, parse_json
from app.errors import InvalidInput

N = 16_384  # enough numbers for a body past json_numbers.MIN_BYTES
RNG = np.random.default_rng(16)
VALUES = RNG.standard_normal(N)


def body(data: Any, datatype: str = "FP32", shape: Any = None, extra: bytes = b"") -> bytes:
    """An OIP body with one input named `a`; `extra` goes after `inputs` in the envelope."""
    values = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)
    dims = orjson.dumps([len(data)] if shape is None else shape)
    head = b'{"inputs":[{"name":"a","shape":' + dims + b',"datatype":"' + datatype.encode()
    return head + b'","data":' + values + b"}]" + extra + b"}"


def answer(parse: Any, raw: bytes) -> Any:
    """The request's tensors (name, datatype, dtype, shape, content), or the error it raises."""
    try:
        payload = parse(raw)
        request = forms.request_from_body(
            "m", None, payload, None, data_roots=[Path("/nowhere")], limit=1 << 30
        )
    except InvalidInput as exc:
        return f"InvalidInput: {exc}"
    return [
        (t.name, t.datatype, str(t.data.dtype), t.data.shape, _content(t.data))
        for t in request.inputs
    ]


def _content(array: np.ndarray) -> Any:
    """Bytes for numbers (so -0.0 and 0.0 differ), the objects themselves for BYTES."""
    return array.tolist() if array.dtype == object else array.tobytes()


def floats(values: np.ndarray) -> list[Any]:
    return [float(value) for value in values]


FAST = {
    "FP32": body(VALUES),
    "FP64": body(VALUES, "FP64"),
    "FP16": body(VALUES, "FP16"),
    "integers in FP32": body(list(range(N))),
    "integers mixed with floats": body([1, *floats(VALUES[1:]), -(2**40) - 1]),
    "integers just below 2**53 in FP64": body([2**53 - 1, -(2**53) + 1] * (N // 2), "FP64"),
    "wrong count for shape": body(VALUES, shape=[N + 1]),
    "shape of two dimensions": body(VALUES, shape=[2, N // 2]),
    "shape that does not fit": body(VALUES, shape=[3, N // 3]),
    "negative shape": body(VALUES, shape=[-1]),
    "float in shape": body(VALUES, shape=[float(N)]),
    "outputs and parameters": body(
        VALUES, extra=b',"outputs":[{"name":"o"}],"parameters":{"k":[1,[2]]},"id":"x"'
    ),
    "bad outputs": body(VALUES, extra=b',"outputs":[{"nom":"o"}]'),
    "null id": body(VALUES, extra=b',"id":null'),
    "empty data": body([]) + b" " * json_numbers.MIN_BYTES,
    "zero, minus zero, extremes": body(
        [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 2.0**52 + 1, -(2.0**52) - 1, 1e-400, 0.1, 1, 0]
        * 2048
    ),
}
SLOW = {
    "nested rows": body(VALUES.reshape(-1, 2), shape=[N // 2, 2]),
    "two nested rows": body(VALUES.reshape(2, -1), shape=[2, N // 2]),
    "rows of one": body([[value] for value in floats(VALUES)], shape=[N, 1]),
    "ragged rows": body([[], [1.0, 2.0], *floats(VALUES)], shape=[N + 2]),
    "row with an empty row": body([[1.0], [], *floats(VALUES)], shape=[N + 1]),
    "null for NaN": body([*floats(VALUES), None]),
    "a bool": body([*floats(VALUES), True]),
    "a string": body([*floats(VALUES), "1.0"]),
    "past FP16's range": body([*floats(VALUES), 1e6, -1e6], "FP16"),
    "past FP32's range (and 2**53)": body([*floats(VALUES), 1e300, -1e300]),
    "FP32 rounds it to 2**53": body([*floats(VALUES), 2**53 - 1]),
    "an integer past 2**53": body([*floats(VALUES), 2**53 + 1]),
    "integers past 2**53": body([2**53 + 1] * N),
    "an integer past 64 bits": body(VALUES, shape=[N + 1]).replace(
        b"]}]", b",18446744073709551616]}]"
    ),
    "a negative integer past 64 bits": body(VALUES, shape=[N + 1]).replace(
        b"]}]", b",-9223372036854775809]}]"
    ),
    "datatype not known": body(VALUES, "FP8"),
    "datatype an object": body(VALUES).replace(b'"FP32"', b'{"FP32":1}'),
    "INT64": body(list(range(N)), "INT64"),
    "BOOL": body([True] * N, "BOOL"),
    "BYTES": body(["word"] * N, "BYTES"),
    "two inputs, one INT32": body(VALUES)[:-2]
    + b',{"name":"b","shape":[1],"datatype":"INT32","data":[1]}]}',
    "a bracket in a string": body(VALUES, extra=b',"id":"[x"'),
    "duplicate inputs": body(VALUES)[:-1] + b',"inputs":[]}',
    "duplicate data": body(VALUES)[:-3] + b',"data":[1.0]}]}',
    "byte order mark": b"\xef\xbb\xbf" + body(VALUES),
    "truncated": body(VALUES)[:-5],
    "NaN literal": body(VALUES).replace(b"]}]", b",NaN]}]"),
    "trailing comma": body(VALUES).replace(b"]}]", b",]}]"),
    "lone surrogate": body(VALUES, extra=b',"id":"\\ud800"'),
    "invalid UTF-8": body(VALUES, extra=b',"id":"\xff"'),
    "plain rows": orjson.dumps({"inputs": [floats(VALUES)]}),
    "not an object": orjson.dumps([floats(VALUES)]),
    "no inputs": orjson.dumps({"data": floats(VALUES)}),
    "data_url": orjson.dumps({"data_url": "x", "pad": floats(VALUES)}),
}


@pytest.mark.parametrize("raw", FAST.values(), ids=FAST.keys())
def test_fast_path_answers_as_orjson(raw: bytes) -> None:
    assert len(raw) >= json_numbers.MIN_BYTES
    payload = json_numbers.loads(raw)
    assert payload is not None, "this body should take the simdjson path"
    assert all(isinstance(item["data"], JsonNumbers) for item in payload["inputs"])
    assert answer(parse_infer_json, raw) == answer(parse_json, raw)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # FP16, orjson
@pytest.mark.parametrize("raw", SLOW.values(), ids=SLOW.keys())
def test_other_bodies_go_to_orjson(raw: bytes) -> None:
    assert len(raw) >= json_numbers.MIN_BYTES
    assert json_numbers.loads(raw) is None
    assert answer(parse_infer_json, raw) == answer(parse_json, raw)


def test_errors_keep_their_messages() -> None:
    assert answer(parse_infer_json, FAST["wrong count for shape"]) == (
        f"InvalidInput: input 'a': shape [{N + 1}] needs {N + 1} elements, data has {N}"
    )
    assert answer(parse_infer_json, SLOW["a string"]) == (
        "InvalidInput: input 'a': data is not a regular array of FP32 values"
    )
    assert answer(parse_infer_json, SLOW["truncated"]).startswith(
        "InvalidInput: request body is not valid JSON: unexpected end of data"
    )


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64"])
def test_every_double_rounds_as_orjson_rounds_it(datatype: str) -> None:
    # Random bit patterns below the fast path's bound (FP16: its largest value): every exponent
    # there, subnormals of every width, values that round to zero in FP16 and FP32.
    bits = RNG.integers(0, 2**64, size=8 * N, dtype=np.uint64).view(np.float64)
    bound = 65504.0 if datatype == "FP16" else 2.0**53
    kept = bits[np.isfinite(bits) & (np.abs(bits) < bound)]
    tiny = RNG.standard_normal(N) * 10.0 ** RNG.integers(-330, 0, size=N)
    raw = body(np.concatenate([kept, tiny]), datatype)
    fast = parse_infer_json(raw)["inputs"][0]["data"]
    assert isinstance(fast, JsonNumbers)
    assert answer(parse_infer_json, raw) == answer(parse_json, raw)


def test_big_bodies_parse_with_a_parser_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_numbers, "REUSE_BYTES", json_numbers.MIN_BYTES)
    raw = FAST["FP32"]
    assert isinstance(json_numbers.loads(raw)["inputs"][0]["data"], JsonNumbers)  # type: ignore[index]
    assert answer(parse_infer_json, raw) == answer(parse_json, raw)


def test_small_bodies_stay_with_orjson() -> None:
    assert json_numbers.loads(body(floats(VALUES[:100]))) is None


def test_a_reused_parser_leaves_earlier_payloads_intact() -> None:
    first = parse_infer_json(FAST["FP32"])
    parse_infer_json(FAST["FP64"].replace(b'"a"', b'"b"'))
    assert first["inputs"][0]["name"] == "a"
    np.testing.assert_array_equal(first["inputs"][0]["data"].array, VALUES.astype(np.float32))


def test_infer_route_answers_the_same_either_way(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix = RNG.random((4, N // 4), dtype=np.float32)
    payload = {
        "id": "1",
        "inputs": [
            {
                "name": "input-0",
                "shape": [4, N // 4],
                "datatype": "FP32",
                "data": matrix.reshape(-1),
            }
        ],
    }
    raw = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    headers = {"Content-Type": "application/json"}
    fast = client.post("/v2/models/sum/infer", data=raw, headers=headers)
    assert fast.status_code == 200, fast.text
    expected = matrix.sum(axis=1, dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(fast.json["outputs"][0]["data"], np.float32), expected)
    bad = client.post("/v2/models/sum/infer", data=FAST["wrong count for shape"], headers=headers)
    monkeypatch.setattr(json_numbers, "loads", lambda raw: None)
    assert client.post("/v2/models/sum/infer", data=raw, headers=headers).data == fast.data
    slow_bad = client.post(
        "/v2/models/sum/infer", data=FAST["wrong count for shape"], headers=headers
    )
    assert (bad.status_code, bad.data) == (slow_bad.status_code, slow_bad.data)
    assert bad.status_code == 400


def test_a_parser_still_held_after_a_failure_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    kept: list[Any] = []  # as a traceback would keep the failed call's document alive

    def fail(document: Any, raw: bytes) -> None:
        kept.append(document)
        raise RuntimeError("boom")

    monkeypatch.setattr(json_numbers, "_payload", fail)
    with pytest.raises(RuntimeError, match="boom"):
        json_numbers.loads(FAST["FP32"])
    monkeypatch.undo()
    payload = json_numbers.loads(FAST["FP32"])
    assert payload is not None and isinstance(payload["inputs"][0]["data"], JsonNumbers)
    assert kept


@pytest.mark.parametrize("case", ["nested rows", "rows of one", "INT64", "BYTES", "BOOL"])
def test_bodies_it_would_refuse_are_not_parsed(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parser() -> None:
        raise AssertionError("parsed a body that only orjson can answer")

    monkeypatch.setattr(json_numbers, "_take_parser", no_parser)
    assert json_numbers.loads(SLOW[case]) is None
