"""`POST /v1/visits`: the HTTP endpoint form servers and phones submit visits to.

A request carries one event (a JSON object) or a batch (a JSON array of objects) from a
submitter known by its bearer token (`config/submitters.yaml` keeps only the sha256 of
each token). Every item is checked with the contract's validator. Valid items go to
`visits` keyed by their `visit_id`, invalid ones to `visits-dlq` with the stream's
dead-letter headers; both keep the item's original bytes and name the submitter in a
header. The answer is sent only after Kafka acknowledged every item:

- 200: every item is recorded, accepted or dead-lettered; `results` says which, with the
  SPEC reason, field and detail of each rejection. Sending it again cannot help.
- 400: the body is no JSON or neither an object nor an array (dead-lettered, like the
  stream would), or an empty batch or one over `ingest_max_items` (nothing recorded).
- 401 no or an unknown bearer token, 413 a body over `ingest_max_body_bytes` (refused
  before it is read), 415 not `application/json`, 408 a body that did not arrive within
  `ingest_body_timeout_seconds`: nothing recorded.
- 503: Kafka did not acknowledge every item; send the whole request again (an accepted
  event sent twice is a duplicate by its `event_id`, SPEC §1). 413 also when an item
  is over the broker's message size, 500 when Kafka refused an item for another reason.

Every answer is JSON, from the models in `producers.answers`; `GET /openapi.json` serves
the OpenAPI document (`producers.openapi`), `GET /metrics` the endpoint's Prometheus
metrics (`vizita.contract.metrics.INGEST`: requests by status and submitter, their
latency, items, connections). Connections are bounded in number and time
(`producers.connections`, `serving`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import signal
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Protocol

import structlog
import yaml
from aiohttp import hdrs, web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
)
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from producers.answers import AcceptedItem, ErrorAnswer, HealthAnswer, RejectedItem, VisitsAnswer
from producers.connections import ConnectionGuard, ServerLog
from producers.errors import (
    BadBatch,
    BadBody,
    BodyTooLarge,
    BodyTooSlow,
    ErrorCode,
    IngestError,
    KafkaRefused,
    KafkaUnavailable,
    Unauthorised,
    UnsupportedMediaType,
)
from producers.openapi import HEALTH_PATH, OPENAPI_PATH, VISITS_PATH, document_for, render
from producers.publish import key_of
from vizita.contract import metrics
from vizita.contract.errors import ConfigError
from vizita.contract.settings import Settings
from vizita.contract.topics import SUBMITTER_HEADER, TOPIC_VISITS, TOPIC_VISITS_DLQ
from vizita.contract.validation import Reason, Rejection, validate_payload

log = structlog.get_logger(__name__)

METRICS_PATH = "/metrics"
# Longest wait for Kafka to acknowledge a request's items before answering 503.
PRODUCE_TIMEOUT_SECONDS = 30.0
_READ_CHUNK = 64 * 1024
# Room for the headers of a dead letter that carries a whole body.
_RECORD_HEADROOM = 16 * 1024

# --- submitters and their tokens ----------------------------------------------------------

SUBMITTER_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
SubmitterName = Annotated[str, StringConstraints(pattern=SUBMITTER_NAME_PATTERN)]
TokenHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def hash_token(token: str) -> str:
    # Tokens are 256 random bits (new_token), not passwords a person chose: guessing
    # cannot reverse a plain sha256 of one, so a slow salted hash would add nothing.
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def submitters_line(name: str, token: str) -> str:
    """The line to add under `submitters:` for this name and token."""
    return f"  {name}: {hash_token(token)}"


# RFC 6750 §2.1's b64token: what a bearer token may be made of (ours are base64url). aiohttp
# gives header bytes that are no UTF-8 as surrogates, which no hash can encode: such a
# header is an unknown token, like any other that cannot be one.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class SubmittersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # `submitters:` with nothing under it (null) is no submitter yet.
    submitters: dict[SubmitterName, TokenHash] | None = None


@dataclass(frozen=True)
class Submitters:
    hashes: Mapping[str, str]  # name -> sha256 hex of its token

    def identify(self, authorization: str | None) -> str:
        """The submitter whose token the header carries; Unauthorised otherwise."""
        token = bearer_token(authorization)
        if token is None:
            raise Unauthorised("a bearer token is required", invalid_token=False)
        if not _B64TOKEN.fullmatch(token):
            raise Unauthorised("unknown bearer token", invalid_token=True)
        digest = hash_token(token)
        # Every hash is compared, each in constant time: timing tells nothing.
        names = [n for n, known in self.hashes.items() if hmac.compare_digest(digest, known)]
        if not names:
            raise Unauthorised("unknown bearer token", invalid_token=True)
        return names[0]


def load_submitters(path: Path) -> Submitters:
    """Read the submitters file; ConfigError says what is wrong with it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        parsed = SubmittersFile.model_validate(data)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the submitters file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigError(f"{path}: {problems}") from exc
    hashes = parsed.submitters or {}
    if len(set(hashes.values())) != len(hashes):
        raise ConfigError(f"{path}: two submitters have the same token hash")
    return Submitters(hashes)


# --- the body -------------------------------------------------------------------------------

_JSON_WHITESPACE = " \t\n\r"
# The split needs the body's structure, not its numbers, so integers are read as floats
# (that never fails): int() refuses more than 4300 digits (Python's int_max_str_digits)
# and that ValueError would make the whole batch "not JSON". Each item's numbers are the
# validator's to judge: it dead-letters an item with a 5,000-digit integer as not_json
# (its JSON parser refuses numbers that large), exactly as the stream would.
_DECODER = json.JSONDecoder(parse_int=float)
_NOT_JSON = Rejection(Reason.NOT_JSON, "", "body: not valid JSON (UTF-8)")
_NOT_OBJECT = Rejection(Reason.NOT_OBJECT, "", "body: JSON but neither an object nor an array")


def check_media_type(content_type: str) -> None:
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType("Content-Type must be application/json")


async def read_capped(chunks: AsyncIterable[bytes], declared: int | None, limit: int) -> bytes:
    """The body, refused as soon as it is known to be over `limit` bytes: by its
    Content-Length before anything is read, else while it is read."""
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"body: {declared} bytes > {limit}")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body: more than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _skip_whitespace(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _JSON_WHITESPACE:
        pos += 1
    return pos


def _parse(body: bytes) -> tuple[str, int, Any]:
    """The body as text, where its JSON value starts, and the value."""
    try:
        text = body.decode("utf-8")
        start = _skip_whitespace(text, 0)
        value, end = _DECODER.raw_decode(text, start)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadBody(_NOT_JSON) from None
    if _skip_whitespace(text, end) != len(text):
        raise BadBody(_NOT_JSON)  # something after the value
    return text, start, value


def _element_bytes(text: str, start: int) -> list[bytes]:
    # The text is one valid array (parsed before), so every element decodes again.
    items = []
    pos = _skip_whitespace(text, start + 1)
    while text[pos] != "]":
        _, end = _DECODER.raw_decode(text, pos)
        items.append(text[pos:end].encode())  # exactly the bytes the submitter sent
        pos = _skip_whitespace(text, end)
        if text[pos] == ",":
            pos = _skip_whitespace(text, pos + 1)
    return items


def split_items(body: bytes, max_items: int) -> list[bytes]:
    """The items of a body, each as its original bytes: the body itself when it is an
    object, each element's own bytes when it is an array."""
    text, start, value = _parse(body)
    if isinstance(value, dict):
        return [body]
    if not isinstance(value, list):
        raise BadBody(_NOT_OBJECT)
    if not value:
        raise BadBatch(ErrorCode.EMPTY_BATCH, "body: an empty array")
    if len(value) > max_items:
        raise BadBatch(ErrorCode.TOO_MANY_ITEMS, f"body: {len(value)} items > {max_items}")
    return _element_bytes(text, start)


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemResult:
    index: int
    rejection: Rejection | None  # None: accepted
    event_id: str | None = None
    visit_id: str | None = None

    def answer(self) -> AcceptedItem | RejectedItem:
        rejection = self.rejection
        if rejection is None:
            assert self.event_id is not None
            assert self.visit_id is not None
            return AcceptedItem(index=self.index, event_id=self.event_id, visit_id=self.visit_id)
        return RejectedItem(
            index=self.index, reason=rejection.reason, field=rejection.field,
            detail=rejection.detail,
        )  # fmt: skip


def check_item(index: int, item: bytes, received_at: datetime | None = None) -> ItemResult:
    """An item against SPEC §1, as the stream will see it: received now."""
    result = validate_payload(item, received_at=received_at)
    if isinstance(result, Rejection):
        return ItemResult(index, result)
    return ItemResult(index, None, result.event.event_id, result.event.visit_id)


def response_body(request_id: str, results: Sequence[ItemResult]) -> VisitsAnswer:
    accepted = sum(result.rejection is None for result in results)
    return VisitsAnswer(request_id=request_id, accepted=accepted,
                        rejected=len(results) - accepted,
                        results=[result.answer() for result in results])  # fmt: skip


def error_body(request_id: str, code: ErrorCode, detail: str) -> ErrorAnswer:
    return ErrorAnswer(request_id=request_id, error=code, detail=detail)


def json_answer(
    answer: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(text=answer.model_dump_json(), status=status, headers=headers)


# --- recording in Kafka --------------------------------------------------------------------

Headers = list[tuple[str, bytes]]


def unrecorded(exc: BaseException) -> IngestError:
    """503 when sending again can work (Kafka unreachable, slow, a retriable error);
    413 when an item is over Kafka's message size; 500 when Kafka refused it otherwise."""
    retry = isinstance(exc, TimeoutError | KafkaTimeoutError | KafkaConnectionError)
    if retry or getattr(exc, "retriable", False):
        return KafkaUnavailable("Kafka did not acknowledge every item; send the request again")
    if isinstance(exc, MessageSizeTooLargeError):
        # A dead letter keeps a whole too-large item: the broker's limit can be the lower.
        return BodyTooLarge("body: an item is over Kafka's message size limit")
    return KafkaRefused(f"Kafka refused an item ({type(exc).__name__})")


class Producer(Protocol):
    """What the endpoint uses of aiokafka's AIOKafkaProducer."""

    async def send(
        self, topic: str, *, value: bytes, key: bytes | None, headers: Headers
    ) -> Awaitable[Any]:
        """Queue a message; the awaitable it answers resolves once Kafka acknowledged it."""


@dataclass(frozen=True)
class Origin:
    """Who sent a request, and its id (in the answer, the logs and dead letters)."""

    submitter: str
    request_id: str

    def source(self, index: int) -> str:
        # A dead letter's `source` is unique (dead_letters is keyed by it): the item.
        return f"ingest/{self.submitter}/{self.request_id}/{index}"


@dataclass(frozen=True)
class _Message:
    topic: str
    value: bytes
    headers: Headers


class Recorder:
    """Sends items to `visits` or `visits-dlq` and waits for Kafka's acknowledgement."""

    def __init__(self, settings: Settings, producer: Producer) -> None:
        self._visits = settings.topic(TOPIC_VISITS)
        self._dlq = settings.topic(TOPIC_VISITS_DLQ)
        self._producer = producer

    async def record(self, items: Sequence[bytes], origin: Origin) -> list[ItemResult]:
        now = datetime.now(UTC)
        results = [check_item(index, item, now) for index, item in enumerate(items)]
        await self._send_all([self._message(item, result, origin)
                              for item, result in zip(items, results, strict=True)])  # fmt: skip
        return results

    async def dead_letter(self, body: bytes, rejection: Rejection, origin: Origin) -> None:
        await self._send_all([self._message(body, ItemResult(0, rejection), origin)])

    def _message(self, item: bytes, result: ItemResult, origin: Origin) -> _Message:
        submitter: Headers = [(SUBMITTER_HEADER, origin.submitter.encode())]
        if result.rejection is None:
            return _Message(self._visits, item, submitter)
        headers = result.rejection.dlq_headers(origin.source(result.index))
        return _Message(self._dlq, item, headers + submitter)

    async def _send_all(self, messages: Sequence[_Message]) -> None:
        try:
            async with asyncio.timeout(PRODUCE_TIMEOUT_SECONDS):
                acks = [await self._producer.send(m.topic, value=m.value, key=key_of(m.value),
                                                  headers=m.headers) for m in messages]  # fmt: skip
                await asyncio.gather(*acks)
        except (KafkaError, TimeoutError) as exc:
            raise unrecorded(exc) from exc


# --- HTTP -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingest:
    submitters: Submitters
    recorder: Recorder
    max_body_bytes: int
    max_items: int
    body_timeout: float
    openapi: bytes  # the OpenAPI document for these limits, rendered once


INGEST = web.AppKey("ingest", Ingest)
CONNECTIONS = web.AppKey("connections", ConnectionGuard)
ORIGIN = web.RequestKey("origin", Origin)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _log_recorded(origin: Origin, results: Sequence[ItemResult]) -> None:
    # Names, counts and reasons only: never a token, never a payload.
    reasons = Counter(r.rejection.reason.value for r in results if r.rejection is not None)
    metrics.INGEST_ITEMS.labels(origin.submitter, "accepted").inc(len(results) - reasons.total())
    metrics.INGEST_ITEMS.labels(origin.submitter, "rejected").inc(reasons.total())
    log.info("ingest.recorded", submitter=origin.submitter, request_id=origin.request_id,
             accepted=len(results) - reasons.total(), rejected=reasons.total(),
             reasons=dict(reasons))  # fmt: skip


async def read_body(request: web.Request, ingest: Ingest) -> bytes:
    """The body, within the size limit and the body timeout (a Content-Length larger
    than what the client sends would otherwise wait for ever)."""
    chunks = request.content.iter_chunked(_READ_CHUNK)
    try:
        async with asyncio.timeout(ingest.body_timeout):
            return await read_capped(chunks, request.content_length, ingest.max_body_bytes)
    except TimeoutError:
        raise BodyTooSlow(f"body: not received within {ingest.body_timeout:g} s") from None


async def post_visits(request: web.Request) -> web.Response:
    ingest = request.app[INGEST]
    submitter = ingest.submitters.identify(request.headers.get(hdrs.AUTHORIZATION))
    origin = Origin(submitter, request[ORIGIN].request_id)
    request[ORIGIN] = origin
    check_media_type(request.content_type)
    body = await read_body(request, ingest)
    try:
        items = split_items(body, ingest.max_items)
    except BadBody as exc:
        await ingest.recorder.dead_letter(body, exc.rejection, origin)
        metrics.INGEST_ITEMS.labels(origin.submitter, "rejected").inc()
        raise
    results = await ingest.recorder.record(items, origin)
    _log_recorded(origin, results)
    return json_answer(response_body(origin.request_id, results))


async def health(_request: web.Request) -> web.Response:
    return json_answer(HealthAnswer())


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[INGEST].openapi, content_type="application/json")


async def prometheus_metrics(request: web.Request) -> web.Response:
    """The endpoint's metrics, in the format the scraper asks for (the text format, or
    OpenMetrics), as the client library's own server answers. For the deployment's
    Prometheus: a TLS proxy in front should forward the API only."""
    encode, content_type = choose_encoder(request.headers.get(hdrs.ACCEPT, ""))
    return web.Response(body=encode(metrics.INGEST), headers={hdrs.CONTENT_TYPE: content_type})


@web.middleware
async def measure_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requests to /v1/visits in the metrics, by the status they were answered with (a
    refusal is answered by `answer_errors`, inside this one) and their submitter."""
    if request.path != VISITS_PATH:
        return await handler(request)
    started = time.monotonic()
    status = "aborted"  # the client went away, or aiohttp raised past answer_errors
    try:
        response = await handler(request)
        status = str(response.status)
        return response
    except web.HTTPException as exc:
        status = str(exc.status)
        raise
    finally:
        origin = request.get(ORIGIN)
        submitter = origin.submitter if origin is not None else ""
        metrics.INGEST_REQUESTS.labels(status, submitter).inc()
        metrics.INGEST_REQUEST_SECONDS.labels(status).observe(time.monotonic() - started)


@web.middleware
async def track_connections(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request reaching the app has all its headers: its connection's header deadline
    ends (the body has its own, `read_body`)."""
    connections = request.app[CONNECTIONS]
    connections.request_started(request.transport)
    try:
        return await handler(request)
    finally:
        connections.request_finished(request.transport)


# aiohttp's own refusals that a client can cause, answered in the same JSON shape.
_HTTP_ERRORS = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}


@web.middleware
async def answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal as JSON: `error` (a stable code) and `detail`."""
    request[ORIGIN] = Origin("", uuid.uuid4().hex)
    try:
        return await handler(request)
    except IngestError as exc:
        return await _refused(request, exc)
    except web.HTTPException as exc:
        if exc.status not in _HTTP_ERRORS:
            raise
        return _refused_by_aiohttp(request[ORIGIN], exc)
    except ConnectionError:
        raise  # the client went away: nobody to answer, and no fault of ours
    except Exception as exc:  # a fault of ours: a JSON 500 and a log line without data
        return _fault(request[ORIGIN], exc)


async def _refused(request: web.Request, exc: IngestError) -> web.Response:
    origin = request[ORIGIN]
    log.warning("ingest.refused", status=exc.status, error=exc.code,
                submitter=origin.submitter or None, request_id=origin.request_id)  # fmt: skip
    answer = error_body(origin.request_id, exc.code, str(exc))
    response = json_answer(answer, exc.status, exc.headers)
    if exc.closes_connection:
        await _hang_up_after(request, response)
    return response


async def _hang_up_after(request: web.Request, response: web.Response) -> None:
    """Send the answer, then close the connection at once. aiohttp would otherwise keep
    reading the rest of the body for its lingering time (10 s), which helps a client
    still sending, not one that stopped."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.transport is not None:
        request.transport.close()


def _refused_by_aiohttp(origin: Origin, exc: web.HTTPException) -> web.Response:
    allow = {name: value for name, value in exc.headers.items() if name == hdrs.ALLOW}
    answer = error_body(origin.request_id, _HTTP_ERRORS[exc.status], exc.reason)
    return json_answer(answer, exc.status, allow)


def _fault(origin: Origin, exc: Exception) -> web.Response:
    # An exception's text (and a traceback's locals) can quote a header or a payload:
    # the log gets its kind and where it was raised, never its message.
    frames = traceback.extract_tb(exc.__traceback__)[-5:]
    where = [f"{frame.filename}:{frame.lineno} {frame.name}" for frame in frames]
    log.error("ingest.failed", request_id=origin.request_id, error=type(exc).__name__,
              submitter=origin.submitter or None, where=where)  # fmt: skip
    detail = "internal error; the logs have it under this request_id"
    return json_answer(error_body(origin.request_id, ErrorCode.INTERNAL_ERROR, detail), 500)


def require_submitters(path: Path) -> Submitters:
    """The submitters; an endpoint nobody may post to is a configuration mistake."""
    submitters = load_submitters(path)
    if not submitters.hashes:
        raise ConfigError(f"{path}: no submitters; add one with `vizita ingest token NAME`")
    return submitters


def _busy_body() -> bytes:
    answer = error_body(uuid.uuid4().hex, ErrorCode.TOO_MANY_CONNECTIONS,
                        "too many open connections; try again shortly")  # fmt: skip
    return answer.model_dump_json().encode()


def build_ingest_app(settings: Settings, producer: Producer) -> web.Application:
    """The endpoint; `producer` must be started (and stopped) by the caller."""
    submitters = require_submitters(settings.ingest_submitters_file)
    app = web.Application(middlewares=[measure_requests, track_connections, answer_errors])
    app[CONNECTIONS] = ConnectionGuard(
        max_connections=settings.ingest_max_connections,
        header_timeout=settings.ingest_header_timeout_seconds, busy_body=_busy_body,
    )  # fmt: skip
    app[INGEST] = Ingest(
        submitters=submitters, recorder=Recorder(settings, producer),
        max_body_bytes=settings.ingest_max_body_bytes, max_items=settings.ingest_max_items,
        body_timeout=settings.ingest_body_timeout_seconds,
        openapi=render(document_for(settings)).encode(),
    )  # fmt: skip
    app.router.add_post(VISITS_PATH, post_visits)
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_get(OPENAPI_PATH, openapi)
    app.router.add_get(METRICS_PATH, prometheus_metrics)
    return app


def handler_args(settings: Settings) -> dict[str, Any]:
    """aiohttp's own limits of each connection (its RequestHandler's options). Beware:
    aiohttp drops *all* of them, with a warning, if one is not an option it knows."""
    return {
        "keepalive_timeout": settings.ingest_keepalive_timeout_seconds,
        "max_line_size": settings.ingest_max_header_line_bytes,
        "max_field_size": settings.ingest_max_header_line_bytes,
        "max_headers": settings.ingest_max_headers,
        "logger": ServerLog(),
    }


@asynccontextmanager
async def serving(settings: Settings, producer: Producer) -> AsyncIterator[int]:
    """The endpoint listening on `ingest_host`:`ingest_port` (0: a free one), every
    connection through the app's ConnectionGuard; yields the port. On exit it stops
    listening, lets requests in flight finish, and closes every connection."""
    app = build_ingest_app(settings, producer)
    runner = web.AppRunner(app, access_log=None, **handler_args(settings))
    await runner.setup()
    assert runner.server is not None  # set up just now
    factory = app[CONNECTIONS].protocol_factory(runner.server)
    try:
        loop = asyncio.get_running_loop()
        listening = await loop.create_server(factory, settings.ingest_host, settings.ingest_port)
        try:
            yield listening.sockets[0].getsockname()[1]
        finally:
            listening.close()
    finally:
        await runner.cleanup()


def ingest_producer(settings: Settings, **overrides: Any) -> Any:
    """aiokafka's idempotent producer (acks=all): its own retries never write twice.
    Not started; call it inside the event loop that will use it."""
    if not settings.kafka_bootstrap:
        raise ConfigError("the ingest endpoint needs a Kafka bootstrap address")
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap, "enable_idempotence": True,
        "acks": "all", "linger_ms": 5,
        # A dead letter can carry a whole body (a one-item body over 64 KiB).
        "max_request_size": settings.ingest_max_body_bytes + _RECORD_HEADROOM,
        "request_timeout_ms": 15_000,
    }  # fmt: skip
    return AIOKafkaProducer(**{**options, **overrides})


async def serve(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM; requests in flight finish, then the producer flushes."""
    producer = ingest_producer(settings)
    try:
        await producer.start()
        async with serving(settings, producer) as port:
            log.info("ingest.serving", host=settings.ingest_host, port=port)
            await _until_signalled()
    finally:
        await producer.stop()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
