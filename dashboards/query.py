"""The ClickHouse plugin's query model, as a Foundation SDK dataquery.

The SDK ships no builder for `grafana-clickhouse-datasource`, so this is one: a
`Dataquery` (what a panel target or an alert query holds) and its `Builder`.

The model is the plugin's `CHSqlQuery` (grafana/clickhouse-datasource,
src/types/sql.ts): `editorType: "sql"`, `rawSql`, `format` and `pluginVersion`.
`format` is the backend's `FormatQueryOption` (grafana-plugin-sdk-go
data/sqlutil/query.go): 0 = time series (long frames turned wide by their string
columns), 1 = table. `queryType` ("table" | "timeseries", src/types/queryBuilder.ts)
only picks the editor's tab. A `pluginVersion` of 4.0.0 or more keeps the frontend
from migrating the query as a v3 one (src/data/migration.ts, isV3CHQuery).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants

PLUGIN_TYPE = "grafana-clickhouse-datasource"
PLUGIN_VERSION = "4.20.0"  # what docker-compose.yml installs (README: how it was verified)


class Format(enum.IntEnum):
    TIME_SERIES = 0
    TABLE = 1


_QUERY_TYPES = {Format.TIME_SERIES: "timeseries", Format.TABLE: "table"}


@dataclass(frozen=True)
class Sql:
    """A query's text and the columns its panel (or alert rule) reads, in order.
    The columns are checked against a real store by the integration tests."""

    text: str
    columns: tuple[str, ...]


class ClickHouseQuery(cogvariants.Dataquery):
    def __init__(
        self,
        sql: Sql,
        *,
        ref_id: str = "A",
        fmt: Format = Format.TABLE,
        datasource_uid: str | None = None,
    ) -> None:
        self.sql = sql
        self.ref_id = ref_id
        self.format = fmt
        self.datasource_uid = datasource_uid

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "editorType": "sql",
            "rawSql": self.sql.text,
            "format": int(self.format),
            "queryType": _QUERY_TYPES[self.format],
            "pluginVersion": PLUGIN_VERSION,
        }
        if self.datasource_uid is not None:
            payload["datasource"] = {"type": PLUGIN_TYPE, "uid": self.datasource_uid}
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Read a stored target back (the expected columns are not stored)."""
        datasource = data.get("datasource") or {}
        return cls(
            Sql(str(data.get("rawSql", "")), ()),
            ref_id=str(data.get("refId", "A")),
            fmt=Format(int(data.get("format", Format.TABLE))),
            datasource_uid=datasource.get("uid"),
        )


def variant_config() -> cogruntime.DataqueryConfig:
    """Lets the SDK's JSON reader (cogruntime.dataquery_from_json) parse our targets."""
    return cogruntime.DataqueryConfig(
        identifier=PLUGIN_TYPE, from_json_hook=ClickHouseQuery.from_json
    )


class ClickHouseQueryBuilder(cogbuilder.Builder[cogvariants.Dataquery]):
    """`ClickHouseQueryBuilder(sql).ref_id("B").time_series().datasource(uid)`."""

    def __init__(self, sql: Sql) -> None:
        self._internal = ClickHouseQuery(sql)

    def build(self) -> ClickHouseQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def time_series(self) -> Self:
        self._internal.format = Format.TIME_SERIES
        return self

    def table(self) -> Self:
        self._internal.format = Format.TABLE
        return self

    def datasource(self, uid: str) -> Self:
        self._internal.datasource_uid = uid
        return self


class VariableQuery(dict[str, object]):
    """A query variable's query, as the plugin stores it (`CHVariableQuery`,
    src/data/CHVariableSupport.tsx: custom SQL, run through `metricFindQuery`, whose
    first column is each option's value and second its text), remembering its Sql."""

    def __init__(self, sql: Sql, ref_id: str) -> None:
        super().__init__(refId=ref_id, queryType="sql", rawSql=sql.text)
        self.sql = sql
