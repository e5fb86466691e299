"""A message that is no message of its topic, on every internal topic and as a null
value on `visits`: each becomes a dead letter with where it was and why, and nothing
else changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from workers import assert_same, dump, finish, publish_all, scenario_settings, start_worker

from vizita.app.broker import LocalBroker
from vizita.contract.topics import (
    TOPIC_ALERTS,
    TOPIC_INDICATORS,
    TOPIC_VISIT_CONTRIBUTIONS,
    TOPIC_VISITS,
    TOPIC_VISITS_EFFECTIVE,
)

pytestmark = pytest.mark.timeout(600)


def _poisons(partitions: int) -> list[tuple[str, int, bytes | None]]:
    """(topic, partition, value): each value distinct, since dead letters are one row
    per distinct payload."""
    found: list[tuple[str, int, bytes | None]] = [(TOPIC_VISITS, 0, None)]
    for topic in (TOPIC_VISITS_EFFECTIVE, TOPIC_INDICATORS, TOPIC_ALERTS):
        found += [(topic, 0, f"\xff{topic}: not json".encode("latin-1")),
                  (topic, 1, f'{{"{topic}": "json, but no message"}}'.encode())]  # fmt: skip
    found += [(TOPIC_VISIT_CONTRIBUTIONS, p, f"\x00contributions {p}".encode())
              for p in range(partitions)]  # fmt: skip
    found.append((TOPIC_VISIT_CONTRIBUTIONS, 0, b'["entries","atlantis",[]]'))
    return found


def test_poison_on_every_internal_topic_is_dead_lettered_and_nothing_else_changes(
    kafka: LocalBroker, payloads: list[bytes], reference: dict[str, Any], tmp_path: Path
) -> None:
    settings = scenario_settings(kafka, "poison", tmp_path)
    publish_all(settings, payloads)
    poisons = _poisons(settings.partitions)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for topic, partition, value in poisons:
        # a key too: a client sends a null value only as a keyed tombstone
        producer.send(settings.topic(topic), key=b"poison", value=value, partition=partition)
    producer.flush()
    producer.close()

    finish(start_worker(settings, tmp_path / "store", "--exit-when-done"))

    tables = dump(tmp_path / "store", "poison")
    assert_same("visits", tables["visits"], reference["visits"])
    assert_same("indicator_values", tables["indicator_values"], reference["indicator_values"])
    added = [row for row in tables["dead_letters"] if row not in reference["dead_letters"]]
    assert len(tables["dead_letters"]) == len(reference["dead_letters"]) + len(poisons)
    assert sorted(row["payload"] for row in added) == sorted(
        (value or b"").hex().upper() for _, _, value in poisons
    )
    internal = [row for row in added if row["payload"]]
    assert {row["reason"] for row in internal} == {"undecodable_message"}
    assert all(row["detail"] for row in internal)
    assert [row["reason"] for row in added if not row["payload"]] == ["not_json"]
    sources = {row["payload"]: row["source"] for row in tables["dead_letter_sources"]}
    for topic, partition, value in poisons:
        where = sources[(value or b"").hex().upper()]
        assert where.startswith(f"{settings.topic(topic)}/{partition}/"), where
