"""A property-based test of the ingest endpoint's API (schemathesis): `vizita ingest
serve` runs as its own process on the real broker; requests are generated from the
OpenAPI document it serves (valid events and batches, and broken ones: wrong types,
missing fields, no or a wrong token, other media types). No answer may be a 5xx, and
every answer must match the document: a documented status, its media type, its
schema, its required headers.

Not checked: that schema-violating data is refused (`negative_data_rejection`). The
endpoint answers 200 to an invalid event on purpose: the item is dead-lettered with its
reason, and a form server would resend anything non-2xx for ever.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from producers.ingest import hash_token, new_token
from producers.openapi import DEFAULT_OPENAPI_FILE, OPENAPI_PATH
from vizita.app.broker import LocalBroker
from vizita.contract.settings import Settings
from vizita.contract.topics import TOPIC_VISITS, TOPIC_VISITS_DLQ
from vizita.kafka.admin import bootstrap_of, end_offsets, ensure_pipeline_topics

TOKEN = new_token()
STARTUP_SECONDS = 60
# Bounded so the run stays near a minute: CI has 15 minutes for everything.
EXAMPLES_PER_OPERATION = 60
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]  # fmt: skip


@dataclass(frozen=True)
class Endpoint:
    url: str
    settings: Settings
    log: Path


def _serve(settings: Settings, submitters: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ, "VIZITA_TOPIC_PREFIX": settings.topic_prefix,
        "VIZITA_INGEST_SUBMITTERS_FILE": str(submitters), "VIZITA_LOG_FORMAT": "json",
    }  # fmt: skip
    command = [sys.executable, "-m", "vizita", "ingest", "serve", "--host", "127.0.0.1",
               "--port", "0", "--bootstrap", settings.kafka_bootstrap or ""]  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603  # our own command line, built above


def _port_when_serving(process: subprocess.Popen[bytes], log: Path) -> int:
    """The port the endpoint says it listens on, from its `ingest.serving` log line."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if '"ingest.serving"' in line:
                return int(json.loads(line)["port"])
        assert process.poll() is None, f"ingest serve exited:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)
    raise AssertionError(f"ingest serve did not start:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def endpoint(kafka: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """One endpoint process for the module: the property test's examples share it."""
    tmp_path = tmp_path_factory.mktemp("ingest-api")
    prefix = f"api_{uuid.uuid4().hex[:10]}."
    settings = Settings(kafka_bootstrap=kafka.bootstrap, topic_prefix=prefix)
    ensure_pipeline_topics(settings)
    submitters = tmp_path / "submitters.yaml"
    submitters.write_text(f"submitters:\n  kobo-prz: {hash_token(TOKEN)}\n")
    log = tmp_path / "ingest.log"
    process = _serve(settings, submitters, log)
    try:
        port = _port_when_serving(process, log)
        yield Endpoint(f"http://127.0.0.1:{port}", settings, log)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    logged = log.read_text(encoding="utf-8", errors="replace")
    assert code == 0, logged[-3000:]
    assert TOKEN not in logged
    assert '"ingest.failed"' not in logged, logged[-3000:]


# Loaded from the committed document (a unit test keeps it a fresh build; the endpoint
# serves the same with default limits): schemathesis' fixture-based loader does not run
# under pytest 9 (it sets a node attribute pytest no longer has).
schema = schemathesis.openapi.from_path(DEFAULT_OPENAPI_FILE)
schema.config.update(headers={"Authorization": f"Bearer {TOKEN}"})
schema.config.generation.update(max_examples=EXAMPLES_PER_OPERATION)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_input_is_a_server_error_and_every_answer_matches_the_document(
    case: Case, endpoint: Endpoint
) -> None:
    # Sent with requests itself: schemathesis' own sender counts urllib3's connection
    # pools, and the urllib3 installed here (urllib3-future, which niquests brings in
    # for grafana-client) keeps them in a structure it cannot read.
    sent = case.as_transport_kwargs(base_url=endpoint.url)
    response = requests.request(**sent, timeout=30)
    case.validate_response(response, checks=CHECKS, transport_kwargs=sent)


def test_the_endpoint_serves_the_committed_document(endpoint: Endpoint) -> None:
    served = requests.get(endpoint.url + OPENAPI_PATH, timeout=30)
    assert served.status_code == 200
    assert served.json() == json.loads(DEFAULT_OPENAPI_FILE.read_text(encoding="utf-8"))


def test_the_served_endpoint_records_in_kafka(endpoint: Endpoint) -> None:
    # The process the property test runs against gets past the door: a valid and an
    # invalid event land in their topics (and, as after every test here, the log holds
    # no token).
    good = {
        "schema_version": 1, "event_id": "e-1", "visit_id": "v-1", "revision": 1,
        "op": "void", "submitted_at": "2026-03-02T10:00:00+01:00",
    }  # fmt: skip
    bad = {**good, "event_id": "e-2", "revision": "2"}
    bootstrap = bootstrap_of(endpoint.settings)
    topics = [endpoint.settings.topic(name) for name in (TOPIC_VISITS, TOPIC_VISITS_DLQ)]
    before = [sum(end_offsets(bootstrap, topic).values()) for topic in topics]
    answer = requests.post(
        endpoint.url + "/v1/visits", json=[good, bad], timeout=30,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert (answer.json()["accepted"], answer.json()["rejected"]) == (1, 1)
    after = [sum(end_offsets(bootstrap, topic).values()) for topic in topics]
    assert [n - m for n, m in zip(after, before, strict=True)] == [1, 1]
