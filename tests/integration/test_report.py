"""The HTML report of a store filled by a real replay (broker, Faust stages, sink, chdb),
read back with the standard library's HTML parser: the rolling report against the
stored rows, a calendar month's and quarter's against the SQL definitions
(sinks.periods), the centres and nurses against plain Python over the oracle's winning
events; and the report mailed to a real SMTP server (aiosmtpd) over STARTTLS with a
login, by the command line."""

from __future__ import annotations

import email
import email.policy
import html
import ipaddress
import json
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import oracle
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from workers import replay_settings

from producers.simulator import SimulationConfig, simulate, write_jsonl
from sinks.periods import Period, month, period_values, quarter
from sinks.queries import active_alerts, indicator_rows, latest_as_of
from sinks.store import Store, open_store
from vizita.app.broker import LocalBroker, free_port
from vizita.app.replay import replay
from vizita.app.report import build_report
from vizita.app.report_data import rolling_span
from vizita.contract.codes import MISSED_OUTCOMES
from vizita.contract.indicators import COUNT_INDICATORS, INDICATORS
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES
from vizita.contract.settings import Settings
from vizita.contract.targets import load_targets

# Fourteen days over a month's end (January into February), with every kind of mess.
SMALL = SimulationConfig(
    seed=20261125, start=date(2026, 1, 25), days=14, visits_per_day=60, late_share=0.2,
    duplicate_share=0.05, correction_share=0.1, void_share=0.03, invalid_share=0.03,
)  # fmt: skip
CLOCK = date(2026, 2, 7)  # the replay's clock day: the last day simulated
NOW = datetime(2026, 2, 16, 7, 0, tzinfo=UTC)
USER, PASSWORD = "vizita-reports", "not-the-real-one-3f9c"
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


@dataclass
class Replayed:
    store: Store
    lines: list[bytes]
    summary: Any
    settings: Settings


@pytest.fixture(scope="module")
def replayed(
    kafka: LocalBroker, chdb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replayed]:
    """The small stream replayed once through the pipeline, shared by the tests here."""
    tmp = tmp_path_factory.mktemp("report")
    lines = simulate(SMALL)
    with replay_settings(kafka, chdb_url, tmp, "rep") as (name, settings):
        write_jsonl(lines, tmp / "stream.jsonl")
        store = open_store(chdb_url, name)
        summary = replay(settings, store, tmp / "stream.jsonl")
    yield Replayed(store, lines, summary, settings)
    store.execute(f"DROP DATABASE IF EXISTS {name}")
    store.close()


def test_the_report_of_a_replayed_store(replayed: Replayed) -> None:
    store, summary = replayed.store, replayed.summary
    page = build_report(store, load_targets(replayed.settings.targets_file), NOW)
    parsed = read(page)

    # Self-contained: nothing that loads, no address anywhere.
    assert "http://" not in page
    assert "https://" not in page
    assert not [tag for tag, _ in parsed.tags if tag in LOADING]
    assert not [a for _, a in parsed.tags if {"src", "href", "xlink:href"} & a.keys()]
    # A chart per indicator, every municipality under both its names.
    charts = sorted(a.get("data-indicator") or "" for tag, a in parsed.tags
                    if tag == "svg" and a.get("data-indicator"))  # fmt: skip
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
    listed = [[_text(c) for c in cells] for _, cells in parsed.table("alerts cards")[1:]]
    assert len(listed) == len(alerts)
    named = {MUNICIPALITIES[a["municipality"]].albanian for a in alerts}
    assert {row[0].split(" / ")[0] for row in listed} == named
    _check_kosovo_numbers(parsed, store)
    _check_the_maps(parsed, replayed)


def _check_the_maps(parsed: Page, replayed: Replayed) -> None:
    targets = load_targets(replayed.settings.targets_file)
    held = set(targets.defaults) | {n for own in targets.municipalities.values() for n in own}
    maps = [a["data-map"] for tag, a in parsed.tags if tag == "svg" and a.get("data-map")]
    assert maps == [i for i in INDICATORS if i in held]
    marks = [a for tag, a in parsed.tags if tag == "g" and a.get("data-municipality")]
    assert len(marks) == len(maps) * len(MUNICIPALITIES)


def _check_kosovo_numbers(parsed: Page, store: Store) -> None:
    latest = latest_as_of(store)
    assert latest == CLOCK
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


def _municipality_cells(parsed: Page) -> dict[tuple[str, str], Cell]:
    """(scope, indicator) -> its cell in the municipalities table."""
    found = {}
    for attrs, cells in parsed.table("municipalities cards"):
        code = attrs.get("data-municipality")
        if not code:
            continue
        for indicator, cell in zip(INDICATORS, cells[2:], strict=True):
            found[(str(code), indicator)] = cell
    return found


@pytest.mark.parametrize(
    "period",
    [month(2026, 1), month(2026, 2, through=CLOCK), quarter(2026, 1, through=CLOCK)],
    ids=["a month", "a month to date", "a quarter to date"],
)
def test_a_calendar_period_shows_the_sql_definitions(replayed: Replayed, period: Period) -> None:
    store = replayed.store
    page = build_report(store, load_targets(replayed.settings.targets_file), NOW, period)
    parsed = read(page)
    assert f"Calendar period {period.name}: the days {period.first} to {period.last}." in (
        "".join(parsed.text)
    )
    sql = {(r["municipality"], r["indicator"]): r
           for r in store.query(period_values(store.database, [period]))}  # fmt: skip
    assert len(sql) == 39 * len(INDICATORS)
    cells = _municipality_cells(parsed)
    assert set(cells) == set(sql)
    for key, row in sql.items():
        attrs, text = cells[key]
        value = row["value"]
        assert attrs["data-value"] == ("" if value is None else repr(value)), key
        if row["denominator"] is not None:
            assert "".join(text).strip().endswith(f"of {row['denominator']}"), key
    kosovo = {
        str(a["data-indicator"]): c for a, c in parsed.table("kosovo") if a.get("data-indicator")
    }
    for indicator in INDICATORS:
        row = sql[(ALL_KOSOVO, indicator)]
        value_cell = next(c for c in kosovo[indicator] if c[0].get("data-period") == period.name)
        assert value_cell[0]["data-value"] == ("" if row["value"] is None else repr(row["value"]))
        fraction = next(c for c in kosovo[indicator] if "data-numerator" in c[0])
        assert fraction[0]["data-numerator"] == repr(row["numerator"])
    # January has seven days of visits here, February seven: neither period is empty.
    assert sql[(ALL_KOSOVO, "visits_completed")]["value"] > 0


def _python_caseloads(
    lines: list[bytes], span: Period
) -> tuple[dict[Any, tuple], dict[Any, tuple]]:
    """(municipality, facility) and (municipality, nurse) -> (completed, households reached,
    missed, visits), from the oracle's winning events: plain Python, no shared code."""
    winners = oracle.winners(oracle.valid_events(lines)).values()
    visits = [e for e in winners if e["op"] == "upsert"
              and span.first <= oracle.local_day(e["occurred_at"]) <= span.last]  # fmt: skip
    by_facility: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    by_nurse: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for visit in visits:
        by_facility[(visit["municipality"], visit["facility_id"] or "")].append(visit)
        by_nurse[(visit["municipality"], visit["nurse_id"])].append(visit)

    def counts(group: list[dict[str, Any]]) -> tuple[int, int, int, int]:
        completed = [v for v in group if v["outcome"] == "completed"]
        missed = sum(v["outcome"] in MISSED_OUTCOMES for v in group)
        return len(completed), len({v["household_id"] for v in completed}), missed, len(group)

    return ({k: counts(g) for k, g in by_facility.items()},
            {k: counts(g) for k, g in by_nurse.items()})  # fmt: skip


def _shown_caseload(cells: list[Cell]) -> tuple[int, int, int, int]:
    completed, households, missed = (_text(c) for c in cells[-3:])
    visits = int(missed.rpartition("of ")[2])
    share = missed.partition("%")[0]
    return int(completed), int(households), round(float(share) / 100 * visits), visits


def test_centres_and_nurses_equal_plain_python(replayed: Replayed) -> None:
    page = build_report(replayed.store, load_targets(replayed.settings.targets_file), NOW)
    parsed = read(page)
    span = rolling_span(CLOCK)
    assert span is not None
    facilities, nurses = _python_caseloads(replayed.lines, span)
    shown_facilities = {
        (a["data-municipality"], a["data-facility"]): _shown_caseload(c)
        for a, c in parsed.table("facilities cards")
        if a.get("data-facility") is not None
    }
    shown_nurses = {
        (a["data-municipality"], a["data-nurse"]): _shown_caseload(c)
        for a, c in parsed.table("nurses cards")
        if a.get("data-nurse")
    }
    assert shown_facilities == facilities
    assert shown_nurses == nurses
    assert len(facilities) > len(MUNICIPALITIES)  # more than one centre somewhere
    assert any(key[1] == "" for key in facilities)  # visits recorded without a centre


# --- the command line, and the mail ------------------------------------------------------


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vizita", *args]
    base = {"VIZITA_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(  # noqa: S603  # our own command line, built here
        command, capture_output=True, text=True, env=base | env, timeout=120, check=False
    )


def test_the_report_command_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "mail" / "report.html"
    done = _run(["report", "--store", f"chdb://{tmp_path / 'store'}", "--out", str(out),
                 "--quarter", "2026Q1"], tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == f"report: {out}"
    parsed = read(out.read_text(encoding="utf-8"))
    assert "Calendar period 2026Q1: the days 2026-01-01 to 2026-03-31." in "".join(parsed.text)
    # header, 38 municipalities, Kosovo, the alert counts
    assert len(parsed.table("municipalities cards")) == 1 + len(MUNICIPALITIES) + 1 + 1


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vizita test mail server")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / "mail-cert.pem", folder / "mail-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))  # fmt: skip
    return cert_path, key_path


@dataclass
class Inbox:
    """What the test's SMTP server received: each message with how it came."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str], bool, bool]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        encrypted, logged_in = session.ssl is not None, bool(session.authenticated)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), encrypted, logged_in))
        return "250 OK"


def _login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    good = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(), PASSWORD.encode())  # fmt: skip
    return AuthResult(success=good, handled=False)


@dataclass
class MailServer:
    inbox: Inbox
    port: int
    ca_file: Path


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[MailServer]:
    """A real SMTP server on the loopback: STARTTLS required, then a login required."""
    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        auth_required=True, auth_require_tls=True, authenticator=_login,
    )  # fmt: skip
    controller.start()
    try:
        yield MailServer(inbox, port, cert)
    finally:
        controller.stop()


def _mail_env(server: MailServer, password: str = PASSWORD) -> dict[str, str]:
    return {
        "VIZITA_SMTP_HOST": "127.0.0.1", "VIZITA_SMTP_PORT": str(server.port),
        "VIZITA_SMTP_USER": USER, "VIZITA_SMTP_PASSWORD": password,
        "VIZITA_SMTP_SENDER": "reports@vizita.example.org",
        "VIZITA_SMTP_RECIPIENTS": "manager@example.org, unicef@example.org",
        "VIZITA_SMTP_CA_FILE": str(server.ca_file), "VIZITA_LOG_LEVEL": "debug",
    }  # fmt: skip


def test_report_send_mails_one_message_over_starttls(
    mail_server: MailServer, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    done = _run(["report", "--send", "--out", str(out), "--store", f"chdb://{tmp_path / 's'}"],
                tmp_path, **_mail_env(mail_server))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "sent to 2 recipient(s)"
    assert PASSWORD not in done.stdout + done.stderr  # not even at debug level
    (message,) = mail_server.inbox.messages
    (envelope,) = mail_server.inbox.envelopes
    assert envelope == (
        "reports@vizita.example.org",
        ["manager@example.org", "unicef@example.org"],
        True,
        True,
    )
    assert message["Subject"] == "Vizita report, no data yet"
    assert message["To"] == "manager@example.org, unicef@example.org"
    assert message.get_content_type() == "multipart/alternative"
    plain, page = (message.get_body(preferencelist=(kind,)) for kind in ("plain", "html"))
    assert plain is not None
    assert page is not None
    assert "No indicator values in the store yet." in plain.get_content()
    # the same page, line for line (mail travels with CRLF line ends)
    assert page.get_content().splitlines() == out.read_text(encoding="utf-8").splitlines()


def test_a_wrong_password_is_one_line_and_no_mail(mail_server: MailServer, tmp_path: Path) -> None:
    wrong = "this-is-not-it-either"
    args = ["report", "--send", "--out", str(tmp_path / "r.html"), "--store",
            f"chdb://{tmp_path / 's'}"]  # fmt: skip
    done = _run(args, tmp_path, **_mail_env(mail_server, wrong))
    assert done.returncode == 1
    # At debug level the traceback follows the line; neither holds the password.
    line = next(x for x in done.stderr.splitlines() if x.startswith("vizita: error: "))
    assert line.startswith("vizita: error: the mail server 127.0.0.1:")
    assert "refused the report: 535" in line
    assert wrong not in done.stdout + done.stderr
    assert mail_server.inbox.messages == []


def test_the_report_of_a_replayed_store_by_mail(replayed: Replayed, mail_server: MailServer,
                                                tmp_path: Path) -> None:  # fmt: skip
    from vizita.app.report import mail_report, render_report
    from vizita.app.report_data import read_report_data

    env = {k.removeprefix("VIZITA_").lower(): v for k, v in _mail_env(mail_server).items()}
    settings = Settings(**env, data_dir=tmp_path / "data")
    data = read_report_data(replayed.store, load_targets(settings.targets_file), NOW)
    page = render_report(data)
    mail_report(settings, data, page)
    (message,) = mail_server.inbox.messages
    assert message["Subject"] == f"Vizita report, 30 days to {CLOCK}"
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    text = plain.get_content()
    assert "MUNICIPALITIES BEHIND A TARGET, WORST FIRST" in text
    assert " 1. " in text
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    assert html.get_content().splitlines() == page.splitlines()


# --- in a real browser: the layout at 1400 and 600 px ---------------------------------------

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
)  # fmt: skip
MAX_SHOT_HEIGHT = 16000  # a window taller than this is more than a screenshot needs

# Run in the page after it is laid out: every box that sticks out of the viewport, the
# maps drawn, and the municipalities' rows in the order a reader sees them (top down).
MEASURE = """<script>
(function () {
  var width = document.documentElement.clientWidth, wide = [];
  document.querySelectorAll("body *").forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) { return; }
    if (r.right > width + 0.5 || r.left < -0.5) {
      wide.push(e.tagName + " " + Math.round(r.left) + ".." + Math.round(r.right));
    }
  });
  var rows = Array.from(document.querySelectorAll("table.municipalities tr[data-rank]"))
    .filter(function (r) { return r.getBoundingClientRect().height > 0; })
    .sort(function (a, b) { return a.getBoundingClientRect().top - b.getBoundingClientRect().top; })
    .map(function (r) { return r.getAttribute("data-municipality"); });
  var maps = Array.from(document.querySelectorAll("svg[data-map]"))
    .filter(function (m) { return m.getBoundingClientRect().width >= 250; }).length;
  var legend = document.querySelector("div.maps + p.legend + p");
  var mapsEnd = legend ? legend.getBoundingClientRect().bottom + window.scrollY : 0;
  document.body.setAttribute("data-layout", JSON.stringify({
    viewport: window.innerWidth, scroll_width: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight, wide: wide.slice(0, 20),
    rows: rows, maps: maps, maps_end: Math.ceil(mapsEnd)
  }));
})();
</script>"""


def _chromium() -> str:
    found = shutil.which("chromium")
    assert found, "no chromium on PATH: scripts/bootstrap.sh installs Debian's"
    return found


def _browse(page: Path, width: int, height: int, *extra: str) -> str:
    profile = tempfile.mkdtemp(prefix="chromium-", dir=page.parent)
    command = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               f"--window-size={width},{height}", *extra, page.as_uri()]  # fmt: skip
    done = subprocess.run(  # noqa: S603  # the system's browser, our own arguments
        command, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _layout(page: Path, width: int) -> dict[str, Any]:
    measured = page.with_name(f"measured-{width}.html")
    measured.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"),
                        encoding="utf-8")  # fmt: skip
    dom = _browse(measured, width, 1000, "--dump-dom")
    found = re.search(r'data-layout="([^"]*)"', dom)
    assert found, "the measuring script did not run"
    layout: dict[str, Any] = json.loads(html.unescape(found[1]))
    return layout


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_the_report_in_a_browser_at_1400_and_600_px(replayed: Replayed, tmp_path: Path) -> None:
    from vizita.app.report import render_report
    from vizita.app.report_data import read_report_data, standings
    from vizita.app.report_map import mapped_indicators

    data = read_report_data(replayed.store, load_targets(replayed.settings.targets_file), NOW)
    page = tmp_path / "report.html"
    page.write_text(render_report(data), encoding="utf-8")
    view = standings(data)
    worst_first = list(view.order)
    for width in (1400, 600):
        layout = _layout(page, width)
        assert layout["viewport"] == width
        assert layout["wide"] == [], f"wider than {width} px: {layout['wide']}"
        assert layout["scroll_width"] <= width  # no sideways scrolling, no cut-off column
        assert layout["rows"] == worst_first  # seen top down, worst first
        assert layout["maps"] == len(mapped_indicators(view))  # each drawn at least 250 px
        # The picture: the top of the page down to the maps' key (the alerts, the
        # municipalities worst first, the maps); the layout checks above cover it all.
        assert 0 < layout["maps_end"] <= layout["height"]
        shot = tmp_path / f"report-{width}.png"
        height = min(int(layout["maps_end"]) + 16, MAX_SHOT_HEIGHT)
        _browse(page, width, height, f"--screenshot={shot}")
        assert _png_size(shot) == (width, height)
