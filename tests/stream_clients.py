"""Each broker's own Python client, publishing requests and collecting answers by request id.

`Publisher.publish(messages)` sends `(id, body, model header)` triples with the id where the
broker carries one (MQTT Correlation Data, a Redis `id` field, the Kafka key), and `answers`
maps each id to every `(status, body)` seen for it on the output, so a test counts
duplicates as well as losses.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Sequence

#: One request: its id, its body, and the MLServer model header to send (Kafka only).
Message = tuple[str, bytes, str | None]


class Collector:
    """Answers seen on the output, by request id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
        self.headers: dict[str, dict[str, str]] = {}

    def add(self, request_id: str, status: int, body: bytes, headers: dict[str, str]) -> None:
        with self.lock:
            self.answers[request_id].append((status, body))
            self.headers[request_id] = headers

    def wait_for(self, ids: Sequence[str], timeout: float) -> set[str]:
        """Wait until every id has an answer; the ids still missing at the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                missing = {i for i in ids if i not in self.answers}
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.05)

    def count(self) -> int:
        with self.lock:
            return len(self.answers)


class MqttClient(Collector):
    """paho-mqtt: QoS 1 requests with Correlation Data; answers read from the output topic."""

    def __init__(self, port: int, input_topic: str, output_topic: str) -> None:
        super().__init__()
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.input = input_topic
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{time.time_ns()}", protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.max_inflight_messages_set(100)
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(output_topic, qos=1)
        self.client.loop_start()
        assert self._subscribed.wait(10)

    def _on_message(self, client, userdata, message) -> None:
        user = dict(message.properties.UserProperty or [])
        correlation = bytes(message.properties.CorrelationData or b"").decode()
        assert correlation == user["id"], (correlation, user)
        self.add(user["id"], int(user["status"]), message.payload, user)

    def publish(self, messages: Sequence[Message]) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        infos = []
        for request_id, body, _model in messages:
            properties = Properties(PacketTypes.PUBLISH)
            properties.CorrelationData = request_id.encode()
            infos.append(self.client.publish(self.input, body, qos=1, properties=properties))
        for info in infos:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class RedisClient(Collector):
    """redis-py: XADD requests with `id` and `body` fields; XREAD the output stream."""

    def __init__(self, port: int, input_stream: str, output_stream: str) -> None:
        super().__init__()
        import redis

        self.redis = redis.Redis(port=port)
        self.input, self.output = input_stream, output_stream
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        import redis

        reader = redis.Redis(port=self.redis.connection_pool.connection_kwargs["port"])
        last = "0-0"
        while not self._stop.is_set():
            for _stream, entries in reader.xread({self.output: last}, count=500, block=200):
                for entry_id, fields in entries:
                    last = entry_id
                    headers = {k.decode(): v.decode() for k, v in fields.items() if k != b"body"}
                    self.add(headers["id"], int(headers["status"]), fields[b"body"], headers)
        reader.close()

    def publish(self, messages: Sequence[Message]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for request_id, body, _model in messages:
            pipe.xadd(self.input, {"id": request_id, "body": body})
        pipe.execute()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.redis.close()


class KafkaClient(Collector):
    """confluent-kafka: records keyed by id, with `mlserver-model` where given; output read
    from offset 0 of its one partition."""

    def __init__(self, port: int, input_topic: str, output_topic: str) -> None:
        super().__init__()
        from confluent_kafka import Consumer, Producer, TopicPartition

        servers = f"127.0.0.1:{port}"
        self.input = input_topic
        self.producer = Producer({"bootstrap.servers": servers, "linger.ms": 5})
        self.consumer = Consumer(
            {"bootstrap.servers": servers, "group.id": "test-reader", "enable.auto.commit": False}
        )
        self.consumer.assign([TopicPartition(output_topic, 0, 0)])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            for record in self.consumer.consume(500, timeout=0.2):
                if record.error():
                    continue
                headers = {k: v.decode() for k, v in record.headers() or []}
                key = record.key().decode()
                self.add(key, int(headers["modelport-status"]), record.value(), headers)

    def publish(self, messages: Sequence[Message]) -> None:
        for request_id, body, model in messages:
            headers = [("mlserver-model", model.encode())] if model else None
            self.producer.produce(self.input, body, key=request_id.encode(), headers=headers)
            self.producer.poll(0)
        assert self.producer.flush(30) == 0

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.consumer.close()


def create_kafka_topics(port: int, topics: dict[str, int]) -> None:
    """Create topics with the given partition counts (Tansu creates none by itself)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=n, replication_factor=1) for t, n in topics.items()]
    )
    for future in futures.values():
        future.result(20)
