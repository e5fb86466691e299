"""The ingest endpoint as `vizita ingest serve` runs it (`serving`), over real loopback
sockets spoken to byte by byte (asyncio streams): what a hostile or broken client gets —
a token that is no text, headers that never end, a body shorter than its
Content-Length, idle keep-alive connections, more connections than allowed — and that
no log line ever holds a token. Kafka is a stub here; tests/integration has the broker."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog

from producers.ingest import hash_token, new_token, serving
from vizita.contract.settings import Settings

TOKEN = new_token()
# Generous against a busy 2-core machine: a timeout of a fraction of a second must act
# well within this (aiohttp's own keep-alive default is an hour).
PATIENCE = 5.0


class AcknowledgingProducer:
    """Kafka acknowledging every message at once."""

    async def send(
        self, topic: str, *, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Awaitable[None]:
        async def acknowledge() -> None:
            return None

        return acknowledge()


class FaultyProducer:
    """A bug of ours below the endpoint, whose message quotes the payload."""

    async def send(
        self, topic: str, *, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Awaitable[None]:
        raise RuntimeError(f"cannot send {value!r}")


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    path = tmp_path / "submitters.yaml"
    path.write_text(f"submitters:\n  kobo-prz: {hash_token(TOKEN)}\n")
    values: dict[str, Any] = {
        "topic_prefix": "u.", "ingest_submitters_file": path, "ingest_host": "127.0.0.1",
        "ingest_port": 0,
    }  # fmt: skip
    return Settings(**{**values, **overrides})


@asynccontextmanager
async def endpoint(settings: Settings, producer: Any = None) -> AsyncIterator[int]:
    async with serving(settings, producer or AcknowledgingProducer()) as port:
        yield port


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PATIENCE)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in filter(None, lines):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(int(status_line.split()[1]), headers, body)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float | None:
    """How long until the server closes the connection (None: still open then)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(1024):
                pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def request(method: str, path: str, body: bytes = b"", *, auth: bytes | None = None,
            extra: bytes = b"") -> bytes:  # fmt: skip
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: ingest"]
    if auth is not None:
        lines.append(b"Authorization: Bearer " + auth)
    if method == "POST":
        lines += [b"Content-Type: application/json", f"Content-Length: {len(body)}".encode()]
    return b"\r\n".join(lines) + b"\r\n" + extra + b"\r\n" + body


EVENT = {
    "schema_version": 1, "event_id": "e-1", "visit_id": "v-1", "revision": 1,
    "op": "upsert", "occurred_at": "2026-03-02T09:30:00+01:00",
    "submitted_at": "2026-03-02T10:00:00+01:00", "municipality": "prizren",
    "facility_id": None, "nurse_id": "n-1", "household_id": "hh-1",
    "child_age_months": 4, "pregnant": False, "visit_type": "routine",
    "outcome": "completed", "topics": ["immunisation"], "risk_flags": [], "referrals": [],
}  # fmt: skip


# --- hostile tokens, and what the logs may hold ----------------------------------------------


class Logged:
    """Everything logged so far in the test, as text: structlog's events and the
    standard library's records (aiohttp logs there), arguments and exceptions too."""

    def __init__(self, events: list[dict[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
        self._events = events
        self._caplog = caplog

    def texts(self) -> list[str]:
        texts = [repr(event) for event in self._events]
        for record in self._caplog.records:
            texts += [record.getMessage(), repr(record.args), repr(record.exc_info)]
            if record.exc_info and record.exc_info[1] is not None:
                texts.append(repr(record.exc_info[1]))
        return [*texts, self._caplog.text]

    def holding(self, secret: str) -> list[str]:
        return [text for text in self.texts() if secret in text]


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[Logged]:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        yield Logged(events, caplog)


@pytest.mark.parametrize(
    "bad_bytes",
    [b"\xff", b"\xc3\x28", "é".encode(), b" \xfe\xff"],
    ids=["0xff", "broken-utf8", "utf8-non-ascii", "space-then-bytes"],
)
def test_a_token_with_bytes_that_are_no_token_is_401_and_never_logged(
    tmp_path: Path, logged: Logged, bad_bytes: bytes
) -> None:
    body = json.dumps(EVENT).encode()

    async def scenario() -> Answer:
        async with endpoint(_settings(tmp_path)) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request("POST", "/v1/visits", body, auth=TOKEN.encode() + bad_bytes))
            answer = await read_answer(reader)
            writer.close()
            return answer

    answer = asyncio.run(scenario())
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="vizita", error="invalid_token"'
    assert answer.json()["error"] == "unauthorised"
    assert TOKEN.encode() not in answer.body
    assert logged.holding("ingest.refused"), "the logs were captured"
    assert logged.holding(TOKEN) == []
    assert logged.holding('"visit_id": "v-1"') == []  # nor the payload


def test_a_header_aiohttp_refuses_is_400_and_the_token_is_not_logged(
    tmp_path: Path, logged: Logged
) -> None:
    # A control character: aiohttp's parser refuses the request and, as released,
    # quotes the whole header line (the token) in the exception it logs.
    async def scenario() -> Answer:
        async with endpoint(_settings(tmp_path)) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request("POST", "/v1/visits", b"{}", auth=TOKEN.encode() + b"\x01"))
            answer = await read_answer(reader)
            writer.close()
            return answer

    assert asyncio.run(scenario()).status == 400
    assert logged.holding("ingest.http_error"), "the logs were captured"
    assert logged.holding(TOKEN) == []


def test_a_fault_of_ours_is_a_json_500_whose_log_holds_no_payload(
    tmp_path: Path, logged: Logged
) -> None:
    body = json.dumps(EVENT).encode()

    async def scenario() -> Answer:
        async with endpoint(_settings(tmp_path), FaultyProducer()) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request("POST", "/v1/visits", body, auth=TOKEN.encode()))
            answer = await read_answer(reader)
            writer.close()
            return answer

    answer = asyncio.run(scenario())
    assert (answer.status, answer.json()["error"]) == (500, "internal_error")
    assert logged.holding("ingest.failed"), "the logs were captured"
    assert logged.holding("RuntimeError")  # the kind of fault is there, for whoever looks
    assert logged.holding('"visit_id": "v-1"') == []
    assert logged.holding(TOKEN) == []


# --- time limits -----------------------------------------------------------------------------


def test_connections_that_never_finish_their_headers_are_closed(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ingest_header_timeout_seconds=0.5)
    partial = [b"", b"POST /v1/visits HTTP/1.1\r\n", b"POST /v1/visits HTTP/1.1\r\nHost: x\r\n"]

    async def stalled(port: int, sent: bytes) -> float | None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(sent)
        try:
            return await closed_within(reader, PATIENCE)
        finally:
            writer.close()

    async def trickling(port: int) -> float | None:
        # A byte every 0.1 s: bytes arriving do not push the deadline back.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        try:
            for byte in b"POST /v1/visits HTTP/1.1\r\nHost: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx":
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.1)
        except ConnectionError:
            return time.monotonic() - started
        finally:
            writer.close()
        return None

    async def scenario() -> list[float | None]:
        async with endpoint(settings) as port:
            return await asyncio.gather(
                *[stalled(port, sent) for sent in partial * 4], trickling(port)
            )

    waited = asyncio.run(scenario())
    assert None not in waited, waited
    assert all(0.4 <= seconds < PATIENCE for seconds in waited if seconds is not None), waited


def test_a_body_shorter_than_its_content_length_is_408_closing_the_connection(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, ingest_body_timeout_seconds=0.5)

    async def scenario() -> tuple[Answer, float, float | None]:
        async with endpoint(settings) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = request("POST", "/v1/visits", b"x" * 500, auth=TOKEN.encode())
            started = time.monotonic()
            writer.write(head[: -500 + 2])  # the headers and 2 of the 500 bytes
            answer = await read_answer(reader)
            took = time.monotonic() - started
            closed = await closed_within(reader, 1.0)
            writer.close()
            return answer, took, closed

    answer, took, closed = asyncio.run(scenario())
    assert (answer.status, answer.json()["error"]) == (408, "request_timeout")
    assert answer.headers["connection"] == "close"
    assert 0.4 <= took < PATIENCE
    assert closed is not None  # at once, not after aiohttp's lingering read of 10 s


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    tmp_path: Path,
) -> None:
    # Shorter header deadline than keep-alive: idling between requests is not a
    # request's headers taking long.
    settings = _settings(
        tmp_path, ingest_header_timeout_seconds=0.3, ingest_keepalive_timeout_seconds=1.2
    )

    async def scenario() -> tuple[int, int, float | None]:
        async with endpoint(settings) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request("GET", "/healthz"))
            first = await read_answer(reader)
            await asyncio.sleep(0.6)  # past the header deadline, within keep-alive
            writer.write(request("GET", "/healthz"))
            second = await read_answer(reader)
            closed = await closed_within(reader, PATIENCE)
            writer.close()
            return first.status, second.status, closed

    first, second, closed = asyncio.run(scenario())
    assert (first, second) == (200, 200)
    assert closed is not None
    assert 0.8 <= closed < PATIENCE


# --- size and number limits ------------------------------------------------------------------


def test_a_header_line_over_the_limit_is_refused(tmp_path: Path) -> None:
    # Proves aiohttp got our options: it drops all of them if one is wrong.
    settings = _settings(tmp_path, ingest_max_header_line_bytes=1024)

    async def scenario(padding: int) -> int:
        async with endpoint(settings) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request("GET", "/healthz", extra=b"X-Pad: " + b"p" * padding + b"\r\n"))
            answer = await read_answer(reader)
            writer.close()
            return answer.status

    assert asyncio.run(scenario(900)) == 200
    assert asyncio.run(scenario(2000)) == 400


def test_connections_over_the_cap_are_answered_503_until_one_closes(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ingest_max_connections=3)

    async def scenario() -> tuple[Answer, int]:
        async with endpoint(settings) as port:
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
            await asyncio.sleep(0.1)  # all three accepted
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            refused = await read_answer(reader)
            writer.close()
            held[0][1].close()
            await asyncio.sleep(0.2)  # its slot is free again
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request("GET", "/healthz"))
            admitted = await read_answer(reader)
            writer.close()
            for _, other in held[1:]:
                other.close()
            return refused, admitted.status

    refused, admitted = asyncio.run(scenario())
    assert refused.status == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "too_many_connections"
    assert admitted == 200
