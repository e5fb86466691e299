"""The ingest endpoint's parts: tokens and submitters, the body limit, splitting a body
into its items' original bytes, the answers; and the HTTP app over loopback with a stub
producer (Kafka refusing, Kafka acknowledging) — the real broker is in
tests/integration/test_ingest.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    UnknownError,
)
from click.testing import CliRunner

from producers.errors import (
    BadBatch,
    BadBody,
    BodyTooLarge,
    KafkaRefused,
    KafkaUnavailable,
    Unauthorised,
    UnsupportedMediaType,
)
from producers.ingest import (
    VISITS_PATH,
    ItemResult,
    Origin,
    Submitters,
    bearer_token,
    build_ingest_app,
    check_item,
    check_media_type,
    hash_token,
    load_submitters,
    new_token,
    read_capped,
    response_body,
    split_items,
    submitters_line,
    unrecorded,
)
from vizita.app.cli import main
from vizita.contract.errors import ConfigError
from vizita.contract.settings import Settings
from vizita.contract.topics import (
    DLQ_HEADER_DETAIL,
    DLQ_HEADER_FIELD,
    DLQ_HEADER_REASON,
    DLQ_HEADER_SOURCE,
    SUBMITTER_HEADER,
)
from vizita.contract.validation import Reason, Rejection

TOKEN = new_token()


def event(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "schema_version": 1, "event_id": "e-1", "visit_id": "v-1", "revision": 1,
        "op": "upsert", "occurred_at": "2026-03-02T09:30:00+01:00",
        "submitted_at": "2026-03-02T10:00:00+01:00", "municipality": "prizren",
        "facility_id": None, "nurse_id": "n-1", "household_id": "hh-1",
        "child_age_months": 4, "pregnant": False, "visit_type": "routine",
        "outcome": "completed", "topics": ["immunisation"], "risk_flags": [], "referrals": [],
    }  # fmt: skip
    payload.update(overrides)
    return payload


# --- tokens and submitters ---------------------------------------------------------------


def test_token_hash_is_sha256_hex() -> None:
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert hash_token("abc") != hash_token("abd")


def test_new_tokens_are_long_and_different() -> None:
    tokens = {new_token() for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(token) >= 43 for token in tokens)  # 32 random bytes, base64url


def test_submitters_line_holds_the_hash_not_the_token() -> None:
    line = submitters_line("kobo-prz", "secret-token")
    assert line == f"  kobo-prz: {hash_token('secret-token')}"
    assert "secret-token" not in line


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def", "abc.def"),
        ("bearer abc", "abc"),
        ("  BEARER   abc  ", "abc"),
        ("Basic dXNlcjpwdw==", None),
        ("Bearer", None),
        ("Bearer    ", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token_is_read_from_the_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_a_known_token_names_its_submitter() -> None:
    submitters = Submitters({"kobo": hash_token("t-kobo"), "commcare": hash_token("t-cc")})
    assert submitters.identify("Bearer t-cc") == "commcare"
    assert submitters.identify("Bearer t-kobo") == "kobo"


def test_no_token_and_unknown_token_are_unauthorised() -> None:
    submitters = Submitters({"kobo": hash_token("t-kobo")})
    with pytest.raises(Unauthorised) as missing:
        submitters.identify(None)
    with pytest.raises(Unauthorised) as unknown:
        submitters.identify("Bearer t-other")
    assert missing.value.status == unknown.value.status == 401
    assert missing.value.headers == {"WWW-Authenticate": 'Bearer realm="vizita"'}
    assert unknown.value.headers == {
        "WWW-Authenticate": 'Bearer realm="vizita", error="invalid_token"'
    }
    # The hash itself is no token: knowing the file must not let anyone in.
    with pytest.raises(Unauthorised):
        submitters.identify(f"Bearer {hash_token('t-kobo')}")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer t-kobo\udcff",  # aiohttp's surrogate for a header byte that is no UTF-8
        "Bearer t-kobé",
        "Bearer t-kobo\x00",
        "Bearer t-kobo extra",
    ],
)
def test_a_token_that_cannot_be_a_bearer_token_is_an_unknown_token(header: str) -> None:
    submitters = Submitters({"kobo": hash_token("t-kobo")})
    with pytest.raises(Unauthorised) as refused:
        submitters.identify(header)
    assert refused.value.headers == {
        "WWW-Authenticate": 'Bearer realm="vizita", error="invalid_token"'
    }
    assert "t-kobo" not in str(refused.value)


def test_submitters_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "submitters.yaml"
    path.write_text(f"submitters:\n  kobo-prz: {hash_token('x')}\n  cc.1: {hash_token('y')}\n")
    assert load_submitters(path).hashes == {"kobo-prz": hash_token("x"), "cc.1": hash_token("y")}


def test_the_committed_example_has_no_submitter() -> None:
    assert load_submitters(Settings().ingest_submitters_file).hashes == {}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("submitters:\n  kobo: not-a-hash\n", "submitters.kobo"),
        (f"submitters:\n  kobo: {'A' * 64}\n", "submitters.kobo"),  # upper case: not ours
        (f"submitters:\n  'bad name': {'a' * 64}\n", "submitters.bad name"),
        (f"submitter:\n  kobo: {'a' * 64}\n", "submitter"),
        (f"submitters:\n  a: {'a' * 64}\n  b: {'a' * 64}\n", "same token hash"),
        ("submitters: [\n", "not YAML"),
    ],
)
def test_a_wrong_submitters_file_says_what_is_wrong(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "submitters.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem):
        load_submitters(path)


def test_a_missing_submitters_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_submitters(tmp_path / "absent.yaml")


def test_token_command_prints_a_token_and_its_line() -> None:
    done = CliRunner().invoke(main, ["ingest", "token", "kobo-prz"])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    token = lines[1].strip()
    assert lines[-1] == submitters_line("kobo-prz", token)


def test_token_command_refuses_a_bad_name() -> None:
    done = CliRunner().invoke(main, ["ingest", "token", "kobo prz"])
    assert done.exit_code == 2
    assert "NAME" in done.output


# --- the body ----------------------------------------------------------------------------


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    read: list[bytes] = []

    async def never_read() -> AsyncIterator[bytes]:
        read.append(b"!")
        yield b"x"

    with pytest.raises(BodyTooLarge):
        asyncio.run(read_capped(never_read(), declared=1025, limit=1024))
    assert read == []


def test_a_body_growing_over_the_limit_is_refused_while_reading() -> None:
    with pytest.raises(BodyTooLarge):
        asyncio.run(read_capped(_chunks(b"a" * 600, b"b" * 600), declared=None, limit=1024))


def test_a_body_at_the_limit_is_read_whole() -> None:
    body = asyncio.run(read_capped(_chunks(b"a" * 1000, b"b" * 24), declared=1024, limit=1024))
    assert body == b"a" * 1000 + b"b" * 24


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/vnd.kobo+json", "application/ld+json"]
)
def test_json_media_types_pass(content_type: str) -> None:
    check_media_type(content_type)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream"]
)
def test_other_media_types_are_refused(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        check_media_type(content_type)


def test_an_object_body_is_one_item_with_the_body_bytes() -> None:
    body = b' {"visit_id": "v-1",  "x": [1, 2]}\n'
    assert split_items(body, 10) == [body]


def test_array_items_keep_their_original_bytes() -> None:
    items = [
        b'{"a": "x, ] [ } {", "b": [1, {"c": null}]}',
        '{ "unicode": "Deçan \\u00e7 \\"q\\"" }'.encode(),
        b"7",
        b'"s"',
        b"[]",
        b"{}",
    ]
    body = b" [\n  " + b" ,\r\n\t".join(items) + b"  ]\n"
    assert split_items(body, 10) == items
    assert split_items('[{"m": "Graçanicë"}]'.encode(), 10) == ['{"m": "Graçanicë"}'.encode()]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"{",
        b'{"a": 1} {"b": 2}',
        b'[{"a": 1},]',
        b"[1 2]",
        b"\xff\xfe{}",
        b"\xef\xbb\xbf{}",  # a byte order mark: JSON text has none (RFC 8259 §8.1)
        b"[" * 100_000,
    ],
)
def test_a_body_that_is_no_json_is_not_json(body: bytes) -> None:
    with pytest.raises(BadBody) as refused:
        split_items(body, 10)
    assert refused.value.rejection.reason is Reason.NOT_JSON
    assert refused.value.status == 400


@pytest.mark.parametrize("body", [b"null", b"7", b'"text"', b"true"])
def test_a_body_neither_object_nor_array_is_not_object(body: bytes) -> None:
    with pytest.raises(BadBody) as refused:
        split_items(body, 10)
    assert refused.value.rejection.reason is Reason.NOT_OBJECT


def test_empty_and_too_long_batches_are_refused() -> None:
    with pytest.raises(BadBatch) as empty:
        split_items(b" [ ] ", 10)
    with pytest.raises(BadBatch) as too_many:
        split_items(b"[" + b",".join([b"{}"] * 11) + b"]", 10)
    assert (empty.value.code, too_many.value.code) == ("empty_batch", "too_many_items")
    assert len(split_items(b"[" + b",".join([b"{}"] * 10) + b"]", 10)) == 10


def _with_huge_revision(payload: dict[str, Any]) -> bytes:
    # Python's json refuses to turn more than 4300 digits into an int.
    text = json.dumps(payload).replace('"revision": 1,', '"revision": ' + "9" * 5000 + ",")
    assert "9" * 5000 in text
    return text.encode()


def test_a_5000_digit_integer_rejects_its_item_not_the_batch() -> None:
    huge = _with_huge_revision(event(event_id="e-huge"))
    good = json.dumps(event()).encode()
    assert split_items(b"[" + huge + b", " + good + b"]", 10) == [huge, good]
    assert split_items(huge, 10) == [huge]
    rejected = check_item(0, huge).rejection
    assert rejected is not None
    assert rejected.reason is Reason.NOT_JSON
    assert check_item(1, good).rejection is None


# --- answers -------------------------------------------------------------------------------


def test_items_are_checked_with_the_contract() -> None:
    good = check_item(0, json.dumps(event()).encode())
    bad = check_item(1, json.dumps(event(municipality="atlantis")).encode())
    assert good == ItemResult(0, None, "e-1", "v-1")
    assert bad.rejection is not None
    assert (bad.rejection.reason, bad.rejection.field) == (Reason.UNKNOWN_CODE, "municipality")


def test_the_answer_lists_each_item() -> None:
    rejection = Rejection(Reason.MISSING_FIELD, "nurse_id", "nurse_id: Field required")
    results = [ItemResult(0, None, "e-1", "v-1"), ItemResult(1, rejection)]
    request_id = "0123456789abcdef0123456789abcdef"
    assert response_body(request_id, results).model_dump(mode="json") == {
        "request_id": request_id, "accepted": 1, "rejected": 1,
        "results": [
            {"index": 0, "status": "accepted", "event_id": "e-1", "visit_id": "v-1"},
            {"index": 1, "status": "rejected", "reason": "missing_field", "field": "nurse_id",
             "detail": "nurse_id: Field required"},
        ],
    }  # fmt: skip


def test_dead_letter_headers_use_the_contract_names() -> None:
    rejection = Rejection(Reason.OUT_OF_RANGE, "revision", "revision: too big")
    source = Origin("kobo", "abc").source(3)
    assert source == "ingest/kobo/abc/3"
    assert dict(rejection.dlq_headers(source)) == {
        DLQ_HEADER_REASON: b"out_of_range", DLQ_HEADER_FIELD: b"revision",
        DLQ_HEADER_DETAIL: b"revision: too big", DLQ_HEADER_SOURCE: b"ingest/kobo/abc/3",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("error", "answer"),
    [
        (TimeoutError(), KafkaUnavailable),
        (KafkaTimeoutError(), KafkaUnavailable),
        (KafkaConnectionError(), KafkaUnavailable),
        (MessageSizeTooLargeError(), BodyTooLarge),
        (UnknownError(), KafkaRefused),
    ],
)
def test_kafka_failures_answer_503_when_a_retry_can_work(error: Exception, answer: type) -> None:
    assert isinstance(unrecorded(error), answer)


# --- the HTTP app over loopback, with a stub producer ----------------------------------------


class StubProducer:
    """Records what is sent; each send's acknowledgement runs only when awaited."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.acknowledged: list[tuple[str, bytes, bytes | None, dict[str, bytes]]] = []

    async def send(
        self, topic: str, *, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Awaitable[None]:
        async def acknowledge() -> None:
            if self.failure is not None:
                raise self.failure
            self.acknowledged.append((topic, value, key, dict(headers)))

        return acknowledge()


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    path = tmp_path / "submitters.yaml"
    path.write_text(f"submitters:\n  kobo-prz: {hash_token(TOKEN)}\n")
    values: dict[str, Any] = {"topic_prefix": "u.", "ingest_submitters_file": path}
    return Settings(**{**values, **overrides})


async def _post(
    settings: Settings, producer: StubProducer, body: bytes, token: str = TOKEN
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with (
        TestServer(build_ingest_app(settings, producer)) as server,
        ClientSession() as client,
        client.post(server.make_url(VISITS_PATH), data=body, headers=headers) as answer,
    ):
        return answer.status, await answer.json()


def test_the_answer_comes_after_every_item_is_acknowledged(tmp_path: Path) -> None:
    producer = StubProducer()
    good = json.dumps(event()).encode()
    bad = json.dumps(event(revision=0)).encode()
    status, answer = asyncio.run(
        _post(_settings(tmp_path), producer, b"[" + good + b"," + bad + b"]")
    )
    assert status == 200
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    # Without awaiting the acknowledgements, nothing would be in this list.
    assert [(topic, value, key) for topic, value, key, _ in producer.acknowledged] == [
        ("u.visits", good, b"v-1"), ("u.visits-dlq", bad, b"v-1")]  # fmt: skip
    headers = producer.acknowledged[1][3]
    assert headers[SUBMITTER_HEADER] == b"kobo-prz"
    assert headers[DLQ_HEADER_REASON] == b"out_of_range"


def test_a_batch_with_a_5000_digit_integer_dead_letters_that_item_only(tmp_path: Path) -> None:
    producer = StubProducer()
    huge = _with_huge_revision(event(event_id="e-huge"))
    good = json.dumps(event()).encode()
    status, answer = asyncio.run(
        _post(_settings(tmp_path), producer, b"[" + huge + b"," + good + b"]")
    )
    assert (status, answer["accepted"], answer["rejected"]) == (200, 1, 1)
    assert answer["results"][0]["reason"] == "not_json"
    assert [(topic, value, key) for topic, value, key, _ in producer.acknowledged] == [
        ("u.visits-dlq", huge, b"v-1"), ("u.visits", good, b"v-1")]  # fmt: skip
    assert producer.acknowledged[0][3][DLQ_HEADER_REASON] == b"not_json"


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (KafkaConnectionError(), 503, "kafka_unavailable"),
        (MessageSizeTooLargeError(), 413, "too_large"),
        (UnknownError(), 500, "kafka_refused"),
    ],
)
def test_kafka_failing_is_no_success(
    tmp_path: Path, failure: Exception, status: int, code: str
) -> None:
    producer = StubProducer(failure)
    answer = asyncio.run(_post(_settings(tmp_path), producer, json.dumps(event()).encode()))
    assert answer[0] == status
    assert answer[1]["error"] == code


def test_an_app_without_submitters_does_not_start(tmp_path: Path) -> None:
    path = tmp_path / "submitters.yaml"
    path.write_text("submitters:\n")
    with pytest.raises(ConfigError, match="no submitters"):
        build_ingest_app(Settings(ingest_submitters_file=path), StubProducer())
