"""The OpenAPI 3.1 document of the ingest endpoint, generated from the contract's event
models and the endpoint's answer models (`producers.answers`). `vizita ingest openapi`
writes it to `config/openapi.json`; the endpoint serves it at `GET /openapi.json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from producers.answers import ErrorAnswer, HealthAnswer, VisitsAnswer
from vizita.contract.events import UpsertEvent, VoidEvent
from vizita.contract.settings import CONFIG_DIR, Settings

VISITS_PATH: Final = "/v1/visits"
HEALTH_PATH: Final = "/healthz"
OPENAPI_PATH: Final = "/openapi.json"
DEFAULT_OPENAPI_FILE: Final = CONFIG_DIR / "openapi.json"
_REF = "#/components/schemas/{model}"
_MODELS: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
    (UpsertEvent, "validation"), (VoidEvent, "validation"),
    (VisitsAnswer, "serialization"), (ErrorAnswer, "serialization"),
    (HealthAnswer, "serialization"),
)  # fmt: skip

_VISITS_DESCRIPTION = """\
One event (an object) or a batch (an array). Every item is checked against SPEC §1 on \
its original bytes: a valid one goes to `visits`, an invalid one to `visits-dlq` with its \
reason. An item that does not match the event schemas is therefore not refused: the \
answer is still 200, with `status: rejected` and the reason for that item. The answer \
comes only after Kafka acknowledged every item; on 503 send the whole request again \
(an `event_id` sent twice is a duplicate and ignored)."""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _schemas(max_items: int) -> dict[str, Any]:
    _, generated = models_json_schema(_MODELS, ref_template=_REF)
    schemas: dict[str, Any] = generated["$defs"]
    schemas["Event"] = {
        "oneOf": [_ref("UpsertEvent"), _ref("VoidEvent")],
        "discriminator": {"propertyName": "op", "mapping": {
            "upsert": _REF.format(model="UpsertEvent"), "void": _REF.format(model="VoidEvent")}},
    }  # fmt: skip
    schemas["Batch"] = {"type": "array", "items": _ref("Event"), "minItems": 1,
                        "maxItems": max_items}  # fmt: skip
    return schemas


def _json(schema: str, description: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }
    if headers:
        answer["headers"] = {name: {"description": text, "required": True,
                                    "schema": {"type": "string"}}
                             for name, text in headers.items()}  # fmt: skip
    return answer


_CHALLENGE = 'Bearer realm="vizita", with error="invalid_token" when a token was given'
_BUSY = "too many open connections (`too_many_connections`); try again shortly"
_RETRY_AFTER = "seconds to wait before sending again"


def _post_visits(max_body_bytes: int) -> dict[str, Any]:
    return {
        "summary": "Submit one visit event or a batch of them",
        "description": _VISITS_DESCRIPTION,
        "operationId": "postVisits",
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "description": (
            f"at most {max_body_bytes} bytes; `application/json` (or another `+json` type)"),
            "content": {"application/json": {"schema": {
                "oneOf": [_ref("Event"), _ref("Batch")]}}}},
        "responses": {
            "200": _json("VisitsAnswer", "every item recorded: accepted or dead-lettered"),
            "400": _json("ErrorAnswer", "the body is no JSON or neither an object nor an "
                         "array (dead-lettered), or an empty or too long batch"),
            "401": _json("ErrorAnswer", "no bearer token, or an unknown one",
                         **{"WWW-Authenticate": _CHALLENGE}),
            "408": _json("ErrorAnswer", "the body did not arrive in time; connection closed"),
            "413": _json("ErrorAnswer", "the body (or an item) is too large"),
            "415": _json("ErrorAnswer", "the Content-Type is not JSON"),
            "500": _json("ErrorAnswer", "Kafka refused an item for good, or a fault"),
            "503": _json("ErrorAnswer", "Kafka did not acknowledge in time (send the whole "
                         f"request again), or {_BUSY}", **{"Retry-After": _RETRY_AFTER}),
        },
    }  # fmt: skip


def _get_health() -> dict[str, Any]:
    return {
        "summary": "Liveness",
        "operationId": "getHealth",
        "responses": {
            "200": _json("HealthAnswer", "the endpoint is serving"),
            "503": _json("ErrorAnswer", _BUSY, **{"Retry-After": _RETRY_AFTER}),
        },
    }


def openapi_document(*, max_items: int, max_body_bytes: int) -> dict[str, Any]:
    """The document for an endpoint with these limits."""
    info = {
        "title": "Vizita ingest",
        "version": "1",
        "description": "Home visits from form servers and phone back ends (SPEC §1).",
    }
    return {
        "openapi": "3.1.0",
        "info": info,
        "paths": {
            VISITS_PATH: {"post": _post_visits(max_body_bytes)},
            HEALTH_PATH: {"get": _get_health()},
        },
        "components": {
            "schemas": _schemas(max_items),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def document_for(settings: Settings) -> dict[str, Any]:
    """The document of an endpoint run with these settings (the committed file: the
    defaults)."""
    return openapi_document(
        max_items=settings.ingest_max_items, max_body_bytes=settings.ingest_max_body_bytes
    )


def render(document: dict[str, Any]) -> str:
    """The document as committed: stable key order, one trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_openapi(document: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(document), encoding="utf-8")
    return path
