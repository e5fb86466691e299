"""The HTML report: rendering from plain data (no store), the file, and the demo's exit."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest
from structlog.testing import capture_logs

import vizita.app.demo
import vizita.app.report
from sinks.errors import StoreQueryError
from vizita.app.charts import Frame, chart_range, line_chart, nice_ceiling, svg_path, ticks
from vizita.app.report import render_report, save_report, write_report
from vizita.app.report_data import ReportData
from vizita.contract.display import STANDING_BACKGROUND, Standing, format_target, format_value
from vizita.contract.indicators import INDICATORS
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


def sample(**changes: Any) -> ReportData:
    days = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    series = [
        _row(ALL_KOSOVO, name, window, day, 0.5 + i / 100)
        for name in INDICATORS
        for window in (7, 30)
        for i, day in enumerate(days)
    ]
    latest = [_row(code, name, 30, LAST, 0.95) for code in MUNICIPALITIES for name in INDICATORS]
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
    charts = [svg.get("data-indicator") or "" for svg in root.iter("svg")]
    assert sorted(charts) == sorted(INDICATORS)
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
    assert len(list(root.iter("svg"))) == len(INDICATORS)
    row = next(r for r in root.iter("tr") if r.get("data-indicator") == "missed_visit_rate")
    week = next(c for c in row if c.get("data-window") == "7")
    assert (week.get("data-value"), week.text) == ("", "—")


def test_an_empty_store_still_makes_a_report() -> None:
    page = render_report(ReportData(NOW, {"visits": 0, "voided": 0, "dead_letters": 0}, TARGETS))
    root = parse(page)
    assert "No indicator values in the store yet." in "".join(root.itertext())
    assert not list(root.iter("svg"))
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


def _cell(root: ET.Element, code: str, indicator: str) -> ET.Element:
    row = next(r for r in root.iter("tr") if r.get("data-municipality") == code)
    return list(row)[1 + INDICATORS.index(indicator)]


def test_behind_is_red_and_ahead_is_green_in_the_municipality_table() -> None:
    latest = [
        _row("gjilan", "missed_visit_rate", 30, LAST, 0.4),
        _row("peje", "missed_visit_rate", 30, LAST, 0.05),
        _row("prizren", "visits_completed", 30, LAST, 80, denominator=None),
        _row("peje", "visits_completed", 30, LAST, 80, denominator=None),
    ]
    root = parse(render_report(sample(latest=latest, alerts=[])))
    behind = _cell(root, "gjilan", "missed_visit_rate")
    assert f"background:{RED}" in (behind.get("style") or "")
    assert behind.text == "▼ 40.0%"
    assert f"background:{GREEN}" in (_cell(root, "peje", "missed_visit_rate").get("style") or "")
    assert f"background:{RED}" in (_cell(root, "prizren", "visits_completed").get("style") or "")
    assert _cell(root, "peje", "visits_completed").get("style") is None  # peje has no target
    grey = BACKGROUND[Standing.NO_DATA]
    assert _cell(root, "gjilan", "visits_completed").get("style") == f"background:{grey}"


def test_an_active_alert_is_red_and_listed() -> None:
    root = parse(render_report(sample()))
    cell = _cell(root, "prizren", "immunisation_counselling_coverage")
    assert f"background:{RED}" in (cell.get("style") or "")
    assert (cell.text or "").startswith("⚑")
    alerts = next(t for t in root.iter("table") if t.get("class") == "alerts")
    body = [[c.text for c in r] for r in alerts.iter("tr") if r.find("td") is not None]
    assert body == [
        [
            "Prizren",
            "Immunisation counselling (0-23 months)",
            "50.0%",
            "≥ 90.0%",
            "50.0% (of 40)",
            "2026-02-26",
        ]
    ]


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
        ("immunisation_counselling_coverage", [0.88, None, 0.91], Target(min=0.9), (0.8, 1.0)),
        ("missed_visit_rate", [0.11, 0.12], Target(max=0.15), (0.0, 0.2)),
        ("at_risk_referral_rate", [0.1, 0.9], Target(min=0.8), (0.0, 1.0)),
        ("at_risk_referral_rate", [None], None, (0.0, 1.0)),
        ("visits_completed", [0.0, 2646.0], None, (0.0, 5000.0)),
        ("visits_per_nurse", [3.2], None, (0.0, 5.0)),
    ],
)
def test_a_chart_zooms_on_shares_and_starts_counts_at_zero(
    indicator: str, values: list[float | None], target: Target | None,
    expected: tuple[float, float],
) -> None:  # fmt: skip
    low, high = chart_range(indicator, values, target)
    assert (low, high) == pytest.approx(expected)
    grid = ticks(indicator, low, high)
    assert grid[0] == pytest.approx(low)
    assert grid[-1] == pytest.approx(high)


def test_zoomed_share_axes_have_round_ticks() -> None:
    assert ticks("missed_visit_rate", 0.0, 0.2) == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    assert ticks("missed_visit_rate", 0.3, 0.7) == pytest.approx([0.3, 0.4, 0.5, 0.6, 0.7])


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
    monkeypatch.setattr(vizita.app.demo, "_produce", lambda settings, config, stop: None)
    monkeypatch.setattr(
        vizita.app.report, "read_report_data", lambda opened, targets, now: sample()
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
