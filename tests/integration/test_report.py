"""The HTML report of a store filled by a real replay (broker, Faust stage, sink, chdb),
read back with the standard library's HTML parser."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from producers.simulator import SimulationConfig, simulate, write_jsonl
from sinks.queries import active_alerts, indicator_rows, latest_as_of
from sinks.store import Store
from vizita.app.replay import replay
from vizita.app.report import build_report
from vizita.contract.indicators import COUNT_INDICATORS, INDICATORS
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES
from vizita.contract.settings import Settings
from vizita.contract.targets import load_targets

SMALL = SimulationConfig(
    seed=20261125, start=date(2026, 2, 2), days=12, visits_per_day=60, late_share=0.2,
    duplicate_share=0.05, correction_share=0.1, void_share=0.03, invalid_share=0.03,
)  # fmt: skip
NOW = datetime(2026, 2, 16, 7, 0, tzinfo=UTC)
VOID_ELEMENTS = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr"}
LOADING = {"script", "link", "img", "iframe", "object", "embed", "video", "audio", "source"}

Cell = tuple[dict[str, str | None], list[str]]


class Page(HTMLParser):
    """Every tag with its attributes, the text, and each table's rows of cells; any end
    tag that does not close the innermost open element is an error."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.errors: list[str] = []
        self.open: list[str] = []
        self.text: list[str] = []
        self.rows: list[tuple[dict[str, str | None], list[Cell]]] = []
        self.table_of_row: list[str | None] = []
        self._tables: list[str | None] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, dict(attrs))
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, dict(attrs))

    def _record(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tags.append((tag, attrs))
        if tag == "table":
            self._tables.append(attrs.get("class"))
        elif tag == "tr":
            self.rows.append((attrs, []))
            self.table_of_row.append(self._tables[-1] if self._tables else None)
        elif tag in {"td", "th"} and self.rows:
            self._cell = []
            self.rows[-1][1].append((attrs, self._cell))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> while {self.open[-3:]} are open")
            return
        self.open.pop()
        if tag == "table":
            self._tables.pop()
        if tag in {"td", "th"}:
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table(self, css: str) -> list[tuple[dict[str, str | None], list[Cell]]]:
        return [row for row, table in zip(self.rows, self.table_of_row, strict=True)
                if table == css]  # fmt: skip


def read(page: str) -> Page:
    parsed = Page()
    parsed.feed(page)
    parsed.close()
    assert parsed.errors == []
    assert parsed.open == []
    return parsed


def _text(cell: Cell) -> str:
    return "".join(cell[1]).strip()


def _shown_number(text: str) -> tuple[float, float]:
    """What a reader takes from a cell (independently of the renderer), and half a
    unit of its last digit."""
    scale = 100.0 if text.endswith("%") else 1.0
    digits = text.rstrip("%")
    decimals = len(digits.partition(".")[2])
    return float(digits) / scale, 0.5 * 10.0**-decimals / scale


def test_the_report_of_a_replayed_store(settings: Settings, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "small.jsonl"
    write_jsonl(simulate(SMALL), path)
    summary = replay(settings, store, path)

    page = build_report(store, load_targets(settings.targets_file), NOW)
    parsed = read(page)

    # Self-contained: nothing that loads, no address anywhere.
    assert "http://" not in page
    assert "https://" not in page
    assert not [tag for tag, _ in parsed.tags if tag in LOADING]
    assert not [a for _, a in parsed.tags if {"src", "href", "xlink:href"} & a.keys()]
    # A chart per indicator, every municipality under both its names.
    charts = sorted(a.get("data-indicator") or "" for tag, a in parsed.tags if tag == "svg")
    assert charts == sorted(INDICATORS)
    text = "".join(parsed.text)
    for place in MUNICIPALITIES.values():
        assert place.albanian in text
        assert place.serbian in text
    # The header's counts are the replay's own.
    cells = [cell for _, row in parsed.table("counts") for cell in row]
    counts = {cell[0]["data-count"]: _text(cell) for cell in cells if cell[0].get("data-count")}
    alerts = active_alerts(store)
    assert counts == {"visits": str(summary.visits_in_store),
                      "voided": str(summary.voided_in_store),
                      "dead letters": str(summary.dead_letters_in_store),
                      "active alerts": str(len(alerts))}  # fmt: skip
    assert len(alerts) > 0  # prishtine and prizren cannot reach their volume targets here
    listed = [[_text(c) for c in cells] for _, cells in parsed.table("alerts")[1:]]
    assert len(listed) == len(alerts)
    for alert, row in zip(alerts, listed, strict=True):
        assert row[0].startswith(MUNICIPALITIES[alert["municipality"]].albanian)
    _check_kosovo_numbers(parsed, store)


def _check_kosovo_numbers(parsed: Page, store: Store) -> None:
    latest = latest_as_of(store)
    assert latest is not None
    assert f"latest day, {latest}" in "".join(parsed.text)
    shown: dict[tuple[str, str], Cell] = {}
    shares: dict[str, Cell] = {}
    for attrs, cells in parsed.table("kosovo"):
        for cell in cells:
            if cell[0].get("data-window"):
                shown[(str(attrs["data-indicator"]), str(cell[0]["data-window"]))] = cell
            if "data-numerator" in cell[0]:
                shares[str(attrs["data-indicator"])] = cell
    stored = indicator_rows(store, latest, ALL_KOSOVO)
    assert len(stored) == len(INDICATORS) * 2
    for row in stored:
        cell = shown[(row["indicator"], str(row["window_days"]))]
        value: Any = row["value"]
        assert cell[0]["data-value"] == ("" if value is None else repr(value))
        if value is None:
            assert _text(cell) == "—"
            continue
        # The percentage or count a reader sees is the stored value, to its last digit.
        number, half_digit = _shown_number(_text(cell))
        assert abs(number - value) <= half_digit * 1.0001
        if row["indicator"] in COUNT_INDICATORS:
            assert _text(cell) == str(row["numerator"])
        if row["window_days"] == 30:
            fraction = shares[row["indicator"]]
            denominator = "" if row["denominator"] is None else f" / {row['denominator']}"
            assert _text(fraction) == f"{row['numerator']}{denominator}"


def test_the_report_command_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "mail" / "report.html"
    command = [sys.executable, "-m", "vizita", "report", "--store",
               f"chdb://{tmp_path / 'store'}", "--out", str(out)]  # fmt: skip
    env = {"VIZITA_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(  # noqa: S603  # our own command line, built above
        command, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == f"report: {out}"
    parsed = read(out.read_text(encoding="utf-8"))
    assert "No indicator values in the store yet." in "".join(parsed.text)
    assert len(parsed.table("municipalities")) == 1 + len(MUNICIPALITIES) + 1 + 1
