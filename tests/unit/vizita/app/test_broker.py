from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from vizita.app.broker import (
    IDENTITY_FILE,
    KAFKA_VERSION,
    POM,
    BrokerIdentity,
    _cluster_id,
    _ephemeral_floor,
    _server_properties,
    free_port,
    port_is_free,
)
from vizita.app.errors import BrokerError


def test_pom_pins_the_version_the_cache_is_keyed_by() -> None:
    text = POM.read_text()
    versions = re.findall(
        r"<artifactId>kafka_2\.13</artifactId>\s*<version>([^<]+)</version>", text
    )
    assert versions == [KAFKA_VERSION]


def test_server_properties_are_kraft_on_loopback(tmp_path: Path) -> None:
    props = dict(
        line.split("=", 1) for line in _server_properties(tmp_path, 9092, 9093).splitlines()
    )
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["auto.create.topics.enable"] == "false"  # topics are created on purpose
    assert props["log.dirs"] == str(tmp_path)
    # heartbeats well inside the session, or the broker would fence itself
    assert int(props["broker.heartbeat.interval.ms"]) * 4 <= int(props["broker.session.timeout.ms"])
    # the demo's records carry its simulated clock, days ahead of the wall clock
    assert int(props["log.message.timestamp.after.max.ms"]) >= 365 * 24 * 3600 * 1000


def test_cluster_ids_never_look_like_options() -> None:
    ids = [_cluster_id() for _ in range(2000)]  # about 1 in 64 would start with "-"
    assert not any(cluster_id.startswith("-") for cluster_id in ids)
    assert all(len(cluster_id) == 22 for cluster_id in ids)


def test_free_ports_are_below_the_ephemeral_range() -> None:
    ports = {free_port() for _ in range(20)}
    assert all(port < _ephemeral_floor() for port in ports)
    assert all(port_is_free(port) for port in ports)


def test_a_port_with_a_listener_is_not_free() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not port_is_free(listener.getsockname()[1])


def test_an_identity_is_read_back_only_from_a_formatted_directory(tmp_path: Path) -> None:
    identity = BrokerIdentity.new()
    identity.write(tmp_path)
    assert BrokerIdentity.read(tmp_path) is None  # not formatted: no meta.properties
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "meta.properties").write_text(f"cluster.id={identity.cluster_id}\n")
    assert BrokerIdentity.read(tmp_path) == identity
    assert identity.port != identity.controller_port


def test_another_kafkas_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "meta.properties").write_text("cluster.id=x\n")
    saved = {"cluster_id": "x", "port": 20001, "controller_port": 20002, "kafka_version": "3.9.0"}
    (tmp_path / IDENTITY_FILE).write_text(json.dumps(saved))
    with pytest.raises(BrokerError, match=r"Kafka 3\.9\.0"):
        BrokerIdentity.read(tmp_path)
