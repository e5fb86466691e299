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
  before it is read), 415 not `application/json`: nothing recorded.
- 503: Kafka did not acknowledge every item; send the whole request again (an accepted
  event sent twice is a duplicate by its `event_id`, SPEC §1). 413 also when an item
  is over the broker's message size, 500 when Kafka refused an item for another reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
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
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from producers.errors import (
    BadBatch,
    BadBody,
    BodyTooLarge,
    IngestError,
    KafkaRefused,
    KafkaUnavailable,
    Unauthorised,
    UnsupportedMediaType,
)
from producers.publish import key_of
from vizita.contract.errors import ConfigError
from vizita.contract.settings import Settings
from vizita.contract.topics import SUBMITTER_HEADER, TOPIC_VISITS, TOPIC_VISITS_DLQ
from vizita.contract.validation import Reason, Rejection, validate_payload

log = structlog.get_logger(__name__)

VISITS_PATH = "/v1/visits"
HEALTH_PATH = "/healthz"
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
_DECODER = json.JSONDecoder()
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
        raise BadBatch("empty_batch", "body: an empty array")
    if len(value) > max_items:
        raise BadBatch("too_many_items", f"body: {len(value)} items > {max_items}")
    return _element_bytes(text, start)


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemResult:
    index: int
    rejection: Rejection | None  # None: accepted
    event_id: str | None = None
    visit_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        if self.rejection is None:
            return {"index": self.index, "status": "accepted",
                    "event_id": self.event_id, "visit_id": self.visit_id}  # fmt: skip
        rejection = self.rejection
        return {"index": self.index, "status": "rejected", "reason": rejection.reason.value,
                "field": rejection.field, "detail": rejection.detail}  # fmt: skip


def check_item(index: int, item: bytes) -> ItemResult:
    result = validate_payload(item)
    if isinstance(result, Rejection):
        return ItemResult(index, result)
    return ItemResult(index, None, result.event.event_id, result.event.visit_id)


def response_body(request_id: str, results: Sequence[ItemResult]) -> dict[str, Any]:
    accepted = sum(result.rejection is None for result in results)
    return {"request_id": request_id, "accepted": accepted,
            "rejected": len(results) - accepted,
            "results": [result.as_json() for result in results]}  # fmt: skip


def error_body(request_id: str, error: IngestError) -> dict[str, Any]:
    return {"request_id": request_id, "error": error.code, "detail": str(error)}


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
        results = [check_item(index, item) for index, item in enumerate(items)]
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


INGEST = web.AppKey("ingest", Ingest)
ORIGIN = web.RequestKey("origin", Origin)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _log_recorded(origin: Origin, results: Sequence[ItemResult]) -> None:
    # Names, counts and reasons only: never a token, never a payload.
    reasons = Counter(r.rejection.reason.value for r in results if r.rejection is not None)
    log.info("ingest.recorded", submitter=origin.submitter, request_id=origin.request_id,
             accepted=len(results) - reasons.total(), rejected=reasons.total(),
             reasons=dict(reasons))  # fmt: skip


async def post_visits(request: web.Request) -> web.Response:
    ingest = request.app[INGEST]
    submitter = ingest.submitters.identify(request.headers.get(hdrs.AUTHORIZATION))
    origin = Origin(submitter, request[ORIGIN].request_id)
    request[ORIGIN] = origin
    check_media_type(request.content_type)
    chunks = request.content.iter_chunked(_READ_CHUNK)
    body = await read_capped(chunks, request.content_length, ingest.max_body_bytes)
    try:
        items = split_items(body, ingest.max_items)
    except BadBody as exc:
        await ingest.recorder.dead_letter(body, exc.rejection, origin)
        raise
    results = await ingest.recorder.record(items, origin)
    _log_recorded(origin, results)
    return web.json_response(response_body(origin.request_id, results))


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@web.middleware
async def answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal as JSON: `error` (a stable code) and `detail`."""
    request[ORIGIN] = Origin("", uuid.uuid4().hex)
    try:
        return await handler(request)
    except IngestError as exc:
        origin = request[ORIGIN]
        log.warning("ingest.refused", status=exc.status, error=exc.code,
                    submitter=origin.submitter or None, request_id=origin.request_id)  # fmt: skip
        return web.json_response(
            error_body(origin.request_id, exc), status=exc.status, headers=exc.headers
        )


def require_submitters(path: Path) -> Submitters:
    """The submitters; an endpoint nobody may post to is a configuration mistake."""
    submitters = load_submitters(path)
    if not submitters.hashes:
        raise ConfigError(f"{path}: no submitters; add one with `vizita ingest token NAME`")
    return submitters


def build_ingest_app(settings: Settings, producer: Producer) -> web.Application:
    """The endpoint; `producer` must be started (and stopped) by the caller."""
    submitters = require_submitters(settings.ingest_submitters_file)
    app = web.Application(middlewares=[answer_errors])
    recorder = Recorder(settings, producer)
    app[INGEST] = Ingest(submitters, recorder, settings.ingest_max_body_bytes,
                         settings.ingest_max_items)  # fmt: skip
    app.router.add_post(VISITS_PATH, post_visits)
    app.router.add_get(HEALTH_PATH, health)
    return app


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
        runner = web.AppRunner(build_ingest_app(settings, producer), access_log=None)
        await producer.start()
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.ingest_host, settings.ingest_port).start()
            log.info("ingest.serving", host=settings.ingest_host, port=settings.ingest_port)
            await _until_signalled()
        finally:
            await runner.cleanup()
    finally:
        await producer.stop()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
