"""tests/grafana_macros.py against the pinned plugin's rules: the expected strings are
those of grafana/clickhouse-datasource v4.20.0 pkg/macros/macros_test.go and
docs/sources/query-editor.md where they have one, and follow the rules of macropro
v1.0.1 (parser.go, macropro.go, defaults.go) where they do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from grafana_macros import (
    RULES_OF,
    MacroError,
    QueryContext,
    expand,
    expand_rule,
    format_duration,
    go_duration_seconds,
    seconds_to_hms,
    strip_comments,
)

from dashboards.query import PLUGIN_VERSION

FROM = datetime(2014, 11, 12, 11, 45, 26, 123000, tzinfo=UTC)  # 1415792726.123
TO = datetime(2015, 11, 12, 11, 45, 26, 456000, tzinfo=UTC)  # 1447328726.456
CONTEXT = QueryContext(FROM, TO, timedelta(seconds=20), {"municipality": "peje", "q": "o'k"})
MINUTE = QueryContext(FROM, TO, timedelta(minutes=1))
FROM_S, TO_S = "toDateTime(1415792726)", "toDateTime(1447328726)"


# --- each handler -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$__timeFilter(time)", f"time >= {FROM_S} AND time <= {TO_S}"),
        ("$__timeFilter(cast(sth as timestamp) )",
         f"cast(sth as timestamp) >= {FROM_S} AND cast(sth as timestamp) <= {TO_S}"),
        ("$__timeFilter_ms(time)", "time >= fromUnixTimestamp64Milli(1415792726123) "
                                   "AND time <= fromUnixTimestamp64Milli(1447328726456)"),
        ("$__dateFilter(date)", "date >= toDate('2014-11-12') AND date <= toDate('2015-11-12')"),
        ("$__dt(d, t)", "(d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')) AND "
                        f"(t >= {FROM_S} AND t <= {TO_S})"),
        ("$__dateTimeFilter(d, t)", "(d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')) "
                                    f"AND (t >= {FROM_S} AND t <= {TO_S})"),
        ("$__fromTime", FROM_S),
        ("$__toTime", TO_S),
        ("$__fromTime_ms", "fromUnixTimestamp64Milli(1415792726123)"),
        ("$__toTime_ms", "fromUnixTimestamp64Milli(1447328726456)"),
        ("$__timeFrom(ts)", f"ts >= {FROM_S}"),
        ("$__timeTo(ts)", f"ts <= {TO_S}"),
        ("$__timeGroup(ts, 5m)", "toStartOfInterval(toDateTime(ts), INTERVAL 300 second)"),
        ("$__timeGroup(ts, '1h')", "toStartOfInterval(toDateTime(ts), INTERVAL 3600 second)"),
        ("$__timeGroup(ts, 1.5s)", "toStartOfInterval(toDateTime(ts), INTERVAL 2 second)"),
        ("$__interval_s", "20"),
        ("$__timeInterval(c)", "toStartOfInterval(toDateTime(c), INTERVAL 20 second)"),
        ("$__timeInterval_ms(c)",
         "toStartOfInterval(toDateTime64(c, 3), INTERVAL 20000 millisecond)"),
        ("$__interval", "20s"),
        ("$__interval_ms", "20000"),
    ],
)  # fmt: skip
def test_each_macro_expands_as_the_plugin_does(text: str, expanded: str) -> None:
    assert expand_rule(text, CONTEXT) == expanded


@pytest.mark.parametrize(
    "text",
    ["$__timeFilter()", "$__timeFilter(a, b)", "$__timeFilter_ms", "$__dateFilter(a, b)",
     "$__dt(d)", "$__dateTimeFilter(d, t, x)", "$__timeInterval", "$__timeInterval_ms()",
     "$__timeFrom", "$__timeFrom()", "$__timeTo(a, b)", "$__timeGroup(ts)",
     "$__timeGroup(ts, 1d)", "$__timeGroup(ts, nope)", "$__timeGroup(ts, 0s)",
     "$__timeGroup(ts, -5m)", "$__timeGroup(ts, 400ms)", "$__table", "$__column"],
)  # fmt: skip
def test_a_handler_error_fails_the_query(text: str) -> None:
    with pytest.raises(MacroError):
        expand_rule(text, CONTEXT)


def test_table_and_column_come_from_the_query_context() -> None:
    built = QueryContext(FROM, TO, table="visits", column="stored_at")
    assert expand_rule("SELECT $__column FROM $__table", built) == "SELECT stored_at FROM visits"


def test_intervals_under_a_second_or_millisecond_count_as_one() -> None:
    short = QueryContext(FROM, TO, timedelta(microseconds=200))
    assert expand_rule("$__interval_s", short) == "1"
    assert expand_rule("$__timeInterval_ms(c)", short).endswith("INTERVAL 1 millisecond)")
    assert expand_rule("$__interval_ms", short) == "0"  # truncated, with no floor


@pytest.mark.parametrize(
    ("interval", "text"),
    [(timedelta(days=1), "24h"), (timedelta(minutes=90), "90m"), (timedelta(seconds=20), "20s"),
     (timedelta(milliseconds=1500), "1500ms"), (timedelta(0), "0s"),
     (timedelta(minutes=-5), "5m")],
)  # fmt: skip
def test_the_backend_interval_is_the_largest_unit_that_divides(
    interval: timedelta, text: str
) -> None:
    assert format_duration(interval) == text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300), ("1h30m", 5400), ("1.5s", 1.5), ("-2s", -2), ("+3m", 180), ("0", 0),
     ("300ms", 0.3), (".5h", 1800)],
)  # fmt: skip
def test_time_group_reads_go_durations(text: str, seconds: float) -> None:
    assert go_duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "1d", "m", ".s", "5mm", "1w"])
def test_time_group_refuses_what_go_refuses(text: str) -> None:
    with pytest.raises(MacroError):
        go_duration_seconds(text)


# --- the scan ---------------------------------------------------------------------------------


def test_a_query_without_the_prefix_is_sent_as_written() -> None:
    sql = "SELECT 1 -- keep\n/* this too */"
    assert expand_rule(sql, CONTEXT) == sql


def test_comments_are_blanked_and_their_macros_never_expand() -> None:
    sql = "a -- $__fromTime\nb /* $__toTime */ c $__fromTime"
    assert (
        expand_rule(sql, CONTEXT)
        == f"a {' ' * len('-- $__fromTime')}\nb {' ' * len('/* $__toTime */')} c {FROM_S}"
    )


def test_an_unterminated_block_comment_runs_to_the_end() -> None:
    assert (
        expand_rule("$__fromTime /* $__toTime", CONTEXT) == f"{FROM_S} {' ' * len('/* $__toTime')}"
    )


def test_a_line_comment_ends_at_a_carriage_return() -> None:
    assert strip_comments("a --x\rb") == "a    \rb"


def test_comment_markers_inside_string_literals_are_text() -> None:
    for sql in ["x = 'it\\'s -- fine' AND ", "x = 'a\\'/*x' AND ", "x = 'it''s' AND ",
                'x = "-- not" AND ']:  # fmt: skip
        assert expand_rule(sql + "$__fromTime", CONTEXT) == sql + FROM_S


def test_a_comment_is_blanked_byte_for_byte() -> None:
    assert strip_comments("a /* ë */") == "a " + " " * 8  # ë is two bytes in UTF-8


def test_macros_inside_string_literals_expand() -> None:
    assert expand_rule("SELECT '$__fromTime'", CONTEXT) == f"SELECT '{FROM_S}'"


def test_unknown_names_and_a_bare_prefix_stay_and_their_parentheses_are_scanned() -> None:
    sql = "$__conditionalAll(x, $__fromTime) $__ $__fromTimes"
    assert expand_rule(sql, CONTEXT) == f"$__conditionalAll(x, {FROM_S}) $__ $__fromTimes"


def test_the_longest_name_wins() -> None:
    assert expand_rule("$__interval_ms $__interval_s $__interval", CONTEXT) == "20000 20 20s"


def test_arguments_may_hold_parentheses_commas_and_quotes() -> None:
    sql = "$__timeFilter(if(a, b, ')'))"
    assert expand_rule(sql, CONTEXT) == (f"if(a, b, ')') >= {FROM_S} AND if(a, b, ')') <= {TO_S}")
    with pytest.raises(MacroError, match="received 1"):  # a comma in quotes splits nothing
        expand_rule("$__dt('a,b')", CONTEXT)


def test_every_macro_takes_a_parenthesis_that_follows_it() -> None:
    assert expand_rule("$__fromTime(x) AND $__fromTime (x)", CONTEXT) == (
        f"{FROM_S} AND {FROM_S} (x)"
    )


def test_an_unbalanced_parenthesis_is_no_argument_list() -> None:
    assert expand_rule("$__fromTime(x", CONTEXT) == f"{FROM_S}(x"
    with pytest.raises(MacroError, match="received 0"):
        expand_rule("$__timeFilter(c", CONTEXT)


def test_nested_macros_expand_innermost_first() -> None:
    assert expand_rule("SELECT $__timeInterval($__fromTime) AS t", MINUTE) == (
        f"SELECT toStartOfInterval(toDateTime({FROM_S}), INTERVAL 60 second) AS t"
    )
    assert expand_rule("$__timeFilter(coalesce(closed_at, $__toTime))", MINUTE) == (
        f"coalesce(closed_at, {TO_S}) >= {FROM_S} AND coalesce(closed_at, {TO_S}) <= {TO_S}"
    )


def test_a_nested_expansion_cannot_add_an_argument() -> None:
    # $__dt's first argument expands to text with commas; it stays one argument.
    sql = "$__dt($__timeInterval(d), t)"
    assert expand_rule(sql, CONTEXT).startswith(
        "(toStartOfInterval(toDateTime(d), INTERVAL 20 second) >= toDate('2014-11-12')"
    )


def test_handler_output_is_not_scanned_again() -> None:
    table = QueryContext(FROM, TO, table="$__toTime")
    assert expand_rule("$__table", table) == "$__toTime"


def test_nesting_is_bounded() -> None:
    sql = "$__timeFilter(" * 130 + "c" + ")" * 130
    with pytest.raises(MacroError, match="nesting"):
        expand_rule(sql, CONTEXT)


def test_days_are_the_plugin_process_days_not_the_dashboards() -> None:
    # 23:30 UTC on 1 March is 00:30 on 2 March in Kosovo: the plugin still says 1 March.
    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    sql = expand_rule("$__dateFilter(d)", QueryContext(late, late))
    assert sql == "d >= toDate('2026-03-01') AND d <= toDate('2026-03-01')"


# --- the frontend (panels only) --------------------------------------------------------------


def test_variables_are_replaced_before_macros_and_sqlstring_escapes_quotes() -> None:
    sql = "m = ${municipality:sqlstring} AND $municipality = ${q:sqlstring} AND ${q}"
    assert expand(sql, CONTEXT) == "m = 'peje' AND peje = 'o''k' AND o'k"
    assert expand("${q:singlequote} ${q:raw}", CONTEXT) == "'o\\'k' o'k"


def test_a_panel_gets_grafanas_interval_text_and_a_rule_the_plugins() -> None:
    day = QueryContext(FROM, TO, timedelta(days=1))
    assert expand("$__interval $__interval_ms ${__interval}", day) == "1d 86400000 1d"
    assert expand_rule("$__interval $__interval_ms", day) == "24h 86400000"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(31536000 * 2 + 5, "2y"), (86400 * 3, "3d"), (5400, "1h"), (90, "1m"), (20, "20s"),
     (0.25, "250ms"), (0.0001, "less than a millisecond")],
)  # fmt: skip
def test_grafanas_interval_text_is_its_largest_unit(seconds: float, text: str) -> None:
    assert seconds_to_hms(seconds) == text


def test_rules_get_no_variable_replacement() -> None:
    assert expand_rule("x = '$municipality'", CONTEXT) == "x = '$municipality'"


@pytest.mark.parametrize("text", ["$nobody", "${nobody}", "${municipality:csv}"])
def test_an_unknown_variable_or_format_is_an_error(text: str) -> None:
    with pytest.raises(MacroError):
        expand(text, CONTEXT)


def test_a_naive_time_range_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        QueryContext(datetime(2026, 1, 1), TO)  # noqa: DTZ001  # the naive instant under test


def test_the_rules_are_those_of_the_pinned_plugin() -> None:
    # A new pin needs its source read again (tests/grafana_macros.py, its docstring).
    assert RULES_OF == PLUGIN_VERSION
