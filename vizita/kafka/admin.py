"""Topics and offsets, through kafka-python's synchronous clients: these are a few
calls at start-up and while waiting, where asyncio would only add ceremony."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator

import structlog
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from vizita.contract.settings import Settings, env_name
from vizita.contract.topics import TOPICS
from vizita.kafka.errors import KafkaAdminError, KafkaUnreachable

log = structlog.get_logger(__name__)

#: how long a first connection may take before the broker counts as unreachable
CONNECT_TIMEOUT_MS = 10_000


@contextlib.contextmanager
def _quiet_client() -> Iterator[None]:
    # kafka-python logs every refused connection as an error; while connecting they
    # are expected, and the failure is ours to report, once.
    client_log = logging.getLogger("kafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        client_log.setLevel(level)


@contextlib.contextmanager
def _admin(bootstrap: str, timeout_ms: int = CONNECT_TIMEOUT_MS) -> Iterator[KafkaAdminClient]:
    try:
        with _quiet_client():
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms,
                bootstrap_timeout_ms=timeout_ms,
            )  # fmt: skip
    except KafkaError as exc:  # kafka-python: a timeout while bootstrapping
        raise KafkaUnreachable(f"no Kafka broker answered at {bootstrap}") from exc
    try:
        yield admin
    finally:
        admin.close()


def answers(bootstrap: str, timeout_ms: int = 2000) -> bool:
    """Whether a broker answers at `bootstrap` now."""
    try:
        with _quiet_client(), _admin(bootstrap, timeout_ms) as admin:
            admin.list_topics()
    except (KafkaError, KafkaUnreachable, OSError):
        return False
    return True


def ensure_topics(
    bootstrap: str, names: Iterable[str], partitions: int, replication: int = 1
) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    with _admin(bootstrap) as admin:
        created = []
        for name in sorted(set(names) - set(admin.list_topics())):
            with contextlib.suppress(TopicAlreadyExistsError):  # a racing creator won
                admin.create_topics([NewTopic(name, partitions, replication)])
                created.append(name)
    if created:
        log.info("kafka.topics.created", topics=created, partitions=partitions)


def bootstrap_of(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        variable = env_name("kafka_bootstrap")
        raise KafkaUnreachable(f"no Kafka bootstrap address (--bootstrap, {variable})")
    return settings.kafka_bootstrap


def ensure_pipeline_topics(settings: Settings) -> None:
    """Every topic of the contract, with the settings' partitions and replication."""
    names = [settings.topic(name) for name in TOPICS]
    ensure_topics(bootstrap_of(settings), names, settings.partitions, settings.replication_factor)


class OffsetReader:
    """End and committed offsets of many topics and groups through one consumer and
    one admin client: each client costs a bootstrap (connections, versions, metadata),
    which the lag gauge paid some eight times a measurement on the worker's own cores."""

    def __init__(self, consumer: KafkaConsumer, admin: KafkaAdminClient) -> None:
        self._consumer, self._admin = consumer, admin

    def end_offsets(self, topic: str) -> dict[int, int]:
        return _end_offsets(self._consumer, topic)

    def committed_offsets(self, group: str, topic: str) -> dict[int, int]:
        return _committed_offsets(self._admin, group, topic)


@contextlib.contextmanager
def offset_reader(bootstrap: str) -> Iterator[OffsetReader]:
    with _admin(bootstrap) as admin, _consumer(bootstrap) as consumer:
        yield OffsetReader(consumer, admin)


@contextlib.contextmanager
def _consumer(bootstrap: str) -> Iterator[KafkaConsumer]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        yield consumer
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """partition -> end offset (the next offset to be written) of one topic."""
    with _consumer(bootstrap) as consumer:
        return _end_offsets(consumer, topic)


def _end_offsets(consumer: KafkaConsumer, topic: str) -> dict[int, int]:
    partitions = consumer.partitions_for_topic(topic) or set()
    ends = consumer.end_offsets([TopicPartition(topic, p) for p in sorted(partitions)])
    return {tp.partition: int(offset) for tp, offset in ends.items()}


def last_value(bootstrap: str, topic: str, partition: int = 0) -> bytes | None:
    """The value of the last record in one partition (None when it is empty or absent)."""
    with _consumer(bootstrap) as consumer:
        tp = TopicPartition(topic, partition)
        if partition not in (consumer.partitions_for_topic(topic) or set()):
            return None
        end = int(consumer.end_offsets([tp])[tp])
        if end == 0:
            return None
        consumer.assign([tp])
        consumer.seek(tp, end - 1)
        for _ in range(10):  # a few polls: the first may only fetch metadata
            records = consumer.poll(timeout_ms=500).get(tp, [])
            if records:
                value: bytes | None = records[-1].value
                return value
        return None


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """partition -> the offset `group` has committed on `topic` (absent when none).

    Asked through the admin API: a consumer carrying the group's id would make the
    group rebalance when it leaves, over and over if polled."""
    with _admin(bootstrap) as admin:
        return _committed_offsets(admin, group, topic)


def _committed_offsets(admin: KafkaAdminClient, group: str, topic: str) -> dict[int, int]:
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    except KafkaError as exc:
        if not exc.retriable:  # e.g. the coordinator is not there yet: nothing committed
            raise
        return {}
    return {tp.partition: int(meta.offset) for tp, meta in offsets.items()
            if tp.topic == topic and meta.offset >= 0}  # fmt: skip


def group_members(bootstrap: str, group: str) -> tuple[str | None, int]:
    """(the group's state, e.g. "Stable", and how many members it has), asked through the
    admin API as `committed_offsets` is."""
    with _admin(bootstrap) as admin:
        described = admin.describe_groups([group]).get(group, {})
    return described.get("group_state"), len(described.get("members", []))


def wait_for_group_coordinators(
    bootstrap: str, groups: Iterable[str], timeout: float = 30.0, poll: float = 0.1
) -> bool:
    """Until the broker has a coordinator for each of `groups`, loaded and answering
    (True), or `timeout` runs out (False). A new cluster creates its offsets topic when
    it is first asked for a coordinator and has none for a moment; a restarted one
    answers "loading" until it has read that topic back."""
    wanted: dict[str, None] = dict.fromkeys(groups)
    deadline = time.monotonic() + timeout
    with _admin(bootstrap) as admin:
        while True:
            try:
                admin.list_group_offsets(wanted)
            except KafkaError as exc:
                if not exc.retriable:
                    raise KafkaAdminError(f"no group coordinator at {bootstrap}: {exc}") from exc
                if time.monotonic() >= deadline:
                    return False
                time.sleep(poll)
            else:
                return True
