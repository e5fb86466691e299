"""Errors of the producers."""

from __future__ import annotations

from vizita.contract.errors import VizitaError
from vizita.contract.validation import Rejection


class ProducerError(VizitaError):
    """Base class of this package's errors."""


class PublishError(ProducerError):
    """Kafka did not acknowledge a payload after the producer's own retries."""


class IngestError(ProducerError):
    """A request `POST /v1/visits` refuses. `status` and `code` are its HTTP answer;
    the message is the answer's `detail` (never a token or payload content)."""

    status = 400
    code = "bad_request"
    headers: dict[str, str] | None = None


class Unauthorised(IngestError):
    status = 401
    code = "unauthorised"

    def __init__(self, detail: str, *, invalid_token: bool) -> None:
        super().__init__(detail)
        # RFC 6750 §3: say the scheme; name the error only when a token was given.
        error = ', error="invalid_token"' if invalid_token else ""
        self.headers = {"WWW-Authenticate": f'Bearer realm="vizita"{error}'}


class UnsupportedMediaType(IngestError):
    status = 415
    code = "unsupported_media_type"


class BodyTooLarge(IngestError):
    status = 413
    code = "too_large"


class BadBatch(IngestError):
    """An empty batch or one with too many items: the submitter must split or fix it."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class BadBody(IngestError):
    """The body is no JSON, or JSON but neither an object nor an array: dead-lettered
    like the stream would, with the reason validation gives it."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.detail)
        self.code = rejection.reason.value
        self.rejection = rejection


class KafkaUnavailable(IngestError):
    """Kafka did not acknowledge every item: the whole request may be sent again
    (an event repeated is a duplicate by its event_id, SPEC §1)."""

    status = 503
    code = "kafka_unavailable"
    headers = {"Retry-After": "5"}  # noqa: RUF012  # read-only class default


class KafkaRefused(IngestError):
    """Kafka refused an item for good (e.g. a record over the broker's size limit):
    sending the same request again would fail again."""

    status = 500
    code = "kafka_refused"
