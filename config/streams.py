"""The `streams:` section: message-broker consumers that feed the models (`streams/`).

Each entry reads body-routed requests (`app.codec.routed`) from one input topic or stream and
publishes every answer to an output one. Validated here, into frozen settings, so a typo stops
the server at start with the entry's name instead of a consumer failing later in each worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

KINDS = ("mqtt", "redis", "kafka")
#: The URL scheme each kind accepts (`rediss`, `mqtts`: TLS).
SCHEMES = {"mqtt": ("mqtt", "mqtts"), "redis": ("redis", "rediss"), "kafka": ("kafka",)}


@dataclass(frozen=True)
class StreamSettings:
    """One `streams:` entry."""

    name: str  # the metrics label and log name
    kind: str  # mqtt | redis | kafka
    url: str  # mqtt://host:1883, redis://host:6379/0, kafka://host:9092[,host:9092]
    input: str  # topic (MQTT, Kafka) or stream key (Redis) requests are read from
    output: str  # where answers are published (an MQTT request's response topic wins)
    group: str = "modelport"  # consumer group; MQTT: the shared subscription's group
    concurrency: int = 8  # messages one worker answers at once, per stream
    claim_idle_ms: int = 30000  # redis: a pending message idle this long is claimed
    session_expiry: int = 3600  # mqtt: seconds the broker keeps a worker's session
    client_id: str | None = None  # mqtt: prefix of the per-worker client ids (default host)
    options: Mapping[str, Any] = field(default_factory=dict)  # kafka: librdkafka settings


class StreamSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(validate=validate.Length(min=1))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    url = fields.String(required=True)
    input = fields.String(required=True, validate=validate.Length(min=1))
    output = fields.String(required=True, validate=validate.Length(min=1))
    group = fields.String(load_default="modelport", validate=validate.Length(min=1))
    concurrency = fields.Integer(load_default=8, validate=validate.Range(min=1, max=1024))
    claim_idle_ms = fields.Integer(load_default=30000, validate=validate.Range(min=100))
    session_expiry = fields.Integer(load_default=3600, validate=validate.Range(min=1))
    client_id = fields.String(load_default=None, allow_none=True)
    options = fields.Dict(keys=fields.String(), load_default=dict)

    @validates_schema
    def _url_fits_kind(self, data: dict[str, Any], **_: Any) -> None:
        url = urlsplit(data["url"])
        schemes = SCHEMES[data["kind"]]
        if url.scheme not in schemes or not url.netloc:
            raise ValidationError(
                f"a {data['kind']} url looks like {schemes[0]}://host:port", "url"
            )
        if data["kind"] == "kafka" and data["options"]:
            return
        if data["options"]:
            raise ValidationError("only kind kafka takes options", "options")


#: Also read by the settings loader, which strips (and warns of) a stream's unknown keys first.
STREAM_SCHEMA = StreamSchema()


def load_streams(raw: Any) -> tuple[StreamSettings, ...]:
    """The validated `streams:` entries of an interpolated tree.

    Raises `marshmallow.ValidationError` (keyed `streams[i]`) for a bad entry or two entries
    with one name; the settings loader reports it as a `ConfigError`.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValidationError({"streams": ["must be a list of streams"]})
    streams: list[StreamSettings] = []
    for index, entry in enumerate(raw):
        try:
            data = STREAM_SCHEMA.load(entry)
        except ValidationError as exc:
            raise ValidationError({f"streams[{index}]": exc.messages}) from None
        name = data.pop("name", None) or f"{data['kind']}:{data['input']}"
        if any(stream.name == name for stream in streams):
            raise ValidationError({f"streams[{index}]": {"name": [f"'{name}' is used twice"]}})
        streams.append(StreamSettings(name=name, **data))
    return tuple(streams)
