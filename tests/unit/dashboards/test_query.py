from __future__ import annotations

from grafana_foundation_sdk.cog import runtime as cogruntime

from dashboards.query import (
    PLUGIN_TYPE,
    ClickHouseQuery,
    ClickHouseQueryBuilder,
    Format,
    Sql,
    variant_config,
)

SQL = Sql("SELECT 1 AS one", ("one",))


def test_a_query_is_the_plugins_sql_editor_model() -> None:
    query = ClickHouseQueryBuilder(SQL).ref_id("B").time_series().datasource("ds-1").build()
    assert query.to_json() == {
        "refId": "B", "editorType": "sql", "rawSql": "SELECT 1 AS one", "format": 0,
        "queryType": "timeseries", "pluginVersion": query.to_json()["pluginVersion"],
        "datasource": {"type": "grafana-clickhouse-datasource", "uid": "ds-1"},
    }  # fmt: skip
    major = int(str(query.to_json()["pluginVersion"]).split(".")[0])
    assert major >= 4  # the plugin's frontend migrates queries of v3 and before


def test_a_table_query_has_format_one() -> None:
    model = ClickHouseQueryBuilder(SQL).time_series().table().build().to_json()
    assert (model["format"], model["queryType"]) == (Format.TABLE, "table")


def test_stored_targets_read_back_through_the_sdk_runtime() -> None:
    cogruntime.register_dataquery_variant(variant_config())
    stored = ClickHouseQueryBuilder(SQL).ref_id("C").datasource("ds-2").build().to_json()
    again = cogruntime.dataquery_from_json(stored, PLUGIN_TYPE)
    assert isinstance(again, ClickHouseQuery)
    assert again.to_json() == stored
