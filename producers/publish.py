"""Publishing raw payloads to the `visits` topic.

Payloads go on as they are, one per line of a JSONL file: validation is the stream's
job, so a bad line is dead-lettered there, with its bytes, rather than lost here. The
key is the payload's `visit_id` when one can be read (so a visit's revisions share a
partition), else no key. The producer is idempotent: its own retries never write a
payload twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from producers.errors import PublishError


def key_of(payload: bytes) -> bytes | None:
    """The partitioning key: the `visit_id` if the payload has a readable one."""
    try:
        # Integers are read as floats (never an error, and never a str): int() refuses
        # more than 4300 digits, and a payload with such a number has a visit_id still.
        data = json.loads(payload, parse_int=float)
    except (ValueError, RecursionError):
        return None
    visit_id = data.get("visit_id") if isinstance(data, dict) else None
    return visit_id.encode() if isinstance(visit_id, str) else None


def read_lines(path: Path) -> Iterator[bytes]:
    """Each line of a JSONL file, as bytes, without its newline; blank lines skipped."""
    with path.open("rb") as handle:
        for line in handle:
            stripped = line.rstrip(b"\r\n")
            if stripped.strip():
                yield stripped


def idempotent_producer(bootstrap: str, **extra: Any) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
        linger_ms=5, max_request_size=2 * 1024 * 1024, **extra,
    )  # fmt: skip


def publish(payloads: Iterable[bytes], bootstrap: str, topic: str) -> int:
    """Send every payload in order; answer how many Kafka acknowledged."""
    producer = idempotent_producer(bootstrap)
    futures = []
    try:
        for payload in payloads:
            futures.append(producer.send(topic, key=key_of(payload), value=payload))
        producer.flush()
        for future in futures:
            future.get(timeout=30)  # raises if the broker refused it
    except KafkaError as exc:
        raise PublishError(f"publishing to {topic} failed: {exc}") from exc
    finally:
        producer.close()
    return len(futures)
