"""The README's curl commands, run against `make run`'s config, answer what the README shows.

The example models are trained when `make run`/`make test` runs, so the last digits of their
probabilities and attributions follow the machine's BLAS kernels: answers are compared by
structure (keys, names, shapes, datatypes and integers exactly), floats within `RTOL`/`ATOL`,
and `<uuid4>` placeholders by form.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import orjson
import pytest
import requests

from config.settings import DEFAULT_CONFIG
from tests.server import ROOT, GunicornServer

pytestmark = pytest.mark.e2e

_COMMAND = re.compile(r"^\$ (curl .*)$")
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
RTOL = 1e-4
ATOL = 1e-6


def readme_examples() -> list[tuple[str, str]]:
    """(curl command, expected output) pairs from the README's console blocks."""
    lines = (ROOT / "README.md").read_text().splitlines()
    pairs = []
    for index, line in enumerate(lines):
        match = _COMMAND.match(line)
        if match:
            pairs.append((match.group(1), lines[index + 1]))
    return pairs


@pytest.fixture(scope="module")
def default_server() -> Iterator[GunicornServer]:
    with GunicornServer(config=DEFAULT_CONFIG, workers=1) as running:
        yield running


def run_curl(command: str, base: str) -> requests.Response:
    """Run a `curl -s URL [-d BODY]` line with requests, as curl would send it."""
    words = shlex.split(command)
    url = next(w for w in words if w.startswith("localhost:"))
    url = base + url.removeprefix("localhost:8080")
    if "-d" in words:
        body = words[words.index("-d") + 1]
        # curl -d sends application/x-www-form-urlencoded, as in the KServe documentation.
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return requests.post(url, data=body, headers=headers, timeout=10)
    return requests.get(url, timeout=10)


def test_the_readme_has_examples() -> None:
    assert len(readme_examples()) >= 8


@pytest.mark.parametrize(("command", "expected"), readme_examples())
def test_readme_example(default_server: GunicornServer, command: str, expected: str) -> None:
    response = run_curl(command, default_server.url)
    assert response.status_code == 200
    assert_matches(response.json(), orjson.loads(expected))


def assert_matches(got: object, want: object, path: str = "$") -> None:
    """`got` has `want`'s structure exactly, floats within tolerance; `path` names a mismatch."""
    if want == "<uuid4>":
        assert isinstance(got, str) and _UUID4.fullmatch(got), f"{path}: {got!r} is not a uuid4"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{path}: keys {got!r}"
        for key, value in want.items():
            assert_matches(got[key], value, f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: {got!r}"
        for index, (item, wanted) in enumerate(zip(got, want, strict=True)):
            assert_matches(item, wanted, f"{path}[{index}]")
    elif isinstance(want, float):
        assert isinstance(got, float), f"{path}: {got!r} is not a float"
        assert got == pytest.approx(want, rel=RTOL, abs=ATOL), f"{path}: {got} != {want}"
    else:
        # Integers (labels, shapes), strings, booleans and null compare exactly, type included.
        assert type(got) is type(want) and got == want, f"{path}: {got!r} != {want!r}"


@pytest.mark.parametrize(
    ("got", "want"),
    [
        ({"a": [1, 2]}, {"a": [1, 3]}),
        ({"a": 1}, {"a": 1, "b": 2}),
        ([0.5], [0.6]),
        ([1.0], [1]),
        ({"id": "q1"}, {"id": "<uuid4>"}),
        ({"ready": 1}, {"ready": True}),
    ],
)
def test_a_different_answer_does_not_match(got: object, want: object) -> None:
    with pytest.raises(AssertionError):
        assert_matches(got, want)


def test_float_digits_and_uuids_match_by_tolerance_and_form() -> None:
    assert_matches(
        {"id": "0b7f3f8e-57a2-4d4e-9a51-1f4a2b3c4d5e", "data": [0.80217291, 1e-9]},
        {"id": "<uuid4>", "data": [0.80217284, 0.0]},
    )
