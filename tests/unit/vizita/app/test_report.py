"""The HTML report: rendering from plain data (no store), the file, and the demo's exit."""

from __future__ import annotations

import contextlib
import itertools
import math
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest
from structlog.testing import capture_logs

import vizita.app.demo
import vizita.app.report
from sinks.errors import StoreQueryError
from sinks.periods import Period
from vizita.app.charts import Frame, chart_range, line_chart, nice_ceiling, svg_path, ticks
from vizita.app.report import render_report, report_title, save_report, write_report
from vizita.app.report_data import ReportData, month_named, quarter_named, targets_over
from vizita.app.report_map import CLASSES, colour_of, projection, spread
from vizita.app.report_text import render_text
from vizita.contract.display import (
    STANDING_BACKGROUND,
    Mark,
    Standing,
    format_target,
    format_value,
)
from vizita.contract.indicators import COUNT_INDICATORS, INDICATORS
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES
from vizita.contract.settings import Settings
from vizita.contract.targets import Target, Targets

TARGETS = Targets(
    min_denominator=20,
    hysteresis=0.02,
    defaults={
        "immunisation_counselling_coverage": Target(min=0.9),
        "missed_visit_rate": Target(max=0.15),
    },
    municipalities={"prizren": {"visits_completed": Target(min=120)}},
)
NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
FIRST, LAST = date(2026, 2, 24), date(2026, 3, 1)
BEHIND, AHEAD = STANDING_BACKGROUND[Standing.BEHIND], STANDING_BACKGROUND[Standing.ON_TARGET]
ALERTED = STANDING_BACKGROUND[Standing.ALERTED]


def _row(
    scope: str,
    indicator: str,
    window: int,
    day: date,
    value: float | None,
    *,
    denominator: int | None = 40,
) -> dict[str, Any]:
    numerator = 0 if value is None else round(value * (denominator or 1))
    return {
        "municipality": scope,
        "indicator": indicator,
        "window_days": window,
        "as_of": day,
        "numerator": numerator,
        "denominator": denominator,
        "value": value,
    }


def _value(scope: str, indicator: str, share: float, day: date = LAST) -> dict[str, Any]:
    """A 30-day row: counts of 150 (no denominator), shares of 40 visits (`share`, or
    1 - `share` for missed visits), 5 per nurse."""
    if indicator in COUNT_INDICATORS:
        return _row(scope, indicator, 30, day, 150.0, denominator=None)
    if indicator == "visits_per_nurse":
        return _row(scope, indicator, 30, day, 5.0, denominator=10)
    if indicator == "missed_visit_rate":  # good is low: as far below as others are above
        return _row(scope, indicator, 30, day, round(1 - share, 9))
    return _row(scope, indicator, 30, day, share)


def sample(**changes: Any) -> ReportData:
    days = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    series = [
        _row(ALL_KOSOVO, name, window, day, 0.5 + i / 100)
        for name in INDICATORS
        for window in (7, 30)
        for i, day in enumerate(days)
    ]
    latest = [_value(code, name, 0.95) for code in MUNICIPALITIES for name in INDICATORS]
    latest += [r for r in series if r["as_of"] == LAST]
    latest.append(_row("prizren", "immunisation_counselling_coverage", 30, LAST, 0.5))
    alerts = [
        {
            "municipality": "prizren",
            "indicator": "immunisation_counselling_coverage",
            "window_days": 30,
            "value": 0.5,
            "target": 0.9,
            "denominator": 40,
            "as_of": LAST - timedelta(days=3),
            "emitted_at": NOW,
        }
    ]
    values: dict[str, Any] = {
        "generated_at": NOW,
        "totals": {"visits": 1200, "voided": 12, "dead_letters": 7},
        "targets": TARGETS,
        "first_day": FIRST,
        "last_day": LAST,
        "series": series,
        "latest": latest,
        "alerts": alerts,
    }
    values.update(changes)
    return ReportData(**values)


def parse(page: str) -> ET.Element:
    """Strict: the page is also well-formed XML (every tag closed, only XML entities)."""
    return ET.fromstring(page)  # noqa: S314  # our own output, not untrusted input


def test_svg_path_of_a_known_series() -> None:
    frame = Frame(left=0, top=0, width=100, height=100, low=0.0, high=1.0)
    assert svg_path([0.0, 0.5, 1.0], frame) == "M0.0,100.0 L50.0,50.0 L100.0,0.0"
    shifted = Frame(left=10, top=20, width=200, height=50, low=0.0, high=50.0)
    assert svg_path([50.0, 25.0], shifted) == "M10.0,20.0 L210.0,45.0"


def test_days_without_a_value_break_the_line_and_a_lone_value_is_a_dot() -> None:
    frame = Frame(left=0, top=0, width=100, height=100, low=0.0, high=1.0)
    assert svg_path([0.0, None, 1.0, 1.0, None], frame) == "M0.0,100.0 l0,0 M50.0,0.0 L75.0,0.0"
    assert svg_path([None, None], frame) == ""
    assert svg_path([0.25], frame) == "M50.0,75.0 l0,0"


def test_a_chart_of_a_series_with_gaps_is_well_formed() -> None:
    days = [FIRST + timedelta(days=i) for i in range(4)]
    chart = line_chart(
        "missed_visit_rate", days, [0.1, None, None, 0.2], [None] * 4, Target(max=0.15)
    )
    svg = parse(chart)
    assert svg.get("data-indicator") == "missed_visit_rate"
    paths = [p.get("d") for p in svg.iter("path")]
    assert "" in paths  # the 7-day line has no value at all: an empty path, no crash
    assert any(p and p.count("M") == 2 for p in paths)
    assert "≤ 15.0%" in "".join(svg.itertext())


def test_the_report_has_a_chart_per_indicator_and_loads_nothing() -> None:
    page = render_report(sample())
    root = parse(page)
    charts = [svg.get("data-indicator") for svg in root.iter("svg") if svg.get("data-indicator")]
    assert sorted(charts) == sorted(INDICATORS)
    maps = [svg.get("data-map") for svg in root.iter("svg") if svg.get("data-map")]
    # one map per indicator with a target, in the contract's order
    assert maps == ["visits_completed", "immunisation_counselling_coverage", "missed_visit_rate"]
    text = "".join(root.itertext())
    for place in MUNICIPALITIES.values():
        assert place.albanian in text
        assert place.serbian in text
    assert "http://" not in page
    assert "https://" not in page
    assert "url(" not in page
    tags = {element.tag for element in root.iter()}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert not [e for e in root.iter() if {"src", "href"} & set(e.attrib)]


def test_a_series_with_days_without_data_does_not_crash() -> None:
    series = [
        _row(ALL_KOSOVO, "immunisation_counselling_coverage", 30, FIRST, None, denominator=0),
        _row(ALL_KOSOVO, "immunisation_counselling_coverage", 30, LAST, 0.9),
    ]
    latest = [_row(ALL_KOSOVO, "missed_visit_rate", 7, LAST, None, denominator=0)]
    root = parse(render_report(sample(series=series, latest=latest, alerts=[])))
    assert len([s for s in root.iter("svg") if s.get("data-indicator")]) == len(INDICATORS)
    row = next(r for r in root.iter("tr") if r.get("data-indicator") == "missed_visit_rate")
    week = next(c for c in row if c.get("data-window") == "7")
    assert (week.get("data-value"), week.text) == ("", "—")


def test_an_empty_store_still_makes_a_report() -> None:
    page = render_report(ReportData(NOW, {"visits": 0, "voided": 0, "dead_letters": 0}, TARGETS))
    root = parse(page)
    assert "No indicator values in the store yet." in "".join(root.itertext())
    assert not [s for s in root.iter("svg") if s.get("data-indicator")]
    assert MUNICIPALITIES["gjakove"].serbian in page


def test_hostile_text_is_escaped() -> None:
    hostile = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>&amp;"
    alert = {
        "municipality": hostile,
        "indicator": hostile,
        "window_days": 30,
        "value": 0.1,
        "target": 0.9,
        "denominator": 30,
        "as_of": LAST,
        "emitted_at": NOW,
    }
    latest = [_row(hostile, hostile, 30, LAST, 0.1), _row(ALL_KOSOVO, hostile, 7, LAST, 0.2)]
    page = render_report(sample(alerts=[alert], latest=latest))
    root = parse(page)
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert hostile in "".join(root.itertext())  # shown as text, exactly


def _rows(root: ET.Element, css: str) -> list[ET.Element]:
    table = next(t for t in root.iter("table") if css in (t.get("class") or "").split())
    return [r for r in table.iter("tr") if r.find("td") is not None]


def _cell(root: ET.Element, code: str, indicator: str) -> ET.Element:
    row = next(r for r in _rows(root, "municipalities") if r.get("data-municipality") == code)
    return list(row)[2 + INDICATORS.index(indicator)]


def _text(element: ET.Element) -> str:
    return "".join(element.itertext()).strip()


def test_standings_have_their_colour_and_their_marker_in_the_municipality_table() -> None:
    latest = [
        _row("gjilan", "missed_visit_rate", 30, LAST, 0.4),
        _row("peje", "missed_visit_rate", 30, LAST, 0.05),
        _row("prizren", "visits_completed", 30, LAST, 80, denominator=None),
        _row("peje", "visits_completed", 30, LAST, 80, denominator=None),
        _row("junik", "missed_visit_rate", 30, LAST, 0.5, denominator=10),
    ]
    root = parse(render_report(sample(latest=latest, alerts=[])))
    behind = _cell(root, "gjilan", "missed_visit_rate")
    assert f"background:{BEHIND}" in (behind.get("style") or "")
    assert _text(behind) == "▼ 40.0%of 40"  # the marker, the value, its denominator
    assert f"background:{AHEAD}" in (_cell(root, "peje", "missed_visit_rate").get("style") or "")
    prizren = _cell(root, "prizren", "visits_completed")
    assert f"background:{BEHIND}" in (prizren.get("style") or "")
    assert _text(prizren) == "▼ 80"  # a count has no denominator
    assert _cell(root, "peje", "visits_completed").get("style") is None  # peje has no target
    grey = STANDING_BACKGROUND[Standing.NO_DATA]
    assert _cell(root, "gjilan", "visits_completed").get("style") == f"background:{grey}"
    few = _cell(root, "junik", "missed_visit_rate")  # behind, but 10 visits decide nothing
    assert _text(few) == "▽ 50.0%of 10"
    assert STANDING_BACKGROUND[Standing.TOO_FEW] in (few.get("style") or "")


def test_an_active_alert_is_marked_and_listed() -> None:
    root = parse(render_report(sample()))
    cell = _cell(root, "prizren", "immunisation_counselling_coverage")
    assert f"background:{ALERTED}" in (cell.get("style") or "")
    assert _text(cell).startswith("⚑")
    body = [[_text(c) for c in r] for r in _rows(root, "alerts")]
    assert body == [
        [
            "Prizren",
            "Immunisation counselling (0-23 months)",
            "50.0%of 40",
            "≥ 90.0%",
            "≥ 92.0%",
            "50.0%of 40",
            "2026-02-26",
        ]
    ]


def test_municipalities_are_worst_first() -> None:
    latest = [
        *(_value(code, name, 0.95) for code in MUNICIPALITIES for name in INDICATORS),
        _row("peje", "immunisation_counselling_coverage", 30, LAST, 0.5),  # far behind on one
        _row("junik", "immunisation_counselling_coverage", 30, LAST, 0.89),  # just behind
        _row("gjilan", "immunisation_counselling_coverage", 30, LAST, 0.88),  # behind on two
        _row("gjilan", "missed_visit_rate", 30, LAST, 0.16),
        _row("viti", "missed_visit_rate", 30, LAST, 0.9, denominator=5),  # too few to say
    ]
    root = parse(render_report(sample(latest=latest, alerts=[])))
    order = [r.get("data-municipality") for r in _rows(root, "municipalities")]
    assert order[:5] == ["gjilan", "peje", "junik", "viti", "decan"]
    assert order[-2] == ALL_KOSOVO  # Kosovo closes the table, then the alert counts
    ranks = [r.get("data-rank") for r in _rows(root, "municipalities")][:38]
    assert ranks == [str(n) for n in range(1, 39)]
    behind = [r.find("td[@data-behind]") for r in _rows(root, "municipalities")][:3]
    assert [c.get("data-behind") for c in behind if c is not None] == ["2", "1", "1"]
    summary = _text(next(p for p in root.iter("p") if p.get("class") == "summary"))
    assert summary.startswith("3 of 38 municipalities are behind on at least one target")


def test_a_value_next_to_its_target_never_reads_as_on_it() -> None:
    latest = [
        *(_value(code, name, 0.95) for code in MUNICIPALITIES for name in INDICATORS),
        _row("gjilan", "missed_visit_rate", 30, LAST, 0.1504),
        _row("peje", "missed_visit_rate", 30, LAST, 0.149),  # alerted, yet back on target
    ]
    alert = {"municipality": "peje", "indicator": "missed_visit_rate", "window_days": 30,
             "value": 0.15004, "target": 0.15, "denominator": 40, "as_of": LAST,
             "emitted_at": NOW}  # fmt: skip
    root = parse(render_report(sample(latest=latest, alerts=[alert])))
    assert _text(_cell(root, "gjilan", "missed_visit_rate")) == "▼ 15.04%of 40"
    (row,) = _rows(root, "alerts")
    cells = [_text(c) for c in row]
    # When raised it was behind (four decimals say so); it resolves 2 points past.
    assert cells[2:6] == ["14.9%of 40", "≤ 15.0%", "≤ 13.0%", "15.004%of 40"]


def test_every_ratio_has_its_denominator_beside_it() -> None:
    root = parse(render_report(sample()))
    for row in _rows(root, "municipalities")[:38]:
        for indicator, cell in zip(INDICATORS, list(row)[2:], strict=True):
            small = cell.find("small")
            if indicator in COUNT_INDICATORS:
                assert small is None
            else:
                assert small is not None
                assert (small.text or "").startswith("of ")
    for svg in (s for s in root.iter("svg") if s.get("data-map")):
        for mark in svg.iter("g"):
            tip = mark.findtext("title") or ""
            if svg.get("data-map") in COUNT_INDICATORS:
                assert "(of" not in tip
            else:
                assert "(of 40)" in tip


def test_the_header_says_when_in_local_time_and_the_counts() -> None:
    winter = "".join(parse(render_report(sample())).itertext())
    assert "Generated 2026-03-02 09:30 CET (Europe/Belgrade time)" in winter
    assert "2026-02-24 to 2026-03-01" in winter
    summer = render_report(sample(generated_at=datetime(2026, 7, 1, 8, 30, tzinfo=UTC)))
    assert "Generated 2026-07-01 10:30 CEST" in summer
    counts = {c.get("data-count"): c.text for c in parse(summer).iter("td") if c.get("data-count")}
    assert counts == {"visits": "1200", "voided": "12", "dead letters": "7", "active alerts": "1"}


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sample(generated_at=datetime(2026, 3, 2, 8, 30))  # noqa: DTZ001  # the point of the test


def test_numbers_and_targets_read_as_people_expect() -> None:
    assert format_value("visits_completed", 1234.0) == "1234"
    assert format_value("immunisation_counselling_coverage", 0.8951) == "89.5%"
    assert format_value("visits_per_nurse", 3.456) == "3.46"
    assert format_value("missed_visit_rate", None) == "—"
    assert format_target("missed_visit_rate", Target(max=0.15)) == "≤ 15.0%"
    assert format_target("visits_completed", Target(min=120)) == "≥ 120"
    assert [nice_ceiling(v) for v in (0.3, 1.5, 7, 10, 11, 240, 260, 4100)] == [
        1,
        2,
        10,
        10,
        20,
        250,
        500,
        5000,
    ]


@pytest.mark.parametrize(
    ("indicator", "values", "target", "expected"),
    [
        ("immunisation_counselling_coverage", [0.88, None, 0.91], Target(min=0.9), (0.0, 1.0)),
        ("missed_visit_rate", [0.11, 0.12], Target(max=0.15), (0.0, 0.2)),
        ("missed_visit_rate", [0.31, 0.12], Target(max=0.15), (0.0, 0.4)),
        ("missed_visit_rate", [0.51], None, (0.0, 0.6)),
        ("missed_visit_rate", [0.56], None, (0.0, 0.8)),
        ("at_risk_referral_rate", [0.1, 0.9], Target(min=0.8), (0.0, 1.0)),
        ("at_risk_referral_rate", [None], None, (0.0, 1.0)),
        ("visits_completed", [0.0, 2646.0], None, (0.0, 5000.0)),
        ("visits_per_nurse", [3.2], None, (0.0, 5.0)),
    ],
)
def test_every_axis_starts_at_zero(
    indicator: str, values: list[float | None], target: Target | None,
    expected: tuple[float, float],
) -> None:  # fmt: skip
    low, high = chart_range(indicator, values, target)
    assert (low, high) == pytest.approx(expected)
    assert low == 0.0
    grid = ticks(indicator, low, high)
    assert grid[0] == pytest.approx(low)
    assert grid[-1] == pytest.approx(high)


def test_share_axes_have_round_ticks() -> None:
    assert ticks("missed_visit_rate", 0.0, 0.2) == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    assert ticks("missed_visit_rate", 0.0, 0.5) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert ticks("missed_visit_rate", 0.0, 1.0) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_write_report_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.html"
    write_report(path, "<p>one</p>")
    write_report(path, "<p>two ë</p>")
    assert path.read_text(encoding="utf-8") == "<p>two ë</p>"
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary left


class _BrokenBackend:
    def execute(self, sql: str) -> None:
        raise StoreQueryError("table is gone")

    def fetch(self, sql: str) -> NoReturn:
        raise StoreQueryError("table is gone")

    def close(self) -> None:
        pass


def _settings(tmp_path: Path, report_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", report_path=report_path)


def test_a_report_that_cannot_be_made_is_logged_not_raised(tmp_path: Path) -> None:
    from sinks.store import Store

    settings = _settings(tmp_path, tmp_path / "report.html")
    with capture_logs() as logs:
        assert save_report(settings, Store(_BrokenBackend(), "db"), NOW) is None
    assert [e["event"] for e in logs] == ["report_not_written"]
    assert logs[0]["path"] == str(tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


class _FakeStore:
    closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def quiet_demo(monkeypatch: pytest.MonkeyPatch) -> _FakeStore:
    """run_demo with no broker, pipeline or simulator: only its exit path is real."""
    store = _FakeStore()
    monkeypatch.setattr(vizita.app.demo, "open_store", lambda url, database: store)
    monkeypatch.setattr(vizita.app.demo, "migrate", lambda opened, retention_days: None)
    monkeypatch.setattr(vizita.app.demo, "kafka_for", contextlib.nullcontext)
    monkeypatch.setattr(vizita.app.demo, "ensure_pipeline_topics", lambda settings: None)
    monkeypatch.setattr(vizita.app.demo, "_produce", lambda settings, config, stop, history: None)
    monkeypatch.setattr(vizita.app.demo, "bootstrap_of", lambda settings: "nowhere:9092")
    monkeypatch.setattr(vizita.app.demo, "end_offsets", lambda bootstrap, topic: {})
    monkeypatch.setattr(
        vizita.app.report, "read_report_data", lambda opened, targets, now, period: sample()
    )
    return store


def _interrupted(*args: Any) -> NoReturn:
    raise KeyboardInterrupt


def test_the_demo_writes_its_report_when_stopped_with_ctrl_c(
    quiet_demo: _FakeStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(vizita.app.demo, "_watch", _interrupted)
    path = tmp_path / "weekly" / "report.html"

    vizita.app.demo.run_demo(_settings(tmp_path, path), duration=None, history_days=3)

    assert "<svg" in path.read_text(encoding="utf-8")
    assert f"report: {path}" in capsys.readouterr().out
    assert quiet_demo.closed


def test_a_failing_report_does_not_hide_why_the_demo_stopped(
    quiet_demo: _FakeStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*args: Any) -> NoReturn:
        raise RuntimeError("the pipeline broke")

    monkeypatch.setattr(vizita.app.demo, "_watch", broken)
    unwritable = tmp_path / "a-directory"
    unwritable.mkdir()

    with capture_logs() as logs, pytest.raises(RuntimeError, match="the pipeline broke"):
        vizita.app.demo.run_demo(_settings(tmp_path, unwritable), duration=None, history_days=3)

    assert [e["event"] for e in logs] == ["report_not_written"]
    assert quiet_demo.closed


# --- the maps --------------------------------------------------------------------------------


def _map(root: ET.Element, indicator: str) -> ET.Element:
    return next(s for s in root.iter("svg") if s.get("data-map") == indicator)


def test_a_map_has_every_municipality_with_its_value_in_its_title() -> None:
    latest = [
        *(_value(code, name, 0.95) for code in MUNICIPALITIES for name in INDICATORS),
        _row("peje", "immunisation_counselling_coverage", 30, LAST, 0.5, denominator=80),
        _row("junik", "immunisation_counselling_coverage", 30, LAST, 0.87),
    ]
    root = parse(render_report(sample(latest=latest, alerts=[])))
    marks = {
        g.get("data-municipality"): g
        for g in _map(root, "immunisation_counselling_coverage").iter("g")
    }
    assert set(marks) == set(MUNICIPALITIES)
    peje = marks["peje"]
    assert peje.findtext("title") == (
        "1. Pejë / Peć: 50.0% (of 80); target ≥ 90.0%, 40.0 points behind; behind the target"
    )
    assert peje.get("data-colour") == CLASSES[0][1]  # 10 points or more behind
    assert peje.find("polygon") is not None  # a triangle: behind
    assert marks["junik"].get("data-colour") == CLASSES[2][1]  # less than 5 behind
    assert marks["decan"].get("data-colour") == CLASSES[3][1]  # up to 5 past
    assert marks["decan"].find("circle") is not None
    # counts: only prizren has a target; the others are drawn as "no target"
    visits = {g.get("data-municipality"): g for g in _map(root, "visits_completed").iter("g")}
    assert visits["prizren"].get("data-standing") == Standing.ON_TARGET
    assert visits["peje"].get("data-standing") == Standing.NO_TARGET
    assert "(of" not in (visits["prizren"].findtext("title") or "")


def test_a_mark_behind_never_takes_a_colour_of_past() -> None:
    assert colour_of(Mark(Standing.BEHIND, -1e-6)) == CLASSES[2][1]
    assert colour_of(Mark(Standing.TOO_FEW, -0.3)) == CLASSES[0][1]
    assert colour_of(Mark(Standing.ON_TARGET, 0.0)) == CLASSES[3][1]
    assert colour_of(Mark(Standing.ON_TARGET, 0.12)) == CLASSES[5][1]
    assert colour_of(Mark(Standing.ALERTED, 0.01)) == CLASSES[3][1]  # back past, still alerted
    assert colour_of(Mark(Standing.ALERTED, -0.07)) == CLASSES[1][1]
    assert colour_of(Mark(Standing.NO_DATA)) == "#ffffff"


def test_marks_are_pushed_apart_but_stay_near_their_seats() -> None:
    where = projection()
    seats = [where.point(m.latitude, m.longitude) for m in MUNICIPALITIES.values()]
    placed = spread(seats, 17.0)
    closest = min(math.dist(a, b) for a, b in itertools.combinations(placed, 2))
    assert closest >= 17.0 - 1e-3
    assert max(math.dist(a, b) for a, b in zip(seats, placed, strict=True)) < 20
    assert spread(seats, 17.0) == placed  # the same every time
    # The north is up and the east is right: Leposaviq above Dragash, Kamenicë right of Pejë.
    north, south = where.point(43.104, 20.803), where.point(42.062, 20.653)
    assert north[1] < south[1]
    assert where.point(42.578, 21.580)[0] > where.point(42.659, 20.288)[0]


# --- below the municipality ------------------------------------------------------------------


def _caseload(code: str, **values: Any) -> dict[str, Any]:
    return {"municipality": code, "completed": 30, "households": 20, "missed": 5, "visits": 40,
            "nurses": 2, "facility_id": "fmc-1", "nurse_id": "n-1", "facilities": ["fmc-1"],
            **values}  # fmt: skip


def test_centres_and_nurses_follow_the_worst_first_order() -> None:
    latest = [
        *(_value(code, name, 0.95) for code in MUNICIPALITIES for name in INDICATORS),
        _row("peje", "immunisation_counselling_coverage", 30, LAST, 0.5),
    ]
    facilities = [
        _caseload("decan", facility_id="fmc-d"),
        _caseload("peje", facility_id=None, missed=1),
        _caseload("peje", facility_id="fmc-p", missed=20),
    ]
    nurses = [
        _caseload("decan", nurse_id="n-d"),
        _caseload("peje", nurse_id="n-p", facilities=["", "fmc-p"], visits=0, missed=0),
    ]
    page = render_report(sample(latest=latest, alerts=[], facilities=facilities, nurses=nurses))
    root = parse(page)
    rows = _rows(root, "facilities")
    assert [(r.get("data-municipality"), r.get("data-facility")) for r in rows] == [
        ("peje", "fmc-p"), ("peje", ""), ("decan", "fmc-d"),
    ]  # fmt: skip
    assert [_text(c) for c in rows[0]] == ["Pejë / Peć", "fmc-p", "2", "30", "20", "50.0%of 40"]
    assert _text(list(rows[1])[1]) == "no centre recorded"
    nurse_rows = _rows(root, "nurses")
    assert [r.get("data-nurse") for r in nurse_rows] == ["n-p", "n-d"]
    assert [_text(c) for c in nurse_rows[0]][2:] == [
        "no centre recorded, fmc-p", "30", "20", "—of 0",
    ]  # fmt: skip
    headings = [_text(h) for h in root.iter("h2")]
    assert f"Family Medicine Centres (2026-01-31 to {LAST})" in headings


# --- calendar periods ------------------------------------------------------------------------


OCTOBER = Period("2025-10", date(2025, 10, 1), date(2025, 10, 31))


def _period_row(scope: str, indicator: str, value: float | None, denominator: int | None = 40
                ) -> dict[str, Any]:  # fmt: skip
    row = _row(scope, indicator, 30, LAST, value, denominator=denominator)
    del row["window_days"], row["as_of"]
    return {**row, "period": OCTOBER.name, "first_day": OCTOBER.first, "last_day": OCTOBER.last}


def test_a_calendar_period_shows_its_own_values_and_scales_volume_targets() -> None:
    rows = [_period_row(code, name, 0.95) for code in (*MUNICIPALITIES, ALL_KOSOVO)
            for name in INDICATORS if name not in COUNT_INDICATORS]  # fmt: skip
    rows += [_period_row(code, name, 200.0, None) for code in (*MUNICIPALITIES, ALL_KOSOVO)
             for name in COUNT_INDICATORS]  # fmt: skip
    rows.append(_period_row("prizren", "visits_completed", 123.0, None))  # 120 a month: 124
    rows.append(_period_row(ALL_KOSOVO, "missed_visit_rate", 0.125, 400))
    page = render_report(sample(period=OCTOBER, period_rows=rows))
    root = parse(page)
    text = "".join(root.itertext())
    assert "Calendar period 2025-10: the days 2025-10-01 to 2025-10-31." in text
    prizren = _cell(root, "prizren", "visits_completed")
    assert _text(prizren) == "▼ 123"
    assert "target ≥ 124" in (prizren.get("title") or "")
    # An alert belongs to the rolling window: it marks no calendar period.
    assert not _text(_cell(root, "prizren", "immunisation_counselling_coverage")).startswith("⚑")
    kosovo = next(
        r for r in _rows(root, "kosovo") if r.get("data-indicator") == "missed_visit_rate"
    )
    value = next(c for c in kosovo if c.get("data-period") == "2025-10")
    assert (value.get("data-value"), value.text) == ("0.125", "12.5%")
    assert [_text(c) for c in kosovo][2] == "50 / 400"
    assert report_title(sample(period=OCTOBER)) == "Vizita report, 2025-10"


def test_volume_targets_grow_with_the_days_and_shares_do_not() -> None:
    own = {"visits_completed": Target(min=120), "missed_visit_rate": Target(max=0.15),
           "visits_per_nurse": Target(min=60)}  # fmt: skip
    quarter_targets = targets_over(own, 92)
    assert quarter_targets["visits_completed"].bound == pytest.approx(368)
    assert quarter_targets["visits_per_nurse"].bound == pytest.approx(184)
    assert quarter_targets["missed_visit_rate"] == Target(max=0.15)
    assert targets_over(own, 30) == own


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        ("2025-10", date(2026, 1, 5), Period("2025-10", date(2025, 10, 1), date(2025, 10, 31))),
        ("2026-01", date(2026, 1, 5), Period("2026-01", date(2026, 1, 1), date(2026, 1, 5))),
        ("2025Q4", date(2026, 1, 5), Period("2025Q4", date(2025, 10, 1), date(2025, 12, 31))),
        ("2026q1", date(2026, 2, 9), Period("2026Q1", date(2026, 1, 1), date(2026, 2, 9))),
    ],
)
def test_periods_from_the_command_line(text: str, today: date, expected: Period) -> None:
    parse_period = quarter_named if "q" in text.lower() else month_named
    assert parse_period(text, today) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("2025-13", "not a month"), ("25-10", "not a month"), ("2026-02", "has not begun"),
     ("2025Q5", "not a quarter"), ("2026Q2", "has not begun")],
)  # fmt: skip
def test_a_period_that_is_no_period_is_refused(text: str, message: str) -> None:
    parse_period = quarter_named if "Q" in text else month_named
    with pytest.raises(ValueError, match=message):
        parse_period(text, date(2026, 1, 5))


# --- the layout, the text part ---------------------------------------------------------------


def test_wide_tables_turn_into_cards_on_a_narrow_screen() -> None:
    root = parse(
        render_report(sample(facilities=[_caseload("decan")], nurses=[_caseload("decan")]))
    )
    style = root.findtext("head/style") or ""
    assert "@media (max-width:720px)" in style
    for css in ("municipalities", "alerts", "facilities", "nurses"):
        table = next(t for t in root.iter("table") if css in (t.get("class") or "").split())
        assert "cards" in (table.get("class") or "").split()
        for row in _rows(root, css):
            cells = [c for c in row if c.tag == "td"]
            assert all(c.get("data-label") is not None for c in cells), css
    charts = list(root.iter("svg"))
    assert all("max-width:100%" in (s.get("style") or "") for s in charts)


def test_the_text_part_says_what_the_tables_say_first() -> None:
    latest = [
        *(_value(code, name, 0.95) for code in MUNICIPALITIES for name in INDICATORS),
        _row("peje", "immunisation_counselling_coverage", 30, LAST, 0.5),
        _row("prizren", "immunisation_counselling_coverage", 30, LAST, 0.8),
        _row(ALL_KOSOVO, "missed_visit_rate", 30, LAST, 0.125, denominator=400),
    ]
    text = render_text(sample(latest=latest))
    assert "30 days to 2026-03-01: the days 2026-01-31 to 2026-03-01." in text
    assert (
        "- Prizren: Immunisation counselling (0-23 months) 50.0% (of 40) when raised, target "
        "≥ 90.0%, behind since 2026-02-26"
    ) in text
    lines = text.splitlines()
    first, second = (
        lines.index(" 1. Pejë / Peć: behind on 1"),
        lines.index(" 2. Prizren: behind on 1"),
    )
    assert first < second
    assert lines[first + 1] == (
        "    ▼ Immunisation counselling (0-23 months): 50.0% (of 40), target ≥ 90.0%, "
        "40.0 points behind"
    )
    assert "- Missed visits: 12.5% (of 400)" in text
    assert "<" not in text


def test_kosovo_beside_its_target_never_reads_as_on_it() -> None:
    latest = [
        _row(ALL_KOSOVO, "missed_visit_rate", 30, LAST, 0.15004, denominator=5000),
        _row(ALL_KOSOVO, "missed_visit_rate", 7, LAST, 0.1496, denominator=1200),
    ]
    root = parse(render_report(sample(latest=latest)))
    row = next(r for r in _rows(root, "kosovo") if r.get("data-indicator") == "missed_visit_rate")
    shown = {c.get("data-window"): c.text for c in row if c.get("data-window")}
    assert shown == {"7": "15.0%", "30": "15.004%"}
