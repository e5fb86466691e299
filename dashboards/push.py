"""`vizita dashboards push`: send the dashboards to a Grafana over its HTTP API
(POST /api/dashboards/db, through grafana-client), overwriting earlier versions.

A dashboard Grafana already provisions from files cannot be overwritten this way
(Grafana refuses to save a provisioned dashboard): push is for a Grafana that does not
mount config/grafana/dashboards.
"""

from __future__ import annotations

from typing import Any

import structlog
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaException, TokenAuth
from pydantic import SecretStr

from dashboards.build import Built
from dashboards.errors import GrafanaTokenMissing, PushError

log = structlog.get_logger(__name__)

MESSAGE = "vizita dashboards push"


def payload(document: dict[str, Any], folder_uid: str | None) -> dict[str, Any]:
    """The body of POST /api/dashboards/db for one dashboard."""
    body: dict[str, Any] = {"dashboard": document, "overwrite": True, "message": MESSAGE}
    if folder_uid:
        body["folderUid"] = folder_uid
    return body


def push_dashboards(
    built: Built,
    url: str,
    token: SecretStr | None,
    folder_uid: str | None = None,
    timeout: float = 10.0,
) -> list[str]:
    """Push every dashboard; answer their uids. The token is never logged."""
    if token is None or not token.get_secret_value():
        raise GrafanaTokenMissing(
            "set VIZITA_GRAFANA_TOKEN to a Grafana service account token (Editor role)"
        )
    credential = TokenAuth(token.get_secret_value())  # type: ignore[no-untyped-call]  # grafana-client leaves __init__ unannotated
    api = GrafanaApi.from_url(url, credential=credential, timeout=timeout)
    for uid, document in built.dashboards.items():
        try:
            api.dashboard.update_dashboard(payload(document, folder_uid))
        except GrafanaException as exc:
            raise PushError(f"Grafana at {url} refused dashboard {uid}: {exc}") from exc
        log.info("dashboards.pushed", uid=uid, url=url)
    return list(built.dashboards)
