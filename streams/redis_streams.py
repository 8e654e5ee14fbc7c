"""Redis Streams (redis-py): a consumer group read with XREADGROUP, XACK after the answer.

A request is a stream entry whose `body` field holds the body-routed JSON (an `id` field, if
any, is the request id). Its answer is an entry on `output` with fields `id`, `status` and
`body` (and `json_length` for binary outputs), added in one MULTI/EXEC transaction with the
request's XACK: an answer is never published without its request being acknowledged, nor the
other way round. A message whose consumer died stays pending; every worker claims those idle
longer than `claim_idle_ms` with XAUTOCLAIM and answers them.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import redis
from flask import Flask
from redis.typing import EncodableT, FieldT

from config.streams import StreamSettings
from streams import metrics
from streams.core import Consumer, Reply, log

#: Longest XREADGROUP block, so a stop is noticed quickly.
BLOCK_MS = 500
#: Seconds between two reads of the group's lag and pending counts.
INFO_SECONDS = 2.0


class RedisConsumer(Consumer):
    """One consumer of the group, named after its host and pid."""

    def __init__(self, app: Flask, stream: StreamSettings) -> None:
        super().__init__(app, stream)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._redis: redis.Redis | None = None

    def run(self) -> None:
        """Create the group if needed, then read, claim and report until stopping."""
        if self._redis is not None:  # a retry after a failure: a fresh connection pool
            self._redis.close()
        client = self._redis = redis.Redis.from_url(
            self.stream.url, health_check_interval=30, socket_keepalive=True
        )
        stream, group = self.stream.input, self.stream.group
        try:
            # From the start of the stream: requests sent before the first worker are served.
            client.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        log.info("stream %s: consuming as %s in group %s", self.stream.name, self.consumer, group)
        claimed_at = info_at = 0.0
        while not self.stopping.is_set():
            now = time.monotonic()
            if now - claimed_at >= self.stream.claim_idle_ms / 2000:
                claimed_at = now
                self._claim(client)
            if now - info_at >= INFO_SECONDS:
                info_at = now
                self._report(client)
            if not self.pool.acquire(timeout=BLOCK_MS / 1000):
                continue
            free = 1
            while free < self.stream.concurrency and self.pool.acquire(timeout=0):
                free += 1
            try:
                entries: Any = client.xreadgroup(
                    group, self.consumer, {stream: ">"}, count=free, block=BLOCK_MS
                )
            except BaseException:
                for _ in range(free):
                    self.pool.release()
                raise
            messages = entries[0][1] if entries else []
            self._take(client, messages, free)

    def _take(self, client: redis.Redis, messages: list[Any], free: int) -> None:
        """Hand each entry to the pool (slots taken beforehand); give back the unused ones."""
        for message_id, fields in messages:
            self.pool.submit(self._answer, client, message_id, fields)
        for _ in range(free - len(messages)):
            self.pool.release()

    def _claim(self, client: redis.Redis) -> None:
        """Take over the group's messages that a dead consumer left pending."""
        start = "0-0"
        while not self.stopping.is_set():
            if not self.pool.acquire(timeout=BLOCK_MS / 1000):
                return
            free = 1
            while free < self.stream.concurrency and self.pool.acquire(timeout=0):
                free += 1
            try:
                start, messages, _deleted = client.xautoclaim(
                    self.stream.input,
                    self.stream.group,
                    self.consumer,
                    min_idle_time=self.stream.claim_idle_ms,
                    start_id=start,
                    count=free,
                )
            except BaseException:
                for _ in range(free):
                    self.pool.release()
                raise
            messages = [m for m in messages if m is not None]
            if messages:
                log.info("stream %s: claimed %d pending messages", self.stream.name, len(messages))
            self._take(client, messages, free)
            if start in (b"0-0", "0-0"):
                return

    def _answer(self, client: redis.Redis, message_id: bytes, fields: dict[bytes, bytes]) -> None:
        body = fields.get(b"body")
        if body is None:
            body = b""  # answered as the REST front-end answers an empty body: 400
        transport_id = fields.get(b"id")
        self.handle(
            body,
            lambda reply: self._publish(client, message_id, reply),
            transport_id=transport_id.decode("utf-8", "replace") if transport_id else None,
        )

    def _publish(self, client: redis.Redis, message_id: bytes, reply: Reply) -> None:
        answer: dict[FieldT, EncodableT] = {
            "id": reply.id,
            "status": str(reply.status),
            "body": reply.body,
        }
        if reply.json_length is not None:
            answer["json_length"] = str(reply.json_length)
        pipe = client.pipeline(transaction=True)
        pipe.xadd(self.stream.output, answer)
        pipe.xack(self.stream.input, self.stream.group, message_id)
        pipe.execute()
        self.answerer.answered(reply)

    def _report(self, client: redis.Redis) -> None:
        """Publish the group's lag and pending counts, as XINFO GROUPS tells them."""
        for group in client.xinfo_groups(self.stream.input):
            name = group.get("name")
            if name in (self.stream.group, self.stream.group.encode()):
                if group.get("lag") is not None:
                    metrics.LAG.labels(self.stream.name).set(group["lag"])
                metrics.PENDING.labels(self.stream.name).set(group.get("pending") or 0)

    def close(self, grace: float) -> None:
        """Leave the group: delete this consumer when it has nothing pending, then disconnect."""
        client = self._redis
        if client is None:
            return
        try:
            pending = client.xpending_range(
                self.stream.input, self.stream.group, "-", "+", 1, consumername=self.consumer
            )
            if not pending:
                client.xgroup_delconsumer(self.stream.input, self.stream.group, self.consumer)
        except redis.RedisError as exc:
            log.warning("stream %s: leaving the group failed: %s", self.stream.name, exc)
        client.close()
        self._redis = None
