"""What Grafana and the ClickHouse plugin do to a query's text before ClickHouse runs it,
so tests can run every panel's and alert rule's query against a real store.

The rules are those of the pinned plugin, grafana-clickhouse-datasource 4.20.0
(dashboards/query.py PLUGIN_VERSION), read from its source at tag v4.20.0 and from the
macro engine it pins in go.mod, github.com/grafana/macropro v1.0.1:

- grafana/clickhouse-datasource `pkg/plugin/datasource.go` (`ds.Interpolator =
  interpolateMacros`) and `pkg/plugin/driver.go` (`interpolateMacros`; `Macros()` is
  empty): every backend query goes through `macros.Interpolate` and nothing else.
- grafana/clickhouse-datasource `pkg/macros/macros.go`: the handlers, `ClickHouseMacros`
  (macropro's defaults merged with the plugin's overrides) and `clickHouseComments`
  (`LineComment | BlockComment | BackslashEscape`); `pkg/macros/macros_test.go` has the
  expected outputs the unit tests reuse.
- grafana/macropro `parser.go` (`Interpolate`, `expand`, `findClosingParen`,
  `parseArgs`, `scanStringLiteral`, `scanStringLiteralBackslash`), `macropro.go`
  (`StripComments`) and `defaults.go` (`DefaultMacros`: `interval`, `interval_ms`,
  `table`, `column`; `FormatDuration`: the largest unit that divides). The stored
  copies of defaults.go hold no v1.0.1 file itself; FormatDuration is taken from the
  one before 1.1.0 rewrote it (macropro CHANGELOG, #33), and the other defaults it
  changed (`timeFrom`, `timeTo`, `timeGroup`) are overridden by the plugin anyway.
- grafana/clickhouse-datasource `src/data/CHDatasource.ts` (`applyTemplateVariables`:
  the frontend replaces template variables first) and Grafana's
  `public/app/features/query/state/PanelQueryRunner.ts` (the panel's scoped
  `__interval` / `__interval_ms`) with `packages/grafana-data/src/datetime/rangeutil.ts`
  (`secondsToHms`, the text of `__interval`).

Two steps, in Grafana's order:

1. Panels only (`expand`): the frontend's template variables. `${name:sqlstring}` quotes
   the value and doubles its `'`; `$name`, `${name}`, `${name:raw}` and
   `${name:singlequote}` as Grafana formats them; the panel's `$__interval` (Grafana's
   interval text: 1d, 5m, 20s) and `$__interval_ms`. An unknown variable is an error
   here (Grafana would leave it for ClickHouse to reject). Alert rules have no frontend
   (`expand_rule`): the backend gets their text as written.
2. The backend (`interpolate`), macropro's rules:
   - A query without `$__` is sent as written.
   - Otherwise `-- …` (to the end of the line) and `/* … */` (unterminated: to the end)
     are blanked with spaces, outside string literals; a literal is `'…'` or `"…"` with
     `''` / `""` and backslash escapes. A macro in a comment never expands.
   - Macros inside string literals do expand: only comments hide them.
   - A name is the longest run of `[A-Za-z0-9_]` after `$__`. An unknown name (and a
     bare `$__`) is left as it is and scanning goes on after it, so macros inside its
     parentheses still expand; ClickHouse then rejects the leftover.
   - A `(` right after a known name opens its arguments, up to the matching `)`
     (quotes skipped, here without backslash escapes). Arguments are split at the
     commas outside parentheses and quotes and trimmed; `()` is no argument. A `(`
     without its `)` is no argument list: it stays as text. Every macro takes the
     parenthesis, even one that needs no argument (`$__fromTime(x)` is `$__fromTime`).
   - An argument holding `$__` is expanded first (at most 128 levels); its boundaries
     were fixed before, so a comma in an expansion cannot add an argument. What a
     handler returns is never scanned again.
   - A handler's error fails the whole query: `MacroError` here.

   | macro | expansion |
   |---|---|
   | `$__fromTime` / `$__toTime` | `toDateTime(<unix seconds>)` |
   | `$__fromTime_ms` / `$__toTime_ms` | `fromUnixTimestamp64Milli(<unix ms>)` |
   | `$__timeFilter(c)` | `c >= toDateTime(<from>) AND c <= toDateTime(<to>)` |
   | `$__timeFilter_ms(c)` | the same with `fromUnixTimestamp64Milli` |
   | `$__timeFrom(c)` / `$__timeTo(c)` | `c >= toDateTime(<from>)` / `c <= toDateTime(<to>)` |
   | `$__dateFilter(c)` | `c >= toDate('<from day>') AND c <= toDate('<to day>')` |
   | `$__dateTimeFilter(d, t)`, `$__dt(d, t)` | `(<dateFilter d>) AND (<timeFilter t>)` |
   | `$__timeInterval(c)` | `toStartOfInterval(toDateTime(c), INTERVAL <s> second)` |
   | `$__timeInterval_ms(c)` | `toStartOfInterval(toDateTime64(c, 3), INTERVAL <ms> millisecond)` |
   | `$__timeGroup(c, 5m)` | `toStartOfInterval(toDateTime(c), INTERVAL 300 second)` (Go units) |
   | `$__interval_s` | `<s>`: the interval in whole seconds, at least 1 |
   | `$__interval` / `$__interval_ms` | `5m` (FormatDuration) / `<ms>` |
   | `$__table` / `$__column` | the query's table / column (an error without one) |

   Days of `$__dateFilter` are those of the plugin process's time zone (the SDK builds
   the range with Go's `time.Unix`, grafana-plugin-sdk-go
   backend/convert_from_protobuf.go): UTC in the Grafana image, never the dashboard's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo


class MacroError(Exception):
    """A query the plugin (or Grafana's frontend) would refuse."""


RULES_OF = "4.20.0"  # the plugin version whose source these rules were read from
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PLUGIN_PROCESS_TZ: tzinfo = UTC  # the Grafana image sets no TZ
_PREFIX = "$__"
_MAX_NESTING = 128


@dataclass(frozen=True)
class QueryContext:
    """The request Grafana would send: a time range, an interval, variable values, and
    the table and column the query builder would name (raw SQL names none)."""

    time_from: datetime
    time_to: datetime
    interval: timedelta = timedelta(minutes=1)
    variables: Mapping[str, str] = field(default_factory=dict)
    table: str = ""
    column: str = ""

    def __post_init__(self) -> None:
        if self.time_from.tzinfo is None or self.time_to.tzinfo is None:
            raise ValueError("a query's time range is two aware instants")


def expand(sql: str, context: QueryContext) -> str:
    """The SQL ClickHouse would receive for this panel query and request."""
    return interpolate(_replace_variables(sql, context), context)


def expand_rule(sql: str, context: QueryContext) -> str:
    """The SQL ClickHouse would receive for this alert rule query (no frontend)."""
    return interpolate(sql, context)


# --- 1. the frontend: template variables ----------------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


def seconds_to_hms(seconds: float) -> str:
    """Grafana's interval text (rangeutil.secondsToHms): the largest non-zero unit."""
    remainder = seconds
    for size, unit in ((31536000, "y"), (86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if count := math.floor(remainder / size):
            return f"{count}{unit}"
        remainder %= size
    if milliseconds := math.floor(seconds * 1000):
        return f"{milliseconds}ms"
    return "less than a millisecond"


def _scoped(context: QueryContext) -> dict[str, str]:
    """The built-in variables a panel's query runner adds to every request."""
    interval_ms = context.interval // timedelta(milliseconds=1)
    return {"__interval": seconds_to_hms(interval_ms / 1000), "__interval_ms": str(interval_ms)}


def _formatted(value: str, fmt: str | None) -> str:
    if fmt is None or fmt == "raw":
        return value
    if fmt == "sqlstring":
        return "'" + value.replace("'", "''") + "'"
    if fmt == "singlequote":
        return "'" + value.replace("'", "\\'") + "'"
    raise MacroError(f"variable format not supported here: {fmt}")


def _replace_variables(sql: str, context: QueryContext) -> str:
    known = {**context.variables, **_scoped(context)}

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[3]
        if name in known:
            return _formatted(known[name], match[2])
        if name.startswith("__"):
            return match[0]  # a plugin macro: step 2
        raise MacroError(f"unknown variable ${name} in: {sql[:200]}")

    return _VARIABLE.sub(replace, sql)


# --- 2. the backend: macropro's scan ---------------------------------------------------------


def interpolate(sql: str, context: QueryContext) -> str:
    """macros.Interpolate: comments blanked, then every known macro expanded."""
    if _PREFIX not in sql:
        return sql
    work = strip_comments(sql)
    if _PREFIX not in work:
        return work
    return _expand(work, context, depth=0)


def strip_comments(query: str) -> str:
    """`--` and `/* */` comments outside string literals, blanked byte for byte."""
    if "-" not in query and "/" not in query:
        return query
    out, index = [], 0
    while index < len(query):
        end, is_comment = _next_token(query, index)
        part = query[index:end]
        out.append(" " * len(part.encode()) if is_comment else part)
        index = end
    return "".join(out)


def _next_token(query: str, index: int) -> tuple[int, bool]:
    """Where the literal, comment or character at `index` ends, and if it is a comment."""
    if query[index] in "'\"":
        return _literal_end(query, index, backslash_escapes=True), False
    if query.startswith("--", index):
        return _line_end(query, index), True
    if query.startswith("/*", index):
        close = query.find("*/", index + 2)
        return (len(query) if close < 0 else close + 2), True
    return index + 1, False


def _literal_end(text: str, start: int, *, backslash_escapes: bool) -> int:
    """Just past the quote closing the literal at `start` (the end if it never closes)."""
    quote, index = text[start], start + 1
    while index < len(text):
        if backslash_escapes and text[index] == "\\" and index + 1 < len(text):
            index += 2
        elif text[index] != quote:
            index += 1
        elif text.startswith(quote * 2, index):
            index += 2
        else:
            return index + 1
    return index


def _line_end(text: str, start: int) -> int:
    ends = [found for found in (text.find("\n", start), text.find("\r", start)) if found >= 0]
    return min(ends, default=len(text))


_NAME = re.compile(r"[A-Za-z0-9_]*")


def _expand(work: str, context: QueryContext, depth: int) -> str:
    if depth > _MAX_NESTING:
        raise MacroError(f"macro nesting exceeds {_MAX_NESTING} levels")
    out, index = [], 0
    while (start := work.find(_PREFIX, index)) >= 0:
        out.append(work[index:start])
        name_match = _NAME.match(work, start + len(_PREFIX))
        assert name_match is not None  # `*` matches the empty string too
        name, index = name_match[0], name_match.end()
        handler = _MACROS.get(name)
        if handler is None:  # a bare prefix or an unknown name stays as it is
            out.append(work[start:index])
            continue
        raw, index = _argument_text(work, index)
        args = [_expand(a, context, depth + 1) if _PREFIX in a else a for a in _split(raw)]
        out.append(_call(handler, name, context, args))
    return "".join(out) + work[index:]


def _argument_text(work: str, index: int) -> tuple[str, int]:
    """The text inside the parenthesis at `index` and where it ends; none if unbalanced."""
    if not work.startswith("(", index):
        return "", index
    depth, cursor = 0, index
    while cursor < len(work):
        char = work[cursor]
        if char in "'\"":
            cursor = _literal_end(work, cursor, backslash_escapes=False)
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == ")" and depth == 0:
            return work[index + 1 : cursor], cursor + 1
        cursor += 1
    return "", index


def _split(raw: str) -> list[str]:
    """parseArgs: top-level commas split, each argument trimmed; blank is none."""
    raw = raw.strip()
    if not raw:
        return []
    args, depth, begin, cursor = [], 0, 0, 0
    while cursor < len(raw):
        char = raw[cursor]
        if char in "'\"":
            cursor = _literal_end(raw, cursor, backslash_escapes=False)
            continue
        if char == "," and depth == 0:
            args.append(raw[begin:cursor].strip())
            begin = cursor + 1
        depth += {"(": 1, ")": -1}.get(char, 0)
        cursor += 1
    return [*args, raw[begin:].strip()]


def _call(handler: _Macro, name: str, context: QueryContext, args: list[str]) -> str:
    try:
        return handler(context, args)
    except MacroError as exc:
        raise MacroError(f"macro {_PREFIX}{name}({', '.join(args)}): {exc}") from exc


# --- the handlers ------------------------------------------------------------------------------

_Macro = Callable[[QueryContext, Sequence[str]], str]


def _unix(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(seconds=1)


def _unix_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _datetime(moment: datetime) -> str:
    return f"toDateTime({_unix(moment)})"


def _datetime64(moment: datetime) -> str:
    return f"fromUnixTimestamp64Milli({_unix_ms(moment)})"


def _date(moment: datetime) -> str:
    return f"toDate('{moment.astimezone(PLUGIN_PROCESS_TZ):%Y-%m-%d}')"


def _arguments(args: Sequence[str], count: int) -> Sequence[str]:
    if len(args) != count:
        raise MacroError(f"expected {count} argument(s), received {len(args)}")
    return args


def _between(column: str, low: str, high: str) -> str:
    return f"{column} >= {low} AND {column} <= {high}"


def _interval_s(context: QueryContext) -> int:
    return int(max(context.interval.total_seconds(), 1))


def _interval_ms(context: QueryContext) -> int:
    return context.interval // timedelta(milliseconds=1)


def format_duration(interval: timedelta) -> str:
    """macropro v1.0.x FormatDuration: the largest of h, m, s that divides, else ms."""
    nanoseconds = abs(interval // timedelta(microseconds=1)) * 1000
    if nanoseconds == 0:
        return "0s"
    for size, unit in ((3600 * 10**9, "h"), (60 * 10**9, "m"), (10**9, "s")):
        if nanoseconds % size == 0:
            return f"{nanoseconds // size}{unit}"
    return f"{nanoseconds // 10**6}ms"


_GO_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9,
             "m": 60 * 10**9, "h": 3600 * 10**9}  # fmt: skip
_GO_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def go_duration_seconds(text: str) -> float:
    """Go's time.ParseDuration ("1h30m", "300ms", "-2.5s"), in seconds."""
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.removeprefix("+"))
    if body == "0":
        return 0.0
    if not body:
        raise MacroError(f"invalid duration {text!r}")
    total, index = 0.0, 0
    while index < len(body):
        part = _GO_PART.match(body, index)
        assert part is not None  # every group may be empty
        whole, fraction, unit = part.groups()
        if not (whole or fraction) or unit not in _GO_UNITS:
            raise MacroError(f"invalid duration {text!r}")
        total += float(f"{whole or 0}.{fraction or 0}") * _GO_UNITS[unit]
        index = part.end()
    return sign * total / 10**9


def _time_group(_: QueryContext, args: Sequence[str]) -> str:
    column, period = _arguments(args, 2)
    text = period.strip().strip("'\"")
    seconds = go_duration_seconds(text)
    whole = int(math.copysign(math.floor(abs(seconds) + 0.5), seconds))  # Go's math.Round
    if whole <= 0:
        raise MacroError(f"interval must be positive, got {text!r}")
    return f"toStartOfInterval(toDateTime({column.strip()}), INTERVAL {whole} second)"


def _from_context(attribute: str) -> _Macro:
    def macro(context: QueryContext, _: Sequence[str]) -> str:
        value: str = getattr(context, attribute)
        if not value:
            raise MacroError(f"no {attribute} name in query context")
        return value

    return macro


def _date_time_filter(c: QueryContext, a: Sequence[str]) -> str:
    dates, times = _arguments(a, 2)
    date_part = _between(dates, _date(c.time_from), _date(c.time_to))
    return f"({date_part}) AND ({_between(times, _datetime(c.time_from), _datetime(c.time_to))})"


_MACROS: dict[str, _Macro] = {
    "fromTime": lambda c, _: _datetime(c.time_from),
    "toTime": lambda c, _: _datetime(c.time_to),
    "fromTime_ms": lambda c, _: _datetime64(c.time_from),
    "toTime_ms": lambda c, _: _datetime64(c.time_to),
    "timeFilter": lambda c, a: _between(
        _arguments(a, 1)[0], _datetime(c.time_from), _datetime(c.time_to)),
    "timeFilter_ms": lambda c, a: _between(
        _arguments(a, 1)[0], _datetime64(c.time_from), _datetime64(c.time_to)),
    "timeFrom": lambda c, a: f"{_arguments(a, 1)[0]} >= {_datetime(c.time_from)}",
    "timeTo": lambda c, a: f"{_arguments(a, 1)[0]} <= {_datetime(c.time_to)}",
    "dateFilter": lambda c, a: _between(
        _arguments(a, 1)[0], _date(c.time_from), _date(c.time_to)),
    "dateTimeFilter": _date_time_filter,
    "dt": _date_time_filter,
    "timeInterval": lambda c, a: (f"toStartOfInterval(toDateTime({_arguments(a, 1)[0]}), "
                                  f"INTERVAL {_interval_s(c)} second)"),
    "timeInterval_ms": lambda c, a: (f"toStartOfInterval(toDateTime64({_arguments(a, 1)[0]}, 3), "
                                     f"INTERVAL {max(_interval_ms(c), 1)} millisecond)"),
    "timeGroup": _time_group,
    "interval_s": lambda c, _: str(_interval_s(c)),
    "interval": lambda c, _: format_duration(c.interval),
    "interval_ms": lambda c, _: str(_interval_ms(c)),
    "table": _from_context("table"),
    "column": _from_context("column"),
}  # fmt: skip
