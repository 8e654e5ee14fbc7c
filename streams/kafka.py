"""Kafka streams (confluent-kafka), in MLServer's message format; offsets committed when answered.

A request is a record whose value is the JSON body. As MLServer's Kafka server reads it, the
record key is the request id (it wins over the body's `id`) and the `mlserver-model` and
`mlserver-version` headers name the model; a body that names its own `model`, `version` or
`operation` (the body-routed form) wins over the headers. The answer goes to `output` with the
request id as its key, the request's headers, and `modelport-status` (the REST status).

Records are answered concurrently, so they finish out of order; a partition's committed offset
is its lowest record not yet answered (an answer counts once the broker has acknowledged it).
A worker that dies leaves its uncommitted records to whoever the group gives its partitions:
they are answered again, never lost.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from confluent_kafka import Consumer as KafkaClient
from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition
from flask import Flask

from config.streams import StreamSettings
from streams import metrics
from streams.core import Consumer, Reply, log

#: The MLServer headers that route a record; the body-routed keys they stand for.
ROUTING_HEADERS = {"mlserver-model": "model", "mlserver-version": "version"}
STATUS_HEADER = "modelport-status"
JSON_LENGTH_HEADER = "modelport-json-length"
# A record's headers as confluent-kafka hands them over and takes them back.
Headers = list[tuple[str, str | bytes | None]]
#: Seconds between two commits of answered offsets, and two reads of the group's lag.
COMMIT_SECONDS = 0.2
LAG_SECONDS = 5.0
#: Times an answer is produced again when the broker refused it.
PRODUCE_ATTEMPTS = 3


class Offsets:
    """Per partition, the offsets taken and not yet answered, and the next one to commit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, int], set[int]] = {}
        self._next: dict[tuple[str, int], int] = {}  # one past the highest offset taken
        self._committed: dict[tuple[str, int], int] = {}

    def take(self, topic: str, partition: int, offset: int) -> None:
        """A record was taken for answering."""
        with self._lock:
            self._pending.setdefault((topic, partition), set()).add(offset)
            key = (topic, partition)
            self._next[key] = max(self._next.get(key, 0), offset + 1)

    def done(self, topic: str, partition: int, offset: int) -> None:
        """A record's answer is in the broker."""
        with self._lock:
            self._pending.get((topic, partition), set()).discard(offset)

    def busy(self, partitions: list[tuple[str, int]]) -> bool:
        """Whether any of these partitions still has a record being answered."""
        with self._lock:
            return any(self._pending.get(key) for key in partitions)

    def committable(self) -> list[TopicPartition]:
        """The partitions whose commit position moved since the last call."""
        moved = []
        with self._lock:
            for key, upper in self._next.items():
                pending = self._pending.get(key)
                position = min(pending) if pending else upper
                if self._committed.get(key) != position:
                    self._committed[key] = position
                    moved.append(TopicPartition(key[0], key[1], position))
        return moved

    def forget(self, partitions: list[tuple[str, int]]) -> None:
        """Drop partitions the group took away."""
        with self._lock:
            for key in partitions:
                self._pending.pop(key, None)
                self._next.pop(key, None)
                self._committed.pop(key, None)


class KafkaConsumer(Consumer):
    """A member of the consumer group, answering on its own producer."""

    def __init__(self, app: Flask, stream: StreamSettings) -> None:
        super().__init__(app, stream)
        servers = urlsplit(stream.url).netloc
        identity = f"modelport-{socket.gethostname()}-{os.getpid()}"
        self._config = {"bootstrap.servers": servers, "client.id": identity}
        self._offsets = Offsets()
        self._client: KafkaClient | None = None
        self._producer: Producer | None = None
        # Partitions the group gave us: a record of one it took away is the new owner's.
        self._assigned: set[tuple[str, int]] = set()

    def run(self) -> None:
        """Join the group and consume until stopping."""
        if self._client is not None:  # a retry after a failure: leave the group first
            self._client.close()
        options = dict(self.stream.options)
        self._producer = Producer({**self._config, "linger.ms": 1, **options})
        client = self._client = KafkaClient(
            {
                **self._config,
                "group.id": self.stream.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                **options,
            }
        )
        client.subscribe(
            [self.stream.input],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        log.info("stream %s: consuming in group %s", self.stream.name, self.stream.group)
        committed_at = lag_at = 0.0
        while not self.stopping.is_set():
            self._producer.poll(0)  # delivery reports: answered offsets
            now = time.monotonic()
            if now - committed_at >= COMMIT_SECONDS:
                committed_at = now
                self._commit(asynchronous=True)
            if now - lag_at >= LAG_SECONDS:
                lag_at = now
                self._report(client)
            if not self.pool.acquire(timeout=0.1):
                continue
            message = client.poll(0.1)
            if message is None or not self._take(message):
                self.pool.release()

    def _take(self, message: Message) -> bool:
        """Hand a record to the pool; False for a broker event that is not a record."""
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("stream %s: %s", self.stream.name, error)
            return False
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None and partition is not None and offset is not None  # a record
        if (topic, partition) not in self._assigned:
            return False  # fetched before a rebalance: neither answered nor committed here
        self._offsets.take(topic, partition, offset)
        headers = cast(Headers, list(message.headers() or []))
        defaults = {}
        for name, value in headers:
            if name in ROUTING_HEADERS and value is not None:
                text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
                defaults[ROUTING_HEADERS[name]] = text
        key = message.key()
        self.pool.submit(
            self.handle,
            message.value() or b"",
            lambda reply: self._publish(reply, (topic, partition, offset), headers),
            transport_id=(key.decode("utf-8", "replace") if isinstance(key, bytes) else key)
            or None,
            defaults=defaults,
        )
        return True

    def _publish(self, reply: Reply, record: tuple[str, int, int], headers: Headers) -> None:
        answer_headers = [
            *((k, v) for k, v in headers if k not in (STATUS_HEADER, JSON_LENGTH_HEADER)),
            (STATUS_HEADER, str(reply.status).encode()),
        ]
        if reply.json_length is not None:
            answer_headers.append((JSON_LENGTH_HEADER, str(reply.json_length).encode()))
        self._produce(reply, record, answer_headers, PRODUCE_ATTEMPTS)

    def _produce(
        self,
        reply: Reply,
        record: tuple[str, int, int],
        headers: Headers,
        attempts: int,
    ) -> None:
        producer = self._producer
        assert producer is not None  # a record came through the consumer it was made with
        while True:
            try:
                producer.produce(
                    self.stream.output,
                    value=reply.body,
                    key=reply.id.encode(),
                    headers=headers,
                    on_delivery=self._delivered(reply, record, headers, attempts),
                )
                return
            except BufferError:  # the producer's queue is full: let it drain
                producer.poll(0.05)

    def _delivered(
        self,
        reply: Reply,
        record: tuple[str, int, int],
        headers: Headers,
        attempts: int,
    ) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is None:
                self._offsets.done(*record)
                self.answerer.answered(reply)
            elif attempts > 1:
                self._produce(reply, record, headers, attempts - 1)
            else:  # left uncommitted: the record is answered again after a rebalance
                log.error("stream %s: answer not published: %s", self.stream.name, error)

        return on_delivery

    def _commit(self, asynchronous: bool) -> None:
        client = self._client
        moved = self._offsets.committable()
        if client is None or not moved:
            return
        try:
            if asynchronous:
                client.commit(offsets=moved, asynchronous=True)
            else:
                client.commit(offsets=moved, asynchronous=False)
        except KafkaException as exc:
            log.warning("stream %s: commit failed: %s", self.stream.name, exc)

    def _on_assign(self, client: KafkaClient, partitions: list[TopicPartition]) -> None:
        self._assigned |= {(p.topic, p.partition) for p in partitions}

    def _on_revoke(self, client: KafkaClient, partitions: list[TopicPartition]) -> None:
        """Before the group moves partitions away, answer what was taken from them."""
        keys = [(p.topic, p.partition) for p in partitions]
        self._assigned -= set(keys)
        deadline = time.monotonic() + 10.0
        producer = self._producer
        while self._offsets.busy(keys) and time.monotonic() < deadline:
            if producer is not None:
                producer.flush(0.05)
        self._commit(asynchronous=False)
        self._offsets.forget(keys)

    def _report(self, client: KafkaClient) -> None:
        """Publish the group's lag: records past its committed offsets, over all partitions."""
        try:
            topic = client.list_topics(self.stream.input, timeout=2).topics[self.stream.input]
            partitions = [TopicPartition(self.stream.input, p) for p in topic.partitions]
            lag = 0
            for committed in client.committed(partitions, timeout=2):
                low, high = client.get_watermark_offsets(committed, timeout=2, cached=False)
                lag += high - (committed.offset if committed.offset >= 0 else low)
            metrics.LAG.labels(self.stream.name).set(lag)
        except KafkaException as exc:
            log.debug("stream %s: lag unknown: %s", self.stream.name, exc)

    def close(self, grace: float) -> None:
        """Publish the last answers, commit them, and leave the group."""
        producer, client = self._producer, self._client
        if producer is not None:
            producer.flush(grace)
        if client is not None:
            self._commit(asynchronous=False)
            client.close()
        self._client = self._producer = None
