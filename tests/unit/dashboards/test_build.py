"""The built dashboards: three on the ClickHouse datasource and one on Prometheus, well
formed, and the same as the committed files."""

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
from dashboards.config import METRICS_UID, BuildConfig
from dashboards.query import PLUGIN_TYPE
from dashboards.units import indicator_display
from sinks.schema import PERSONAL_COLUMNS
from vizita.contract.indicators import COUNT_INDICATORS, INDICATORS
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES
from vizita.contract.settings import CONFIG_DIR, Settings
from vizita.contract.targets import load_targets

COMMITTED = CONFIG_DIR / "grafana"


@pytest.fixture
def built() -> Built:
    return build_all(BuildConfig.from_settings(Settings()))


CLICKHOUSE_BOARDS = {"vizita-overview", "vizita-municipality", "vizita-pipeline"}


def _panels(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in document["panels"] if p["type"] != "row"]


def _clickhouse_boards(built: Built) -> list[dict[str, Any]]:
    return [document for uid, document in built.dashboards.items() if uid in CLICKHOUSE_BOARDS]


def test_four_dashboards_with_unique_uids_and_titles(built: Built) -> None:
    assert set(built.dashboards) == {*CLICKHOUSE_BOARDS, METRICS_UID}
    assert all(uid == d["uid"] for uid, d in built.dashboards.items())
    assert len({d["title"] for d in built.dashboards.values()}) == 4


def test_every_panel_and_target_uses_the_clickhouse_datasource(built: Built) -> None:
    uid = Settings().grafana_datasource_uid
    for document in _clickhouse_boards(built):
        for panel in _panels(document):
            assert panel["datasource"] == {"type": PLUGIN_TYPE, "uid": uid}, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == {"type": PLUGIN_TYPE, "uid": uid}
                assert target["editorType"] == "sql"
                assert target["rawSql"]


def test_the_metrics_board_reads_prometheus_only(built: Built) -> None:
    ref = {"type": "prometheus", "uid": Settings().grafana_prometheus_uid}
    panels = _panels(built.dashboards[METRICS_UID])
    assert len(panels) >= 15
    for panel in panels:
        assert panel["datasource"] == ref, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == ref
            assert target["expr"]
            assert "rawSql" not in target
            # A panel over time asks for a range, a single figure for an instant.
            assert target["range"] is (panel["type"] == "timeseries"), panel["title"]


def test_the_datasource_uid_and_database_come_from_the_build_config() -> None:
    targets = load_targets(CONFIG_DIR / "targets.yaml")
    built = build_all(BuildConfig("other_db", "other-uid", targets, "other-prometheus"))
    found = [t for d in _clickhouse_boards(built) for p in _panels(d) for t in p["targets"]]
    assert {t["datasource"]["uid"] for t in found} == {"other-uid"}
    assert all("other_db." in t["rawSql"] and "vizita." not in t["rawSql"] for t in found)
    from_prometheus = [t for p in _panels(built.dashboards[METRICS_UID]) for t in p["targets"]]
    assert {t["datasource"]["uid"] for t in from_prometheus} == {"other-prometheus"}


def test_panel_ids_are_unique_and_refs_distinct(built: Built) -> None:
    for document in built.dashboards.values():
        ids = [p["id"] for p in document["panels"]]
        assert len(ids) == len(set(ids))
        assert 0 not in ids
        for panel in _panels(document):
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs))


def test_every_query_has_the_columns_its_panel_reads(built: Built) -> None:
    for document in _clickhouse_boards(built):
        for panel in _panels(document):
            for target in panel["targets"]:
                assert built.columns[target["rawSql"]], panel["title"]


def _variable(built: Built, uid: str, name: str) -> dict[str, Any]:
    variables = built.dashboards[uid]["templating"]["list"]
    (variable,) = [v for v in variables if v["name"] == name]
    return variable


def test_the_municipality_picker_shows_names_and_sends_codes(built: Built) -> None:
    variable = _variable(built, "vizita-municipality", "municipality")
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
        "alerting/vizita.yaml", "dashboards/vizita-metrics.json",
        "dashboards/vizita-municipality.json", "dashboards/vizita-overview.json",
        "dashboards/vizita-pipeline.json",
    ]  # fmt: skip


def test_no_panel_or_rule_reads_what_a_form_added(built: Built) -> None:
    # Grafana's user may not read these columns (config/clickhouse/users.d/vizita.xml).
    for text in built.columns:
        for table, personal in PERSONAL_COLUMNS.items():
            if table in text:
                assert not [c for c in personal if re.search(rf"\b{c}\b", text)], text


def test_the_period_picker_is_one_query_listing_periods_from_the_store(built: Built) -> None:
    uid = Settings().grafana_datasource_uid
    overview = _variable(built, "vizita-overview", "period")
    assert overview == _variable(built, "vizita-municipality", "period")  # one picker, twice
    assert (overview["type"], overview["refresh"], overview["sort"]) == ("query", 1, 0)
    assert (overview["multi"], overview["includeAll"], overview["allowCustomValue"]) == (
        False, False, False)  # fmt: skip
    assert overview["datasource"] == {"type": PLUGIN_TYPE, "uid": uid}
    query = overview["query"]  # the plugin's CHVariableQuery: custom SQL
    assert (query["queryType"], set(query)) == ("sql", {"refId", "queryType", "rawSql"})
    assert built.columns[query["rawSql"]] == ("period", "label")  # value, then text
    assert "current" not in overview  # Grafana picks the first option: the latest month


def _period_panels(built: Built) -> list[tuple[str, dict[str, Any]]]:
    return [(uid, panel) for uid, document in built.dashboards.items()
            for panel in _panels(document)
            if "${period:sqlstring}" in panel["targets"][0].get("rawSql", "")]  # fmt: skip


def test_every_indicator_has_its_calendar_period_panels(built: Built) -> None:
    found = _period_panels(built)
    overview = [panel for uid, panel in found if uid == "vizita-overview"]
    (table,) = overview
    assert table["type"] == "table"
    assert built.columns[table["targets"][0]["rawSql"]] == ("municipality", *INDICATORS)
    stats = [panel for uid, panel in found if uid == "vizita-municipality"]
    assert [p["type"] for p in stats] == ["stat"] * len(INDICATORS)
    assert [p["title"] for p in stats] == [indicator_display(i).title for i in INDICATORS]
    for indicator, panel in zip(INDICATORS, stats, strict=True):
        assert f"indicator = '{indicator}'" in panel["targets"][0]["rawSql"]
        assert _override(panel, "value", "unit") == indicator_display(indicator).unit


def test_only_shares_are_coloured_by_target_over_a_period(built: Built) -> None:
    ((_, table),) = [(u, p) for u, p in _period_panels(built) if p["type"] == "table"]
    steps = _override(table, "immunisation_counselling_coverage", "thresholds")["steps"]
    assert steps == [{"value": None, "color": "red"}, {"value": 0.9, "color": "green"}]
    # A 30-day count or visits-per-nurse target would be wrong for a quarter.
    assert _override(table, "visits_per_nurse", "thresholds") is None
    assert _override(table, "visits_completed", "thresholds") is None


def _maps(built: Built) -> list[dict[str, Any]]:
    return [p for p in _panels(built.dashboards["vizita-overview"]) if p["type"] == "geomap"]


def test_a_map_for_every_indicator_with_a_target(built: Built) -> None:
    targets = load_targets(CONFIG_DIR / "targets.yaml")
    with_target = {str(i) for i in targets.defaults}
    with_target |= {str(i) for own in targets.municipalities.values() for i in own}
    titles = [m["title"] for m in _maps(built)]
    assert titles == [f"{indicator_display(i).title}: against the target"
                      for i in INDICATORS if i in with_target]  # fmt: skip
    assert len(titles) >= 2


def test_a_map_marks_each_municipality_at_its_seat_by_the_columns_it_reads(built: Built) -> None:
    for panel in _maps(built):
        columns = built.columns[panel["targets"][0]["rawSql"]]
        (layer,) = panel["options"]["layers"]
        assert layer["type"] == "markers"
        assert layer["tooltip"] is True
        location = layer["location"]
        assert location["mode"] == "coords"
        style = layer["config"]["style"]
        read = {location["latitude"], location["longitude"], style["color"]["field"],
                style["text"]["field"]}  # fmt: skip
        assert read <= set(columns), panel["title"]
        assert {"value", "target", "from_target", "standing"} <= set(columns)
        assert panel["options"]["view"]["id"] == "fit"
        assert panel["options"]["tooltip"]["mode"] == "details"
        # Colour by the distance's thresholds, grey where there is nothing to compare.
        assert _override(panel, "from_target", "color") == {"mode": "thresholds"}
        steps = _override(panel, "from_target", "thresholds")["steps"]
        assert [s["color"] for s in steps][-1] == "green"
        assert steps[-1]["value"] == 0.0
        (null,) = _override(panel, "from_target", "mappings")
        assert null["options"]["match"] == "null"
        for hidden in ("latitude", "longitude", "marker"):
            assert _override(panel, hidden, "custom.hideFrom")["tooltip"] is True


def test_ratio_maps_show_the_denominator_on_hover(built: Built) -> None:
    for panel in _maps(built):
        columns = built.columns[panel["targets"][0]["rawSql"]]
        titles = {f"{indicator_display(i).title}: against the target": i for i in INDICATORS}
        indicator = titles[panel["title"]]
        assert ("denominator" in columns) == (indicator not in COUNT_INDICATORS), panel["title"]
        assert _override(panel, "value", "unit") == indicator_display(indicator).unit


def test_the_municipality_board_has_the_caseload_of_centres_and_nurses(built: Built) -> None:
    panels = {p["title"]: p for p in _panels(built.dashboards["vizita-municipality"])}
    for title, key in (("Family Medicine Centres", "facility"), ("Nurses", "nurse_id")):
        query = panels[title]["targets"][0]["rawSql"]
        columns = built.columns[query]
        assert columns[0] == key
        assert {"households", "completed_visits", "visits", "missed_share"} <= set(columns)
        assert "visits FINAL" in query
        assert "${municipality:sqlstring}" in query
        assert _override(panels[title], "missed_share", "unit") == "percentunit"
