from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from grafana_macros import MacroError, QueryContext, expand

FROM = datetime(2014, 11, 12, 11, 45, 26, 123000, tzinfo=UTC)  # 1415792726.123
TO = datetime(2015, 11, 12, 11, 45, 26, 456000, tzinfo=UTC)  # 1447328726.456
CONTEXT = QueryContext(FROM, TO, timedelta(seconds=20), {"municipality": "peje", "q": "o'k"})


@pytest.mark.parametrize(
    ("text", "expanded"),
    [  # the plugin's documented outputs (docs/sources/query-editor.md, "Macros")
        ("$__timeFilter(time)",
         "time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)"),
        ("$__timeFilter_ms(time)", "time >= fromUnixTimestamp64Milli(1415792726123) "
                                   "AND time <= fromUnixTimestamp64Milli(1447328726456)"),
        ("$__dateFilter(date)", "date >= toDate('2014-11-12') AND date <= toDate('2015-11-12')"),
        ("$__dt(d, t)", "(d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')) AND "
                        "(t >= toDateTime(1415792726) AND t <= toDateTime(1447328726))"),
        ("$__fromTime", "toDateTime(1415792726)"),
        ("$__toTime", "toDateTime(1447328726)"),
        ("$__fromTime_ms", "fromUnixTimestamp64Milli(1415792726123)"),
        ("$__toTime_ms", "fromUnixTimestamp64Milli(1447328726456)"),
        ("$__interval_s", "20"),
        ("$__timeInterval(c)", "toStartOfInterval(toDateTime(c), INTERVAL 20 second)"),
        ("$__timeInterval_ms(c)",
         "toStartOfInterval(toDateTime64(c, 3), INTERVAL 20000 millisecond)"),
    ],
)  # fmt: skip
def test_macros_expand_as_the_plugin_documents(text: str, expanded: str) -> None:
    assert expand(text, CONTEXT) == expanded


def test_arguments_may_hold_parentheses_and_text_around_is_kept() -> None:
    sql = "SELECT $__timeInterval(toDateTime(at, 'UTC')) AS t FROM x WHERE $__fromTime < y"
    assert expand(sql, CONTEXT) == (
        "SELECT toStartOfInterval(toDateTime(toDateTime(at, 'UTC')), INTERVAL 20 second) AS t "
        "FROM x WHERE toDateTime(1415792726) < y"
    )


def test_an_interval_under_a_second_counts_as_one_second() -> None:
    short = QueryContext(FROM, TO, timedelta(milliseconds=200))
    assert expand("$__interval_s", short) == "1"


def test_variables_are_replaced_before_macros_and_sqlstring_escapes_quotes() -> None:
    sql = "m = ${municipality:sqlstring} AND $municipality = ${q:sqlstring} AND ${q}"
    assert expand(sql, CONTEXT) == "m = 'peje' AND peje = 'o''k' AND o'k"


@pytest.mark.parametrize(
    "text",
    ["$__conditionalAll(a, $municipality)", "$__timeGroup(c, 5m)", "$__interval", "$nobody",
     "${nobody}", "${municipality:csv}", "$__timeFilter(a, b)", "$__fromTime(x)",
     "$__timeFilter(c"],
)  # fmt: skip
def test_what_cannot_be_expanded_is_an_error(text: str) -> None:
    with pytest.raises(MacroError):
        expand(text, CONTEXT)


def test_a_naive_time_range_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        QueryContext(datetime(2026, 1, 1), TO)  # noqa: DTZ001  # the naive instant under test
