"""The ClickHouse session Grafana's data source gets, on the embedded engine, so panel
and alert rule queries run with the rights and settings they will have in the stack.

Grafana connects as the user named in config/grafana/provisioning/datasources (the
`grafana` user); config/clickhouse/users.d/vizita.xml gives it a profile (`readonly`,
`max_execution_time`, …) and config/clickhouse/config.d/vizita.xml the server's time
zone. Here a chdb session of its own on the store's path applies the same: every
setting of the profile, the server's time zone as `session_timezone`, and `readonly`
last, since nothing can be set after it. A query that changes a setting (a `SETTINGS`
clause) then fails as it would on the server.

What the embedded engine cannot copy: settings constraints. On the server the profile
lets `max_execution_time` change in read-only mode (the plugin's client sends it); here
no setting can, so a query's own `SETTINGS max_execution_time = …` would fail here only.
Grants are not copied either: the tests' database is not the one the grant names.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import yaml
from chdb import session

REPO = Path(__file__).resolve().parents[1]
DATASOURCES = REPO / "config/grafana/provisioning/datasources/vizita-clickhouse.yaml"
CLICKHOUSE_USERS = REPO / "config/clickhouse/users.d/vizita.xml"
CLICKHOUSE_CONFIG = REPO / "config/clickhouse/config.d/vizita.xml"
_NOT_SETTINGS = {"constraints", "profile"}  # profile elements that set nothing themselves


def _xml(path: Path) -> ET.Element:
    return ET.parse(path).getroot()  # noqa: S314  # the repository's own files, not input


def grafana_settings() -> dict[str, str]:
    """The settings Grafana's ClickHouse user works under, in the order to apply them."""
    (source,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    users = _xml(CLICKHOUSE_USERS)
    profile_name = users.findtext(f"users/{source['jsonData']['username']}/profile")
    profile = users.find(f"profiles/{profile_name}")
    assert profile is not None, f"no profile {profile_name!r} in {CLICKHOUSE_USERS.name}"
    settings = {item.tag: (item.text or "").strip() for item in profile
                if item.tag not in _NOT_SETTINGS}  # fmt: skip
    server_zone = _xml(CLICKHOUSE_CONFIG).findtext("timezone")
    assert server_zone, f"{CLICKHOUSE_CONFIG.name} names no server time zone"
    readonly = settings.pop("readonly", "0")
    assert int(readonly) >= 1, "Grafana's user must be read-only"
    return {**settings, "session_timezone": server_zone, "readonly": readonly}


@dataclass(frozen=True)
class Answer:
    """Columns in order, and rows with each DateTime as the instant Grafana receives."""

    columns: tuple[str, ...]
    rows: list[dict[str, Any]]


class GrafanaSession:
    """A read-only session on the store at `store_url` (chdb:///abs/path)."""

    def __init__(self, store_url: str) -> None:
        parts = urlsplit(store_url)
        assert parts.scheme == "chdb", "the harness runs on the embedded engine"
        self._session = session.Session(parts.netloc + parts.path)
        self.settings = grafana_settings()
        for name, value in self.settings.items():
            self._session.query(f"SET {name} = '{value}'")

    def query(self, sql: str) -> Answer:
        try:
            result = self._session.query(sql, "JSON")
        except RuntimeError:
            # A query that fails while it runs (throwIf) leaves the answer it had begun
            # in chdb's buffer, ahead of the next query's: a query of its own takes it.
            self._session.query("SELECT 1", "JSON")
            raise
        answer = json.loads(bytes(result.bytes()) or b"{}")
        meta = answer.get("meta", [])
        zone = self.settings["session_timezone"]
        rows = [{c["name"]: _value(row[c["name"]], c["type"], zone) for c in meta}
                for row in answer.get("data", [])]  # fmt: skip
        return Answer(tuple(c["name"] for c in meta), rows)

    def close(self) -> None:
        self._session.close()


def _value(value: Any, kind: str, session_zone: str) -> Any:
    """A DateTime column as an aware instant, in the column's own time zone (as the
    plugin's client reads it) or the session's; anything else as JSON gave it."""
    inner = kind.removeprefix("Nullable(").removeprefix("LowCardinality(")
    if value is None or not inner.startswith("DateTime"):
        return value
    zone = inner.split("'")[1] if "'" in inner else session_zone
    return datetime.fromisoformat(value).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
