"""The project's own Kafka broker: starts, answers, keeps topics, stops, and comes back
after a controlled stop or a crash with its data, at the same address."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from vizita.app.broker import KAFKA_VERSION, LocalBroker
from vizita.app.errors import BrokerError
from vizita.contract.settings import Settings
from vizita.kafka.admin import (
    committed_offsets,
    end_offsets,
    ensure_topics,
    wait_for_group_coordinators,
)

TOPIC = "kept"
GROUP = "kept-readers"
PARTITIONS = [TopicPartition(TOPIC, p) for p in range(2)]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _broker(work: Path, *, keep_data: bool = False) -> LocalBroker:
    return LocalBroker(work, Settings().kafka_cache_dir, keep_data=keep_data)


def test_broker_round_trip_and_clean_stop(tmp_path: Path) -> None:
    broker = _broker(tmp_path / "kafka")
    with broker:
        ensure_topics(broker.bootstrap, ["roundtrip"], partitions=2)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
        producer.send("roundtrip", key=b"k", value=b"hello").get(timeout=30)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
        consumer.assign([TopicPartition("roundtrip", p) for p in range(2)])
        values = _read(consumer, 1)
        consumer.close()
        assert values == [b"hello"]
        # A new cluster has no group coordinator until its offsets topic exists.
        assert wait_for_group_coordinators(broker.bootstrap, ["nobody-yet"], timeout=30)
        port = broker.port
        assert _port_open(port)
    assert not _port_open(port)


def _read(consumer: KafkaConsumer, count: int, timeout: float = 60.0) -> list[bytes]:
    """The next `count` values `consumer` gets (fewer only when `timeout` runs out)."""
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(values) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            values += [record.value for record in records]
    return values


def _everything(bootstrap: str) -> list[bytes]:
    """Every value in the topic, read by a client that never saw the broker before."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                           enable_auto_commit=False)  # fmt: skip
    try:
        reader.assign(PARTITIONS)
        total = sum(end_offsets(bootstrap, TOPIC).values())
        return _read(reader, total)
    finally:
        reader.close()


def _cluster_id_on_disk(work: Path) -> str:
    lines = (work / "data" / "meta.properties").read_text().splitlines()
    return next(line.split("=", 1)[1] for line in lines if line.startswith("cluster.id="))


def _produce_and_commit(address: str) -> tuple[KafkaProducer, KafkaConsumer, list[bytes]]:
    """Ten messages sent and read, their offsets committed; both clients left open."""
    ensure_topics(address, [TOPIC], partitions=2)
    sent = [f"before-{i}".encode() for i in range(10)]
    producer = KafkaProducer(bootstrap_servers=address, enable_idempotence=True, acks="all")
    for i, value in enumerate(sent):
        producer.send(TOPIC, key=f"visit-{i}".encode(), value=value)
    producer.flush(timeout=30)
    consumer = KafkaConsumer(
        bootstrap_servers=address, group_id=GROUP, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )  # fmt: skip
    consumer.assign(PARTITIONS)
    assert sorted(_read(consumer, len(sent))) == sent
    consumer.commit()
    return producer, consumer, sent


@pytest.mark.parametrize("bounce", ["stop", "kill"])
def test_data_offsets_and_address_survive_a_restart(own_kafka: LocalBroker, bounce: str) -> None:
    broker, address = own_kafka, own_kafka.bootstrap
    assert broker.identity is not None
    cluster_id = broker.identity.cluster_id
    producer, consumer, sent = _produce_and_commit(address)
    committed = committed_offsets(address, GROUP, TOPIC)
    assert sum(committed.values()) == len(sent)

    getattr(broker, bounce)()  # stop(): SIGTERM; kill(): SIGKILL
    assert not _port_open(broker.port)
    broker.start()

    assert broker.bootstrap == address
    assert broker.identity.cluster_id == cluster_id == _cluster_id_on_disk(broker.work_dir)
    assert sorted(_everything(address)) == sent
    # The restarted coordinator answers "loading" until it has read its topic back.
    assert wait_for_group_coordinators(address, [GROUP], timeout=60)
    assert committed_offsets(address, GROUP, TOPIC) == committed
    # The clients connected before the restart work again, at the address they had.
    producer.send(TOPIC, key=b"visit-0", value=b"after").get(timeout=60)
    assert _read(consumer, 1) == [b"after"]
    consumer.commit()
    assert sum(committed_offsets(address, GROUP, TOPIC).values()) == len(sent) + 1
    producer.close()
    consumer.close()


async def _aiokafka_across_a_crash(broker: LocalBroker) -> dict[int, int]:
    """An aiokafka producer and a group consumer that stay open while the broker is
    killed and started again (on a thread: their event loop keeps running, as a
    pipeline's would), then produce, consume and commit again."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=broker.bootstrap, group_id=GROUP,
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    await producer.start()
    await consumer.start()
    try:
        await producer.send_and_wait(TOPIC, b"before", key=b"visit-1")
        assert (await asyncio.wait_for(consumer.getone(), 60)).value == b"before"
        await consumer.commit()
        await asyncio.to_thread(broker.kill)
        await asyncio.to_thread(broker.start)
        await asyncio.wait_for(producer.send_and_wait(TOPIC, b"after", key=b"visit-1"), 60)
        assert (await asyncio.wait_for(consumer.getone(), 60)).value == b"after"
        await asyncio.wait_for(consumer.commit(), 60)
    finally:
        await consumer.stop()
        await producer.stop()
    return committed_offsets(broker.bootstrap, GROUP, TOPIC)


def test_aiokafka_clients_work_again_after_a_crash(own_kafka: LocalBroker) -> None:
    ensure_topics(own_kafka.bootstrap, [TOPIC], partitions=2)
    assert wait_for_group_coordinators(own_kafka.bootstrap, [GROUP])
    committed = asyncio.run(_aiokafka_across_a_crash(own_kafka))
    assert sum(committed.values()) == 2


def test_a_new_broker_object_formats_unless_told_to_keep_the_data(tmp_path: Path) -> None:
    work = tmp_path / "kafka"
    with _broker(work) as first:
        ensure_topics(first.bootstrap, ["old"], partitions=1)
        identity = first.identity
    assert identity is not None
    with _broker(work, keep_data=True) as reopened:
        assert reopened.identity == identity
        assert end_offsets(reopened.bootstrap, "old") == {0: 0}
    with _broker(work) as fresh:
        assert fresh.identity is not None
        assert fresh.identity.cluster_id != identity.cluster_id
        assert end_offsets(fresh.bootstrap, "old") == {}  # a new cluster: no topics


def test_a_restart_refuses_a_port_another_process_took(tmp_path: Path) -> None:
    broker = _broker(tmp_path / "kafka")
    with broker:
        port = broker.port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(BrokerError, match=f"port {port} .* is taken"):
            broker.start()
    assert not broker.running


def test_ensure_topics_is_idempotent(kafka: LocalBroker) -> None:
    ensure_topics(kafka.bootstrap, ["idem-a", "idem-b"], partitions=3)
    ensure_topics(kafka.bootstrap, ["idem-a", "idem-b"], partitions=3)
    assert end_offsets(kafka.bootstrap, "idem-a") == {0: 0, 1: 0, 2: 0}


def test_the_broker_is_the_pinned_kafka(kafka: LocalBroker) -> None:
    jars = {path.name for path in (Settings().kafka_cache_dir / KAFKA_VERSION).iterdir()}
    assert f"kafka_2.13-{KAFKA_VERSION}.jar" in jars
    assert kafka.bootstrap.startswith("127.0.0.1:")
