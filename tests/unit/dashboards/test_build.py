"""The built dashboards: three, well formed, wired to the ClickHouse datasource, and
the same as the committed files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dashboards.build import (
    ALERTING_DIR,
    ALERTING_FILE,
    DASHBOARDS_DIR,
    Built,
    alerting_text,
    build_all,
    dashboard_text,
    write,
)
from dashboards.config import BuildConfig
from dashboards.query import PLUGIN_TYPE
from sinks.schema import PERSONAL_COLUMNS
from vizita.contract.indicators import INDICATORS
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES
from vizita.contract.settings import CONFIG_DIR, Settings
from vizita.contract.targets import load_targets

COMMITTED = CONFIG_DIR / "grafana"


@pytest.fixture
def built() -> Built:
    return build_all(BuildConfig.from_settings(Settings()))


def _panels(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in document["panels"] if p["type"] != "row"]


def test_three_dashboards_with_unique_uids_and_titles(built: Built) -> None:
    assert set(built.dashboards) == {"vizita-overview", "vizita-municipality", "vizita-pipeline"}
    assert all(uid == d["uid"] for uid, d in built.dashboards.items())
    assert len({d["title"] for d in built.dashboards.values()}) == 3


def test_every_panel_and_target_uses_the_clickhouse_datasource(built: Built) -> None:
    uid = Settings().grafana_datasource_uid
    for document in built.dashboards.values():
        for panel in _panels(document):
            assert panel["datasource"] == {"type": PLUGIN_TYPE, "uid": uid}, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == {"type": PLUGIN_TYPE, "uid": uid}
                assert target["editorType"] == "sql"
                assert target["rawSql"]


def test_the_datasource_uid_and_database_come_from_the_build_config() -> None:
    config = BuildConfig("other_db", "other-uid", load_targets(CONFIG_DIR / "targets.yaml"))
    built = build_all(config)
    targets = [t for d in built.dashboards.values() for p in _panels(d) for t in p["targets"]]
    assert {t["datasource"]["uid"] for t in targets} == {"other-uid"}
    assert all("other_db." in t["rawSql"] and "vizita." not in t["rawSql"] for t in targets)


def test_panel_ids_are_unique_and_refs_distinct(built: Built) -> None:
    for document in built.dashboards.values():
        ids = [p["id"] for p in document["panels"]]
        assert len(ids) == len(set(ids))
        assert 0 not in ids
        for panel in _panels(document):
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs))


def test_every_query_has_the_columns_its_panel_reads(built: Built) -> None:
    for document in built.dashboards.values():
        for panel in _panels(document):
            for target in panel["targets"]:
                assert built.columns[target["rawSql"]], panel["title"]


def test_the_municipality_picker_shows_names_and_sends_codes(built: Built) -> None:
    (variable,) = built.dashboards["vizita-municipality"]["templating"]["list"]
    assert (variable["type"], variable["name"], variable["allowCustomValue"]) == (
        "custom", "municipality", False)  # fmt: skip
    values = [o["value"] for o in variable["options"]]
    assert values[0] == ALL_KOSOVO
    assert sorted(values[1:]) == sorted(MUNICIPALITIES)
    assert "Prishtinë / Priština (Pristina) : prishtine" in variable["query"].split(",")
    assert variable["current"]["value"] == ALL_KOSOVO


def _override(panel: dict[str, Any], field: str, prop: str) -> Any:
    for override in panel["fieldConfig"]["overrides"]:
        if override["matcher"]["options"] == field:
            return {p["id"]: p["value"] for p in override["properties"]}.get(prop)
    return None


def test_the_overview_colours_each_indicator_by_its_default_target(built: Built) -> None:
    panels = _panels(built.dashboards["vizita-overview"])
    table = next(p for p in panels if p["title"].startswith("30-day values"))
    steps = _override(table, "immunisation_counselling_coverage", "thresholds")["steps"]
    assert steps == [{"value": None, "color": "red"}, {"value": 0.9, "color": "green"}]
    steps = _override(table, "missed_visit_rate", "thresholds")["steps"]
    assert steps == [{"value": None, "color": "green"}, {"value": 0.15, "color": "red"}]
    assert _override(table, "households_reached", "thresholds") is None  # no target
    assert all(_override(table, name, "displayName") for name in INDICATORS)


def test_the_committed_files_are_a_fresh_build(built: Built) -> None:
    committed = sorted((COMMITTED / DASHBOARDS_DIR).glob("*.json"))
    assert [p.stem for p in committed] == sorted(built.dashboards), "run: vizita dashboards build"
    for path in committed:
        assert path.read_text(encoding="utf-8") == dashboard_text(built.dashboards[path.stem]), (
            f"{path} is stale: run `vizita dashboards build`"
        )
    alerting = (COMMITTED / ALERTING_DIR / ALERTING_FILE).read_text(encoding="utf-8")
    assert alerting == alerting_text(built.alerting), "stale alerting file: vizita dashboards build"


def test_write_puts_dashboards_and_alerting_where_grafana_mounts_them(
    built: Built, tmp_path: Path
) -> None:
    written = write(built, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "alerting/vizita.yaml", "dashboards/vizita-municipality.json",
        "dashboards/vizita-overview.json", "dashboards/vizita-pipeline.json",
    ]  # fmt: skip


def test_no_panel_or_rule_reads_what_a_form_added(built: Built) -> None:
    # Grafana's user may not read these columns (config/clickhouse/users.d/vizita.xml).
    for text in built.columns:
        for table, personal in PERSONAL_COLUMNS.items():
            if table in text:
                assert not [c for c in personal if re.search(rf"\b{c}\b", text)], text
