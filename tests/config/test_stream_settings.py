"""The `streams:` section: defaults, environment variables, and errors reported by entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import ConfigError, Settings, settings_from_dict
from config.streams import StreamSettings

MODELS = [{"name": "echo", "runtime": "python", "class": "examples.echo:EchoModel"}]


def _settings(streams: object, environ: dict[str, str] | None = None) -> Settings:
    return settings_from_dict({"models": MODELS, "streams": streams}, Path("."), environ or {})


def _load(streams: object, environ: dict[str, str] | None = None) -> tuple[StreamSettings, ...]:
    return _settings(streams, environ).streams


def test_an_entry_gets_defaults_and_a_name() -> None:
    (stream,) = _load([{"kind": "redis", "url": "redis://h:6379/0", "input": "a", "output": "b"}])
    assert (stream.name, stream.group, stream.concurrency) == ("redis:a", "modelport", 8)
    assert (stream.claim_idle_ms, stream.session_expiry, stream.options) == (30000, 3600, {})


def test_variables_are_read_from_the_environment() -> None:
    entry = {"kind": "kafka", "url": "${BROKER}", "input": "in", "output": "out",
             "options": {"security.protocol": "${PROTO:-plaintext}"}}  # fmt: skip
    (stream,) = _load([entry], {"BROKER": "kafka://k1:9092,k2:9092"})
    assert stream.url == "kafka://k1:9092,k2:9092"
    assert stream.options == {"security.protocol": "plaintext"}


def test_no_section_means_no_streams() -> None:
    assert settings_from_dict({"models": MODELS}, Path("."), {}).streams == ()


def test_an_unknown_key_is_a_warning_and_the_stream_is_kept() -> None:
    entry = {"kind": "redis", "url": "redis://h:1", "input": "a", "output": "b", "x": 1}
    settings = _settings([entry])
    assert [stream.name for stream in settings.streams] == ["redis:a"]
    assert settings.warnings == ("streams[0].x: unknown key, ignored",)


@pytest.mark.parametrize(
    ("streams", "message"),
    [
        ({"kind": "mqtt"}, "streams: must be a list"),
        ([{"kind": "amqp", "url": "amqp://h", "input": "a", "output": "b"}], "streams[0].kind"),
        ([{"kind": "mqtt", "url": "redis://h:1", "input": "a", "output": "b"}], "mqtt://host"),
        ([{"kind": "mqtt", "url": "mqtt://h:1", "input": "a"}], "streams[0].output"),
        ([{"kind": "redis", "url": "redis://h:1", "input": "a", "output": "b",
           "options": {"a": 1}}], "only kind kafka takes options"),
        ([{"kind": "mqtt", "url": "mqtt://h:1", "input": "a", "output": "b",
           "concurrency": 0}], "streams[0].concurrency"),
        ([{"kind": "mqtt", "url": "mqtt://h:1", "input": "a", "output": "b"}] * 2,
         "streams[1].name: 'mqtt:a' is used twice"),
        ([{"kind": "mqtt", "url": "${NOPE}", "input": "a", "output": "b"}], "'NOPE' is not set"),
    ],
)  # fmt: skip
def test_a_bad_entry_stops_the_server_by_name(streams: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _load(streams)
