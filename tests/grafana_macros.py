"""What Grafana and the ClickHouse plugin do to a query's text before ClickHouse runs it,
so tests can run every panel's query against a real store.

Two steps, in Grafana's order:

1. Template variables, replaced by the frontend (the plugin's `applyTemplateVariables`
   calls `templateSrv.replace(rawSql, scopedVars, this.format)`; its `format` leaves a
   single value as it is — grafana/clickhouse-datasource src/data/CHDatasource.ts).
   `${name:sqlstring}` quotes the value and doubles its `'` (Grafana's "Advanced
   variable format options"); our queries use it, so a value can never end the string.
2. Macros, expanded by the plugin's backend (pkg/macros/macros.go, registered in its
   `Macros` map; the arguments are split at commas and trimmed, grafana/sqlds):

   | macro | expansion |
   |---|---|
   | `$__fromTime` / `$__toTime` | `toDateTime(<unix seconds>)` |
   | `$__fromTime_ms` / `$__toTime_ms` | `fromUnixTimestamp64Milli(<unix ms>)` |
   | `$__timeFilter(c)` | `c >= toDateTime(<from>) AND c <= toDateTime(<to>)` |
   | `$__timeFilter_ms(c)` | the same with `fromUnixTimestamp64Milli` |
   | `$__dateFilter(c)` | `c >= toDate('<from day>') AND c <= toDate('<to day>')` |
   | `$__dateTimeFilter(d, t)`, `$__dt(d, t)` | `(<dateFilter d>) AND (<timeFilter t>)` |
   | `$__timeInterval(c)` | `toStartOfInterval(toDateTime(c), INTERVAL <s> second)` |
   | `$__timeInterval_ms(c)` | `toStartOfInterval(toDateTime64(c, 3), INTERVAL <ms> millisecond)` |
   | `$__interval_s` | `<s>`: the interval in whole seconds, at least 1 |

   Days are taken in UTC (the plugin formats Go's `time.Time` of the request's range,
   which the backend holds in UTC). Anything else — `$__conditionalAll`, `$__timeGroup`,
   Grafana's `$__interval`, a misspelt name — is a `MacroError` here, so a query that
   would reach ClickHouse half-expanded fails its test instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


class MacroError(Exception):
    """A query uses a macro or variable this module cannot expand."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class QueryContext:
    """The request Grafana would send: a time range, an interval, variable values."""

    time_from: datetime
    time_to: datetime
    interval: timedelta = timedelta(minutes=1)
    variables: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.time_from.tzinfo is None or self.time_to.tzinfo is None:
            raise ValueError("a query's time range is two aware instants")


def expand(sql: str, context: QueryContext) -> str:
    """The SQL ClickHouse would receive for this query text and request."""
    return _expand_macros(_expand_variables(sql, context.variables), context)


# --- 1. template variables ------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


def _formatted(value: str, fmt: str | None) -> str:
    if fmt is None or fmt == "raw":
        return value
    if fmt == "sqlstring":
        return "'" + value.replace("'", "''") + "'"
    if fmt == "singlequote":
        return "'" + value.replace("'", "\\'") + "'"
    raise MacroError(f"variable format not supported here: {fmt}")


def _expand_variables(sql: str, variables: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[3]
        if match[3] and name.startswith("__"):
            return match[0]  # a plugin macro: step 2
        if name not in variables:
            raise MacroError(f"unknown variable ${name} in: {sql[:200]}")
        return _formatted(variables[name], match[2])

    return _VARIABLE.sub(replace, sql)


# --- 2. plugin macros ---------------------------------------------------------------------------

_MACRO = re.compile(r"\$__(\w+)")


def _arguments(sql: str, start: int) -> tuple[list[str], int]:
    """The comma-separated arguments of the parenthesis at `start`, and where it ends."""
    depth, args, begin = 0, [], start + 1
    for index in range(start, len(sql)):
        char = sql[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[begin:index].strip())
                return args, index + 1
        elif char == "," and depth == 1:
            args.append(sql[begin:index].strip())
            begin = index + 1
    raise MacroError(f"unbalanced parenthesis after a macro in: {sql[:200]}")


def _expand_macros(sql: str, context: QueryContext) -> str:
    out, position = [], 0
    while (match := _MACRO.search(sql, position)) is not None:
        name, end = match[1], match.end()
        args: list[str] = []
        if sql.startswith("(", end):
            args, end = _arguments(sql, end)
        if name not in _MACROS:
            raise MacroError(f"macro not expanded by grafana_macros: $__{name}")
        out += [sql[position : match.start()], _MACROS[name](context, args)]
        position = end
    return "".join(out) + sql[position:]


def _unix(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(seconds=1)


def _unix_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _datetime(moment: datetime) -> str:
    return f"toDateTime({_unix(moment)})"


def _datetime64(moment: datetime) -> str:
    return f"fromUnixTimestamp64Milli({_unix_ms(moment)})"


def _date(moment: datetime) -> str:
    return f"toDate('{moment.astimezone(UTC):%Y-%m-%d}')"


def _one(args: Sequence[str], name: str) -> str:
    if len(args) != 1:
        raise MacroError(f"$__{name} takes one argument, got {len(args)}")
    return args[0]


def _none(args: Sequence[str], name: str) -> None:
    if args:
        raise MacroError(f"$__{name} takes no argument")


def _between(column: str, low: str, high: str) -> str:
    return f"{column} >= {low} AND {column} <= {high}"


def _interval_s(context: QueryContext) -> int:
    return max(int(context.interval.total_seconds()), 1)


def _interval_ms(context: QueryContext) -> int:
    return max(context.interval // timedelta(milliseconds=1), 1)


def _time_filter(c: QueryContext, a: Sequence[str]) -> str:
    return _between(_one(a, "timeFilter"), _datetime(c.time_from), _datetime(c.time_to))


def _time_filter_ms(c: QueryContext, a: Sequence[str]) -> str:
    return _between(_one(a, "timeFilter_ms"), _datetime64(c.time_from), _datetime64(c.time_to))


def _date_filter(c: QueryContext, a: Sequence[str]) -> str:
    return _between(_one(a, "dateFilter"), _date(c.time_from), _date(c.time_to))


def _date_time_filter(c: QueryContext, a: Sequence[str]) -> str:
    if len(a) != 2:  # a date column and a time column
        raise MacroError(f"$__dateTimeFilter takes two arguments, got {len(a)}")
    dates = _between(a[0], _date(c.time_from), _date(c.time_to))
    return f"({dates}) AND ({_between(a[1], _datetime(c.time_from), _datetime(c.time_to))})"


def _time_interval(c: QueryContext, a: Sequence[str]) -> str:
    column = _one(a, "timeInterval")
    return f"toStartOfInterval(toDateTime({column}), INTERVAL {_interval_s(c)} second)"


def _time_interval_ms(c: QueryContext, a: Sequence[str]) -> str:
    column = _one(a, "timeInterval_ms")
    return f"toStartOfInterval(toDateTime64({column}, 3), INTERVAL {_interval_ms(c)} millisecond)"


def _constant(name: str, render: Callable[[QueryContext], str]) -> _Macro:
    def macro(context: QueryContext, args: Sequence[str]) -> str:
        _none(args, name)
        return render(context)

    return macro


_Macro = Callable[[QueryContext, Sequence[str]], str]

_MACROS: dict[str, _Macro] = {
    "fromTime": _constant("fromTime", lambda c: _datetime(c.time_from)),
    "toTime": _constant("toTime", lambda c: _datetime(c.time_to)),
    "fromTime_ms": _constant("fromTime_ms", lambda c: _datetime64(c.time_from)),
    "toTime_ms": _constant("toTime_ms", lambda c: _datetime64(c.time_to)),
    "timeFilter": _time_filter,
    "timeFilter_ms": _time_filter_ms,
    "dateFilter": _date_filter,
    "dateTimeFilter": _date_time_filter,
    "dt": _date_time_filter,
    "timeInterval": _time_interval,
    "timeInterval_ms": _time_interval_ms,
    "interval_s": _constant("interval_s", lambda c: str(_interval_s(c))),
}
