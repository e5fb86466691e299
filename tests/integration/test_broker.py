"""The project's own Kafka broker: starts, answers, keeps topics, stops."""

from __future__ import annotations

import socket
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from vizita.app.broker import KAFKA_VERSION, LocalBroker
from vizita.contract.settings import Settings
from vizita.kafka.admin import end_offsets, ensure_topics


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_broker_round_trip_and_clean_stop(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "kafka", Settings().kafka_cache_dir)
    with broker:
        ensure_topics(broker.bootstrap, ["roundtrip"], partitions=2)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
        producer.send("roundtrip", key=b"k", value=b"hello").get(timeout=30)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                                 consumer_timeout_ms=10000)  # fmt: skip
        consumer.assign([TopicPartition("roundtrip", p) for p in range(2)])
        values = [record.value for record in consumer]
        consumer.close()
        assert values == [b"hello"]
        port = broker.port
        assert _port_open(port)
    assert not _port_open(port)


def test_ensure_topics_is_idempotent(kafka: LocalBroker) -> None:
    ensure_topics(kafka.bootstrap, ["idem-a", "idem-b"], partitions=3)
    ensure_topics(kafka.bootstrap, ["idem-a", "idem-b"], partitions=3)
    assert end_offsets(kafka.bootstrap, "idem-a") == {0: 0, 1: 0, 2: 0}


def test_the_broker_is_the_pinned_kafka(kafka: LocalBroker) -> None:
    jars = {path.name for path in (Settings().kafka_cache_dir / KAFKA_VERSION).iterdir()}
    assert f"kafka_2.13-{KAFKA_VERSION}.jar" in jars
    assert kafka.bootstrap.startswith("127.0.0.1:")
