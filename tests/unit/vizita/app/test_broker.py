from __future__ import annotations

import re
from pathlib import Path

from vizita.app.broker import KAFKA_VERSION, POM, _server_properties


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


def test_cluster_ids_never_look_like_options() -> None:
    from vizita.app.broker import _cluster_id

    ids = [_cluster_id() for _ in range(2000)]  # about 1 in 64 would start with "-"
    assert not any(cluster_id.startswith("-") for cluster_id in ids)
    assert all(len(cluster_id) == 22 for cluster_id in ids)
