"""The README's curl commands, run against `make run`'s config, answer what the README shows."""

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
    got = response.json()
    want = orjson.loads(expected)
    if isinstance(want, dict) and want.get("id") == "<uuid4>":
        assert re.fullmatch(r"[0-9a-f-]{36}", got.pop("id"))
        want.pop("id")
    assert got == want
