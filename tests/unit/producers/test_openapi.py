"""The OpenAPI document of the ingest endpoint: generated from the contract's event
models and the answer models, committed as `config/openapi.json` (equal to a fresh
build), written by `vizita ingest openapi` and served at `GET /openapi.json`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from click.testing import CliRunner

from producers.errors import ErrorCode
from producers.ingest import METRICS_PATH, build_ingest_app, hash_token, new_token
from producers.openapi import (
    DEFAULT_OPENAPI_FILE,
    HEALTH_PATH,
    OPENAPI_PATH,
    VISITS_PATH,
    document_for,
    openapi_document,
    render,
)
from vizita.app.cli import main
from vizita.contract.events import EVENT_FIELDS
from vizita.contract.settings import Settings
from vizita.contract.validation import Reason


class NoProducer:
    async def send(
        self, topic: str, *, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Awaitable[None]:
        raise AssertionError("nothing is sent here")


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    path = tmp_path / "submitters.yaml"
    path.write_text(f"submitters:\n  kobo-prz: {hash_token(new_token())}\n")
    return Settings(ingest_submitters_file=path, **overrides)


def test_the_committed_document_is_a_fresh_build() -> None:
    committed = DEFAULT_OPENAPI_FILE.read_text(encoding="utf-8")
    assert committed == render(document_for(Settings())), "stale: run `vizita ingest openapi`"


def test_the_command_writes_the_document(tmp_path: Path) -> None:
    out = tmp_path / "api" / "openapi.json"
    result = CliRunner().invoke(main, ["ingest", "openapi", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    assert json.loads(out.read_text(encoding="utf-8")) == document_for(Settings())


def test_the_document_is_openapi_3_1_of_both_operations() -> None:
    document = openapi_document(max_items=7, max_body_bytes=2048)
    assert document["openapi"] == "3.1.0"
    assert {path: set(ops) for path, ops in document["paths"].items()} == {
        VISITS_PATH: {"post"}, HEALTH_PATH: {"get"}}  # fmt: skip
    post = document["paths"][VISITS_PATH]["post"]
    assert set(post["responses"]) == {"200", "400", "401", "408", "413", "415", "500", "503"}
    assert post["security"] == [{"bearer": []}]
    assert "2048 bytes" in post["requestBody"]["description"]
    schemas = document["components"]["schemas"]
    assert schemas["Batch"]["maxItems"] == 7
    # The event schemas are the contract's models, every SPEC §1 field required.
    assert schemas["UpsertEvent"]["required"] == list(EVENT_FIELDS)
    assert set(schemas["VoidEvent"]["required"]) == {
        "schema_version", "event_id", "visit_id", "revision", "op", "submitted_at"}  # fmt: skip
    assert schemas["UpsertEvent"]["properties"]["schema_version"]["const"] == 1


def test_the_document_lists_every_error_code_and_reason() -> None:
    schemas = openapi_document(max_items=7, max_body_bytes=2048)["components"]["schemas"]
    assert schemas["ErrorCode"]["enum"] == [code.value for code in ErrorCode]
    assert schemas["Reason"]["enum"] == [reason.value for reason in Reason]


def test_the_endpoint_serves_the_document_of_its_settings(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ingest_max_items=7)

    async def scenario() -> tuple[int, str, Any, set[tuple[str, str]]]:
        app = build_ingest_app(settings, NoProducer())
        routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
        async with (
            TestServer(app) as server,
            ClientSession() as client,
            client.get(server.make_url(OPENAPI_PATH)) as answer,
        ):
            return answer.status, answer.content_type, await answer.json(), routes

    status, content_type, served, routes = asyncio.run(scenario())
    assert (status, content_type) == (200, "application/json")
    assert served == document_for(settings)
    assert served["components"]["schemas"]["Batch"]["maxItems"] == 7
    # Every route the app has is documented (HEAD comes with GET; the document itself and
    # the Prometheus metrics, which are for the deployment's Prometheus, not for clients,
    # aside).
    documented = {(method.upper(), path) for path, ops in served["paths"].items() for method in ops}
    undocumented = {(method, path) for method in ("GET", "HEAD")
                    for path in (OPENAPI_PATH, METRICS_PATH)} | {("HEAD", HEALTH_PATH)}  # fmt: skip
    assert routes - undocumented == documented
