"""`push_dashboards` through grafana-client, against a local HTTP server that records
what it receives."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from dashboards.build import Built, build_all
from dashboards.config import BuildConfig
from dashboards.errors import GrafanaTokenMissing, PushError
from dashboards.push import push_dashboards
from vizita.contract.settings import Settings


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    status = 200

    def do_POST(self) -> None:  # the name http.server calls
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append({"path": self.path, "auth": self.headers["Authorization"],
                              "body": body})  # fmt: skip
        answer = json.dumps({"status": "success", "uid": body["dashboard"]["uid"]}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def grafana() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"received": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def built() -> Built:
    return build_all(BuildConfig.from_settings(Settings()))


def test_push_posts_every_dashboard_with_the_token(
    grafana: tuple[str, type[_Recorder]], built: Built
) -> None:
    url, handler = grafana
    pushed = push_dashboards(built, url, SecretStr("s3cret"), folder_uid="vizita")
    assert pushed == list(built.dashboards)
    assert [r["path"] for r in handler.received] == ["/api/dashboards/db"] * 4
    assert {r["auth"] for r in handler.received} == {"Bearer s3cret"}
    bodies = {r["body"]["dashboard"]["uid"]: r["body"] for r in handler.received}
    assert set(bodies) == set(built.dashboards)
    for uid, body in bodies.items():
        assert body["dashboard"] == built.dashboards[uid]
        assert (body["overwrite"], body["folderUid"]) == (True, "vizita")


def test_a_refusal_is_a_push_error(grafana: tuple[str, type[_Recorder]], built: Built) -> None:
    url, handler = grafana
    handler.status = 412  # what Grafana answers for a dashboard changed meanwhile
    with pytest.raises(PushError, match="refused dashboard vizita-overview"):
        push_dashboards(built, url, SecretStr("s3cret"))


def test_no_token_no_request(grafana: tuple[str, type[_Recorder]], built: Built) -> None:
    url, handler = grafana
    for token in (None, SecretStr("")):
        with pytest.raises(GrafanaTokenMissing, match="VIZITA_GRAFANA_TOKEN"):
            push_dashboards(built, url, token)
    assert handler.received == []
