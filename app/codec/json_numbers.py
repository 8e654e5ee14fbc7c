"""Large OIP JSON bodies read by simdjson, their floating-point `data` straight into numpy.

orjson turns a JSON array of a million numbers into a million Python floats before numpy sees
one; W4-json (FP32 [1, 1048576], 6 MB of JSON) spent most of its time there (bench/, cProfile).
simdjson parses the body into its own tape, and `Array.as_buffer` copies a numeric array's
values into one C buffer of doubles: numpy reads that without a Python object per element.

This fast path only answers what orjson would answer, and otherwise steps aside (`loads`
returns None and the caller parses with orjson, so every refusal keeps orjson's message). It
takes a body only when all of these hold:

- it is at least `MIN_BYTES` long (smaller bodies gain nothing; W1 and W3 never come here);
- simdjson parses it (in every case tested, simdjson accepts nothing orjson refuses but a
  byte order mark, refused here; what simdjson refuses goes to orjson: huge integers, lone
  surrogates, depth 1024, ...);
- it is an object whose `inputs` is a list of objects, each with a FP16/FP32/FP64 `datatype`
  and a `data` array whose leaves are all numbers (no null, bool or string), the top object
  and each input without duplicate keys (orjson keeps the last, a simdjson lookup the first);
- no `data` array holds a nested array: every JSON array begins with a `[` byte outside any
  string, so when the body holds exactly as many `[` bytes as the envelope and the `data`
  arrays are arrays, no `data` array nests another (nested `data` is orjson's, as before; a
  body with more than `MAX_ARRAYS` of them, or naming no float datatype, is not even parsed);
- every value is below 2**53 in magnitude once in the tensor's dtype (so also finite), where
  each integer is a double exactly: a value is then rounded once, double to dtype, as orjson's
  double (or int, through numpy) is rounded; an FP16 value past its range goes to orjson.

Everything but `data` becomes the plain Python values orjson would make, so the marshmallow
envelope checks see the same objects; each `data` becomes a `JsonNumbers`.

The rules above rely on pysimdjson 7.0.2's behaviour (`as_buffer` flattens nested arrays and
refuses non-number leaves with TypeError; a lookup by key finds the first duplicate), checked
by `tests/app/codec/test_json_numbers.py`; the pin test fails on any other version.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import simdjson

from app.codec.datatypes import dtype_from_datatype

#: Bodies smaller than this go to orjson without a look: W1 and W3 pay one length test.
MIN_BYTES = 64 * 1024
#: A thread's parser keeps the buffers of the largest body it parsed; larger bodies get a parser
#: of their own, freed with the request, so no thread holds more than about four times this
#: (measured: 28 MiB kept after a 7 MiB body).
REUSE_BYTES = 8 * 1024 * 1024
FLOAT_DATATYPES = frozenset({"FP16", "FP32", "FP64"})
_FLOAT_NAMES = tuple(f'"{name}"'.encode() for name in sorted(FLOAT_DATATYPES))
#: Bodies with more `[` bytes go to orjson unparsed: a flat body has two per input (its shape
#: and data) and a few in its envelope; nested rows have one per row.
MAX_ARRAYS = 64
_OPEN = ord("[")
_BOM = b"\xef\xbb\xbf"  # orjson refuses a byte order mark; simdjson skips it
_EXACT = 2.0**53  # every integer below this is exactly a double
_local = threading.local()

#: The library version whose behaviour the rules mirror (tests/app/test_library_pins.py).
WRITTEN_FOR = ("pysimdjson", "7.0.2")


@dataclass(frozen=True, slots=True)
class JsonNumbers:
    """A flat JSON array of numbers, already in its tensor's dtype, read without a Python object
    per element: each value rounded once from its double, as orjson's path rounds it."""

    array: np.ndarray


def loads(body: bytes | bytearray) -> dict[str, Any] | None:
    """The parsed body with `JsonNumbers` for float `data`, or None: parse it with orjson."""
    if len(body) < MIN_BYTES or body.startswith(_BOM):
        return None
    # Two scans of the bytes (about 1 ms each on W4) keep the bodies this path would refuse
    # after parsing from costing a parse: nested rows (many `[`), and bodies that name no float
    # datatype (BYTES, INT64, ...). Either only sends a body to orjson.
    opens = int(np.count_nonzero(np.frombuffer(body, dtype=np.uint8) == _OPEN))
    if opens > MAX_ARRAYS or not any(name in body for name in _FLOAT_NAMES):
        return None
    parser = _take_parser()
    try:
        document = parser.parse(body)
    except (ValueError, RuntimeError):  # simdjson's errors; UnicodeDecodeError is a ValueError
        _give_back(parser, body)
        return None
    # The proxies read the parser's tape, which its next parse overwrites (pysimdjson refuses to
    # parse again while one is alive). Nothing built here keeps one: plain values and copied
    # buffers only. The parser goes back only once they are gone; after an exception (whose
    # traceback may hold some) the thread's next body gets a new parser.
    payload = _payload(document, opens)
    del document
    _give_back(parser, body)
    return payload


def _take_parser() -> simdjson.Parser:
    parser: simdjson.Parser | None = getattr(_local, "parser", None)
    _local.parser = None
    return parser if parser is not None else simdjson.Parser()


def _give_back(parser: simdjson.Parser, body: bytes | bytearray) -> None:
    if len(body) <= REUSE_BYTES:
        _local.parser = parser


def _payload(document: Any, opens: int) -> dict[str, Any] | None:
    if not _unique_object(document):
        return None
    inputs = document.get("inputs")
    if not isinstance(inputs, simdjson.Array):
        return None
    payload = {key: _plain(document[key]) for key in document if key != "inputs"}
    tensors: list[dict[str, Any]] = []
    for item in inputs:
        tensor = _tensor(item)
        if tensor is None:
            return None
        tensors.append(tensor)
    payload["inputs"] = tensors
    # One `[` for each `data`, and one for each list of the envelope (`inputs` among them).
    arrays = len(tensors) + _lists(payload)
    return payload if opens == arrays else None


def _tensor(item: Any) -> dict[str, Any] | None:
    if not _unique_object(item):
        return None
    data, datatype = item.get("data"), item.get("datatype")
    if datatype not in FLOAT_DATATYPES or not isinstance(data, simdjson.Array):
        return None
    if len(data) and isinstance(data[0], simdjson.Array):
        return None  # nested rows: the `[` count would refuse them after the copy below
    try:
        buffer = data.as_buffer(of_type="d")
    except TypeError:  # a leaf that is not a number
        return None
    # Past the dtype's range a value becomes inf, as the `array` module makes it on orjson's
    # path (FP32), without numpy's overflow warning; inf then fails the test below.
    with np.errstate(over="ignore"):
        doubles = np.frombuffer(buffer, dtype=np.float64)  # the buffer outlives the parser's tape
        array = doubles.astype(dtype_from_datatype(datatype), copy=False)
    # Rounding keeps order, so a value at 2**53 or more stays there in any float dtype (compared
    # as Python floats: 2**53 as an FP16 scalar would overflow).
    if array.size and not (-_EXACT < float(array.min()) and float(array.max()) < _EXACT):
        return None
    tensor = {key: _plain(item[key]) for key in item if key != "data"}
    tensor["data"] = JsonNumbers(array)
    return tensor


def _unique_object(value: Any) -> bool:
    return isinstance(value, simdjson.Object) and len(set(value)) == len(value)


def _plain(value: Any) -> Any:
    """A simdjson value as orjson would have made it (nested duplicate keys: the last wins)."""
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


def _lists(value: Any) -> int:
    """The JSON arrays in an envelope value (small: `data` is not in it)."""
    if isinstance(value, dict):
        return sum(_lists(item) for item in value.values())
    if isinstance(value, list):
        return 1 + sum(_lists(item) for item in value)
    return 0
