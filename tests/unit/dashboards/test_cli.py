from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vizita.app.cli import main


def test_build_writes_the_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["dashboards", "build", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "dashboards").glob("*.json"))) == 4
    assert (tmp_path / "alerting" / "vizita.yaml").is_file()


def test_push_without_a_token_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIZITA_GRAFANA_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["dashboards", "push", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "VIZITA_GRAFANA_TOKEN" in result.output
