"""What the ingest endpoint answers, as models: the OpenAPI document is generated from
them, and the endpoint builds every answer with them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from producers.errors import ErrorCode
from vizita.contract.events import Id
from vizita.contract.validation import Reason

RequestId = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{32}$",
        description="this request's id, also in the logs and in each dead letter's source",
    ),
]
Index = Annotated[int, Field(ge=0, description="the item's place in the batch; 0 for one event")]

# Every field of an answer is always present: required in the document too.
_ANSWER = ConfigDict(frozen=True, extra="forbid", json_schema_serialization_defaults_required=True)


class AcceptedItem(BaseModel):
    """A valid event, now in `visits`."""

    model_config = _ANSWER

    index: Index
    status: Literal["accepted"] = "accepted"
    event_id: Id
    visit_id: Id


class RejectedItem(BaseModel):
    """An invalid item, now in `visits-dlq` with its original bytes: sending it again
    cannot fix it."""

    model_config = _ANSWER

    index: Index
    status: Literal["rejected"] = "rejected"
    reason: Reason
    field: str = Field(description='dotted path of the offending field; "" for the whole item')
    detail: str


ItemAnswer = Annotated[AcceptedItem | RejectedItem, Field(discriminator="status")]


class VisitsAnswer(BaseModel):
    """200: every item is recorded, accepted or dead-lettered."""

    model_config = _ANSWER

    request_id: RequestId
    accepted: int = Field(ge=0)
    rejected: int = Field(ge=0)
    results: list[ItemAnswer] = Field(min_length=1, description="one per item, in order")


class ErrorAnswer(BaseModel):
    """A refusal: nothing of the request is recorded, except a body that is no JSON or
    no object/array (`not_json`, `not_object`), which is dead-lettered."""

    model_config = _ANSWER

    request_id: RequestId
    error: ErrorCode
    detail: str


class HealthAnswer(BaseModel):
    """The endpoint is up (it does not ask Kafka)."""

    model_config = _ANSWER

    status: Literal["ok"] = "ok"
