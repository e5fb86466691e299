"""`POST /v1/visits` through real HTTP (aiohttp's server on a loopback port, aiohttp's
client) against the real broker: what it answers, and what Kafka then holds — read back
from the topics, and in the end from the store through the whole pipeline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientSession
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from producers.ingest import (
    METRICS_PATH,
    VISITS_PATH,
    hash_token,
    ingest_producer,
    new_token,
    serving,
)
from sinks.schema import DEAD_LETTERS, VISITS
from sinks.store import Store
from vizita.app.runner import Pipeline
from vizita.contract.settings import Settings
from vizita.contract.topics import (
    DLQ_HEADER_DETAIL,
    DLQ_HEADER_FIELD,
    DLQ_HEADER_REASON,
    DLQ_HEADER_SOURCE,
    SUBMITTER_HEADER,
    TOPIC_VISITS,
    TOPIC_VISITS_DLQ,
)
from vizita.kafka.admin import bootstrap_of, end_offsets, ensure_pipeline_topics

TOKEN = new_token()


def event(number: int, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "schema_version": 1, "event_id": f"e-{number}", "visit_id": f"v-{number}",
        "revision": 1, "op": "upsert", "occurred_at": "2026-03-02T09:30:00+01:00",
        "submitted_at": "2026-03-02T10:00:00+01:00", "municipality": "prizren",
        "facility_id": None, "nurse_id": "n-1", "household_id": f"hh-{number}",
        "child_age_months": 4, "pregnant": False, "visit_type": "routine",
        "outcome": "completed", "topics": ["immunisation"], "risk_flags": [], "referrals": [],
    }  # fmt: skip
    payload.update(overrides)
    return payload


def raw(payload: dict[str, Any]) -> bytes:
    # Spaced as a person would write it: what reaches Kafka must be these very bytes.
    return json.dumps(payload, indent=1, ensure_ascii=False).encode()


def batch(*items: bytes) -> bytes:
    return b"[\n " + b" ,\n ".join(items) + b"\n]"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


async def post(
    url: str, body: bytes, token: str | None = TOKEN, content_type: str = "application/json"
) -> Answer:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with ClientSession() as client, client.post(url, data=body, headers=headers) as got:
        return Answer(got.status, dict(got.headers), await got.json())


@asynccontextmanager
async def ingest_server(settings: Settings, **producer_options: Any) -> AsyncIterator[str]:
    """The endpoint as `vizita ingest serve` runs it, on a free loopback port, with a
    real idempotent producer; its URL."""
    producer = ingest_producer(settings, **producer_options)
    await producer.start()
    try:
        async with serving(settings, producer) as port:
            yield f"http://127.0.0.1:{port}{VISITS_PATH}"
    finally:
        await producer.stop()


def ingest_settings(
    make_settings: Callable[..., Settings], tmp_path: Path, **more: Any
) -> Settings:
    path = tmp_path / "submitters.yaml"
    path.write_text(f"submitters:\n  kobo-prz: {hash_token(TOKEN)}\n")
    settings = make_settings(ingest_submitters_file=path, ingest_host="127.0.0.1",
                             ingest_port=0, **more)  # fmt: skip
    ensure_pipeline_topics(settings)
    return settings


def read_topic(settings: Settings, name: str) -> list[ConsumerRecord]:
    """Every message of a topic, from the beginning to its end now."""
    topic = settings.topic(name)
    ends = end_offsets(bootstrap_of(settings), topic)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in ends]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    records: list[ConsumerRecord] = []
    try:
        while any(consumer.position(tp) < ends[tp.partition] for tp in partitions):
            for fetched in consumer.poll(timeout_ms=1000).values():
                records.extend(fetched)
    finally:
        consumer.close()
    return records


def headers_of(record: ConsumerRecord) -> dict[str, bytes]:
    return dict(record.headers)


def nothing_recorded(settings: Settings) -> bool:
    return not read_topic(settings, TOPIC_VISITS) and not read_topic(settings, TOPIC_VISITS_DLQ)


# --- accepted --------------------------------------------------------------------------------


def test_one_good_event_reaches_visits_as_sent(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = ingest_settings(make_settings, tmp_path)
    # An unknown field (dropped by validation) carries non-ASCII text: bytes kept as sent.
    body = raw(event(1, municipality="decan", note="Deçan, Graçanicë")) + b"\n"

    async def scenario() -> Answer:
        async with ingest_server(settings) as url:
            return await post(url, body)

    answer = asyncio.run(scenario())
    assert answer.status == 200
    assert answer.body["results"] == [
        {"index": 0, "status": "accepted", "event_id": "e-1", "visit_id": "v-1"}
    ]
    [record] = read_topic(settings, TOPIC_VISITS)
    assert (record.key, record.value) == (b"v-1", body)
    assert headers_of(record)[SUBMITTER_HEADER] == b"kobo-prz"
    assert read_topic(settings, TOPIC_VISITS_DLQ) == []


def test_a_good_batch_reaches_visits_item_by_item(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = ingest_settings(make_settings, tmp_path)
    items = [raw(event(n)) for n in range(1, 6)]

    async def scenario() -> Answer:
        async with ingest_server(settings) as url:
            return await post(url, batch(*items))

    answer = asyncio.run(scenario())
    assert (answer.status, answer.body["accepted"], answer.body["rejected"]) == (200, 5, 0)
    stored = read_topic(settings, TOPIC_VISITS)
    assert sorted((r.key, r.value) for r in stored) == sorted(
        (f"v-{n}".encode(), item) for n, item in enumerate(items, start=1)
    )


# --- rejected --------------------------------------------------------------------------------


def test_a_mixed_batch_accepts_the_good_and_dead_letters_the_bad(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = ingest_settings(make_settings, tmp_path)
    missing = event(3)
    del missing["nurse_id"]
    items = [raw(event(1)), raw(event(2, municipality="atlantis")), raw(missing), b"42",
             raw(event(5, revision=2))]  # fmt: skip

    async def scenario() -> Answer:
        async with ingest_server(settings) as url:
            return await post(url, batch(*items))

    answer = asyncio.run(scenario())
    assert (answer.status, answer.body["accepted"], answer.body["rejected"]) == (200, 2, 3)
    outcomes = [(r["index"], r["status"], r.get("reason"), r.get("field"))
                for r in answer.body["results"]]  # fmt: skip
    assert outcomes == [
        (0, "accepted", None, None), (1, "rejected", "unknown_code", "municipality"),
        (2, "rejected", "missing_field", "nurse_id"), (3, "rejected", "not_object", ""),
        (4, "accepted", None, None),
    ]  # fmt: skip
    assert sorted(r.value for r in read_topic(settings, TOPIC_VISITS)) == sorted(
        [items[0], items[4]]
    )
    letters = {r.value: headers_of(r) for r in read_topic(settings, TOPIC_VISITS_DLQ)}
    assert set(letters) == {items[1], items[2], items[3]}
    request_id = answer.body["request_id"]
    unknown = letters[items[1]]
    assert (unknown[DLQ_HEADER_REASON], unknown[DLQ_HEADER_FIELD]) == (
        b"unknown_code", b"municipality")  # fmt: skip
    assert unknown[DLQ_HEADER_DETAIL].startswith(b"municipality: ")
    assert unknown[DLQ_HEADER_SOURCE] == f"ingest/kobo-prz/{request_id}/1".encode()
    assert unknown[SUBMITTER_HEADER] == b"kobo-prz"
    assert letters[items[3]][DLQ_HEADER_REASON] == b"not_object"


def test_an_event_over_64_kib_is_dead_lettered_whole(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = ingest_settings(make_settings, tmp_path)
    body = raw(event(1, note="x" * 100_000))

    async def scenario() -> Answer:
        async with ingest_server(settings) as url:
            return await post(url, body)

    answer = asyncio.run(scenario())
    assert (answer.status, answer.body["results"][0]["reason"]) == (200, "too_large")
    [letter] = read_topic(settings, TOPIC_VISITS_DLQ)
    assert (letter.key, letter.value) == (b"v-1", body)


def test_an_item_with_a_5000_digit_integer_is_dead_lettered_and_its_siblings_accepted(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = ingest_settings(make_settings, tmp_path)
    # More digits than Python turns into an int (4300): the batch must not be "not JSON".
    huge = raw(event(2)).replace(b'"revision": 1,', b'"revision": ' + b"9" * 5000 + b",")
    assert b"9" * 5000 in huge
    items = [raw(event(1)), huge, raw(event(3))]

    async def scenario() -> Answer:
        async with ingest_server(settings) as url:
            return await post(url, batch(*items))

    answer = asyncio.run(scenario())
    assert (answer.status, answer.body["accepted"], answer.body["rejected"]) == (200, 2, 1)
    assert answer.body["results"][1]["reason"] == "not_json"
    assert sorted(r.value for r in read_topic(settings, TOPIC_VISITS)) == sorted(
        [items[0], items[2]]
    )
    [letter] = read_topic(settings, TOPIC_VISITS_DLQ)
    assert (letter.key, letter.value) == (b"v-2", huge)
    assert headers_of(letter)[DLQ_HEADER_REASON] == b"not_json"


def test_a_body_that_is_no_json_is_400_and_dead_lettered(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = ingest_settings(make_settings, tmp_path)
    body = b'{"visit_id": "v-1", "revision": 1,'

    async def scenario() -> Answer:
        async with ingest_server(settings) as url:
            return await post(url, body)

    answer = asyncio.run(scenario())
    assert (answer.status, answer.body["error"]) == (400, "not_json")
    assert read_topic(settings, TOPIC_VISITS) == []
    [letter] = read_topic(settings, TOPIC_VISITS_DLQ)
    assert letter.value == body
    assert headers_of(letter)[DLQ_HEADER_REASON] == b"not_json"


# --- refused: nothing recorded ------------------------------------------------------------------


def test_without_a_known_token_nothing_is_recorded(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = ingest_settings(make_settings, tmp_path)

    async def scenario() -> list[Answer]:
        async with ingest_server(settings) as url:
            return [await post(url, raw(event(1)), token=None),
                    await post(url, raw(event(1)), token=new_token()),
                    await post(url, raw(event(1)), token=hash_token(TOKEN))]  # fmt: skip

    missing, wrong, the_hash = asyncio.run(scenario())
    assert [a.status for a in (missing, wrong, the_hash)] == [401, 401, 401]
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="vizita"'
    assert wrong.headers["WWW-Authenticate"].endswith('error="invalid_token"')
    assert nothing_recorded(settings)


async def _chunked(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_body_over_the_limit_is_413_and_nothing_is_recorded(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = ingest_settings(make_settings, tmp_path, ingest_max_body_bytes=4096)
    body = batch(*[raw(event(n)) for n in range(1, 20)])
    assert len(body) > 4096

    async def scenario() -> tuple[int, int]:
        async with ingest_server(settings) as url:
            declared = await post(url, body)
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            async with (
                ClientSession() as client,
                client.post(  # no Content-Length: chunked
                    url, data=_chunked(body), headers=headers
                ) as streamed,
            ):
                return declared.status, streamed.status

    assert asyncio.run(scenario()) == (413, 413)
    assert nothing_recorded(settings)


def test_bad_batches_and_media_types_are_refused(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = ingest_settings(make_settings, tmp_path, ingest_max_items=3)

    async def scenario() -> list[Answer]:
        async with ingest_server(settings) as url:
            return [await post(url, b"[]"),
                    await post(url, batch(*[raw(event(n)) for n in range(4)])),
                    await post(url, raw(event(1)), content_type="text/plain")]  # fmt: skip

    empty, too_many, text = asyncio.run(scenario())
    assert (empty.status, empty.body["error"]) == (400, "empty_batch")
    assert (too_many.status, too_many.body["error"]) == (400, "too_many_items")
    assert (text.status, text.body["error"]) == (415, "unsupported_media_type")
    assert nothing_recorded(settings)


def test_kafka_unable_to_take_the_items_is_503(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = ingest_settings(make_settings, tmp_path)
    # Topics the broker does not have (and will not create): no partition takes a message.
    elsewhere = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}absent."})

    async def scenario() -> Answer:
        async with ingest_server(elsewhere, request_timeout_ms=1500) as url:
            return await post(url, raw(event(1)))

    answer = asyncio.run(scenario())
    assert (answer.status, answer.body["error"]) == (503, "kafka_unavailable")
    assert answer.headers["Retry-After"] == "5"


# --- the endpoint's own metrics ----------------------------------------------------------------


async def scrape(url: str) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    """GET /metrics of the endpoint at `url` (its /v1/visits): content type and samples."""
    async with ClientSession() as client, client.get(url.replace(VISITS_PATH, METRICS_PATH)) as got:
        assert got.status == 200
        text = await got.text()
        samples = {(sample.name, frozenset(sample.labels.items())): sample.value
                   for family in text_string_to_metric_families(text)
                   for sample in family.samples}  # fmt: skip
        return got.headers["Content-Type"], samples


def test_the_metrics_count_requests_by_status_and_submitter(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = ingest_settings(make_settings, tmp_path)
    good, unknown = [raw(event(1)), raw(event(2))], raw(event(3, municipality="atlantis"))

    async def scenario() -> tuple[Any, ...]:
        async with ingest_server(settings) as url:
            _, before = await scrape(url)  # the counters are the process's: compare
            answers = [await post(url, batch(*good, unknown)), await post(url, b"{not json"),
                       await post(url, raw(event(4)), token=new_token())]  # fmt: skip
            content_type, after = await scrape(url)
            return answers, content_type, before, after

    answers, content_type, before, after = asyncio.run(scenario())
    assert [a.status for a in answers] == [200, 400, 401]
    assert content_type.startswith("text/plain; version=0.0.4")

    def grew(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    requests = "vizita_ingest_requests_total"
    assert grew(requests, status="200", submitter="kobo-prz") == 1
    assert grew(requests, status="400", submitter="kobo-prz") == 1
    assert grew(requests, status="401", submitter="") == 1
    items = "vizita_ingest_items_total"
    assert grew(items, submitter="kobo-prz", outcome="accepted") == 2
    assert grew(items, submitter="kobo-prz", outcome="rejected") == 2  # one item, one body
    for status in ("200", "400", "401"):
        assert grew("vizita_ingest_request_seconds_count", status=status) == 1
    # The latency of the answer Kafka had to acknowledge is in some bucket below 30 s.
    assert grew("vizita_ingest_request_seconds_bucket", status="200", le="30.0") == 1
    assert grew("vizita_ingest_request_seconds_sum", status="200") > 0
    # Scrapes and other paths are not ingest requests; the worker's metrics are not here.
    assert (
        sum(v for (name, _), v in after.items() if name == requests)
        - sum(v for (name, _), v in before.items() if name == requests)
        == 3
    )
    assert not any(name.startswith("vizita_events") for name, _ in after)
    assert after[("vizita_ingest_connections_open", frozenset())] >= 1  # the scrape's own


# --- end to end: through the pipeline into the store -------------------------------------------


def test_accepted_events_reach_the_visits_table(
    make_settings: Callable[..., Settings], tmp_path: Path, store: Store
) -> None:
    settings = ingest_settings(make_settings, tmp_path, clock="event")
    correction = raw(event(2, event_id="e-2b", revision=2, outcome="not_home"))
    bad = raw(event(9, revision="2"))

    async def scenario() -> Answer:
        pipeline = Pipeline(settings, store)
        await pipeline.start()
        try:
            await pipeline.wait_until_ready()
            topic = settings.topic(TOPIC_VISITS)
            before = await asyncio.to_thread(end_offsets, bootstrap_of(settings), topic)
            async with ingest_server(settings) as url:
                answer = await post(url, batch(raw(event(1)), raw(event(2)), bad))
                await post(url, correction)
            await pipeline.wait_until_stored(before)
        finally:
            await pipeline.stop()
        return answer

    answer = asyncio.run(scenario())
    assert (answer.status, answer.body["accepted"], answer.body["rejected"]) == (200, 2, 1)
    rows = store.query(
        f"SELECT visit_id, event_id, outcome FROM {store.table(VISITS)} FINAL ORDER BY visit_id"
    )
    assert [(r["visit_id"], r["event_id"], r["outcome"]) for r in rows] == [
        ("v-1", "e-1", "completed"), ("v-2", "e-2b", "not_home")]  # fmt: skip
    letters = store.query(
        f"SELECT reason, field, hex(payload) AS h, source FROM {store.table(DEAD_LETTERS)}"
    )
    assert [(r["reason"], r["field"], r["source"]) for r in letters] == [
        ("wrong_type", "revision", f"ingest/kobo-prz/{answer.body['request_id']}/2")]  # fmt: skip
    assert letters[0]["h"] == bad.hex().upper()
