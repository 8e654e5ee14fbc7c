"""MQTT v5 streams (paho-mqtt): one shared subscription for every worker, QoS 1, manual acks.

Every worker subscribes to `$share/<group>/<input>`, so the broker hands each message to one
of them. A message is acknowledged (PUBACK) only when the broker has acknowledged its answer,
published with QoS 1 to the request's Response Topic, else to `output`. The answer carries the
request's Correlation Data back, and user properties `id` and `status`.

A broker sends an unacknowledged message again only to the session it was sent to, when that
session reconnects; a killed worker's session would hold its messages until it expired. So
sessions are persistent (`clean_start=False`, `session_expiry` seconds) and named by a slot
(`streams.slots`) rather than a pid: the worker gunicorn starts in a dead one's place takes its
slot, reconnects as its client, and gets its messages (mosquitto also queues the messages it
routes to the session while it is away: tests/e2e/test_streams_e2e.py kills a worker).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from flask import Flask
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from config.streams import StreamSettings
from streams.core import Consumer, Reply, log
from streams.slots import Slot

# What an answer needs of the message it answers: its id and QoS to acknowledge it, the topic and
# correlation data to publish to.
Request = tuple[int, int, str, bytes | None]


class MqttConsumer(Consumer):
    """A shared-subscription consumer whose client id is its worker's slot."""

    def __init__(self, app: Flask, stream: StreamSettings, slot_dir: Path) -> None:
        super().__init__(app, stream)
        self._slot_dir = slot_dir
        self._slot: Slot | None = None
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()
        self._answers: dict[int, tuple[int, int, Reply]] = {}  # answer mid -> request mid, qos
        self._early: set[int] = set()  # answers the broker acknowledged before we saw the mid
        self._connected = threading.Event()

    @property
    def client_id(self) -> str:
        """This worker's MQTT client id: the same for the worker that replaces it."""
        prefix = self.stream.client_id or socket.gethostname()
        number = self._slot.number if self._slot is not None else 0
        return f"{prefix}-{self.stream.group}-{number}"

    def run(self) -> None:
        """Connect with the slot's persistent session and consume until stopping."""
        if self._slot is None:
            name = "".join(c if c.isalnum() else "_" for c in self.stream.name)
            self._slot = Slot(self._slot_dir, f"mqtt-{name}")
        url = urlsplit(self.stream.url)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if url.username:
            client.username_pw_set(url.username, url.password)
        if url.scheme == "mqtts":
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.stream.session_expiry
        # The broker never has more unacknowledged messages out to us than we answer at once.
        properties.ReceiveMaximum = self.stream.concurrency
        client.connect(
            url.hostname or "localhost",
            url.port or (8883 if url.scheme == "mqtts" else 1883),
            clean_start=False,
            properties=properties,
        )
        self._client = client
        client.loop_start()
        self.stopping.wait()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.warning("stream %s: MQTT connect refused: %s", self.stream.name, reason)
            return
        client.subscribe(f"$share/{self.stream.group}/{self.stream.input}", qos=1)
        self._connected.set()
        log.info("stream %s: consuming as MQTT client %s", self.stream.name, self.client_id)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if self.stopping.is_set():
            return  # not taken, not acknowledged: the session sends it again
        try:
            self._take(message)
        except Exception:  # paho's network thread must live on; the message stays unacked
            log.exception("stream %s: a message could not be taken", self.stream.name)

    def _take(self, message: mqtt.MQTTMessage) -> None:
        properties = getattr(message, "properties", None)
        correlation = getattr(properties, "CorrelationData", None)
        topic = getattr(properties, "ResponseTopic", None) or self.stream.output
        transport_id = None
        if correlation:
            try:
                transport_id = bytes(correlation).decode()
            except UnicodeDecodeError:
                transport_id = None
        request: Request = (message.mid, message.qos, topic, correlation)
        self.pool.acquire(timeout=None)  # free within one answer: ReceiveMaximum bounds us
        self.pool.submit(
            self.handle,
            message.payload,
            lambda reply: self._publish(reply, request),
            transport_id=transport_id,
        )

    def _publish(self, reply: Reply, request: Request) -> None:
        mid, qos, topic, correlation = request
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ContentType = reply.content_type
        if correlation:
            properties.CorrelationData = bytes(correlation)
        user = [("id", reply.id), ("status", str(reply.status))]
        if reply.json_length is not None:
            user.append(("json_length", str(reply.json_length)))
        properties.UserProperty = user
        client = self._client
        assert client is not None  # a message came through it
        info = client.publish(topic, reply.body, qos=1, properties=properties)
        # paho calls on_publish holding its own lock: ours is never held while calling paho.
        with self._lock:
            early = info.mid in self._early
            self._early.discard(info.mid)
            if not early:
                self._answers[info.mid] = (mid, qos, reply)
        if early:
            self._acknowledge(mid, qos, reply)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            request = self._answers.pop(mid, None)
            if request is None:
                self._early.add(mid)
                return
        self._acknowledge(*request)

    def _acknowledge(self, mid: int, qos: int, reply: Reply) -> None:
        """The broker holds the answer: acknowledge the request, and count the answer."""
        client = self._client
        if client is not None:
            client.ack(mid, qos)
        self.answerer.answered(reply)

    def close(self, grace: float) -> None:
        """Wait for the last answers' acknowledgements, then disconnect, keeping the session."""
        client = self._client
        if client is None:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with self._lock:
                if not self._answers:
                    break
            time.sleep(0.05)
        client.disconnect()
        client.loop_stop()
        self._client = None
        if self._slot is not None:
            self._slot.release()
