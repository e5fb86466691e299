"""The real services, as fixtures for the integration and fault suites: one Apache Kafka
broker (KRaft) for the session, and the embedded ClickHouse engine (chdb) with a
database of its own for each test. A service that cannot start is an error here, never
a skip."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sinks.migrations import migrate
from sinks.store import Store, open_store
from vizita.app.broker import LocalBroker
from vizita.contract.settings import Settings


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), Settings().kafka_cache_dir)
    with broker:
        yield broker


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own, to stop, kill and start again under running
    clients (`make_settings(kafka_bootstrap=own_kafka.bootstrap)`); the session's
    broker serves every other test."""
    with LocalBroker(tmp_path / "own-kafka", Settings().kafka_cache_dir) as broker:
        yield broker


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    # chdb opens one path per process; tests share it and keep apart by database.
    return f"chdb://{tmp_path_factory.mktemp('chdb') / 'store'}"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_settings(kafka: LocalBroker, chdb_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings with this test's own topics, consumer groups and database."""
    name = unique("t")

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "kafka_bootstrap": kafka.bootstrap, "topic_prefix": f"{name}.", "app_id": name,
            "database": name, "store_url": chdb_url, "data_dir": tmp_path / "data",
            "sink_batch_seconds": 0.2, "partitions": 4, "log_format": "console",
        }  # fmt: skip
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings.store_url.get_secret_value(), settings.database)
    migrate(opened)
    yield opened
    opened.execute(f"DROP DATABASE IF EXISTS {settings.database}")
    opened.close()
