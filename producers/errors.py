"""Errors of the producers."""

from __future__ import annotations

import enum

from vizita.contract.errors import VizitaError
from vizita.contract.validation import Reason, Rejection


class ProducerError(VizitaError):
    """Base class of this package's errors."""


class PublishError(ProducerError):
    """Kafka did not acknowledge a payload after the producer's own retries."""


class ErrorCode(enum.StrEnum):
    """The `error` of a refusal by the ingest endpoint. The values are stable: form
    servers and relays branch on them (the OpenAPI document lists them)."""

    BAD_REQUEST = "bad_request"
    UNAUTHORISED = "unauthorised"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    TOO_LARGE = "too_large"
    NOT_JSON = Reason.NOT_JSON.value
    NOT_OBJECT = Reason.NOT_OBJECT.value
    EMPTY_BATCH = "empty_batch"
    TOO_MANY_ITEMS = "too_many_items"
    REQUEST_TIMEOUT = "request_timeout"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    KAFKA_UNAVAILABLE = "kafka_unavailable"
    KAFKA_REFUSED = "kafka_refused"
    INTERNAL_ERROR = "internal_error"


class IngestError(ProducerError):
    """A request `POST /v1/visits` refuses. `status` and `code` are its HTTP answer;
    the message is the answer's `detail` (never a token or payload content)."""

    status = 400
    code = ErrorCode.BAD_REQUEST
    headers: dict[str, str] | None = None
    # The rest of the request cannot be trusted to arrive: answer, then hang up.
    closes_connection = False


class Unauthorised(IngestError):
    status = 401
    code = ErrorCode.UNAUTHORISED

    def __init__(self, detail: str, *, invalid_token: bool) -> None:
        super().__init__(detail)
        # RFC 6750 §3: say the scheme; name the error only when a token was given.
        error = ', error="invalid_token"' if invalid_token else ""
        self.headers = {"WWW-Authenticate": f'Bearer realm="vizita"{error}'}


class UnsupportedMediaType(IngestError):
    status = 415
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class BodyTooLarge(IngestError):
    status = 413
    code = ErrorCode.TOO_LARGE


class BodyTooSlow(IngestError):
    """The body did not arrive in time (a Content-Length larger than what is sent, a
    stalled upload): nothing is recorded, and the connection is closed."""

    status = 408
    code = ErrorCode.REQUEST_TIMEOUT
    closes_connection = True


class BadBatch(IngestError):
    """An empty batch or one with too many items: the submitter must split or fix it."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class BadBody(IngestError):
    """The body is no JSON, or JSON but neither an object nor an array: dead-lettered
    like the stream would, with the reason validation gives it."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.detail)
        self.code = ErrorCode(rejection.reason.value)
        self.rejection = rejection


class KafkaUnavailable(IngestError):
    """Kafka did not acknowledge every item: the whole request may be sent again
    (an event repeated is a duplicate by its event_id, SPEC §1)."""

    status = 503
    code = ErrorCode.KAFKA_UNAVAILABLE
    headers = {"Retry-After": "5"}  # noqa: RUF012  # read-only class default


class KafkaRefused(IngestError):
    """Kafka refused an item for good (e.g. a record over the broker's size limit):
    sending the same request again would fail again."""

    status = 500
    code = ErrorCode.KAFKA_REFUSED
