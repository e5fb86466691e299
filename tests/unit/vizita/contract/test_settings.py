"""One frozen Settings: options over environment over config/vizita.yaml over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from vizita.contract.errors import ConfigError
from vizita.contract.settings import Settings


def test_yaml_supplies_values() -> None:
    assert Settings().app_id == "vizita"  # config/vizita.yaml


def test_environment_beats_yaml_and_options_beat_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIZITA_PARTITIONS", "2")
    monkeypatch.setenv("VIZITA_KAFKA_BOOTSTRAP", "127.0.0.1:9999")
    monkeypatch.setenv("VIZITA_STORE_URL", "clickhouse://u:secret@db:9000/vizita")
    settings = Settings()
    assert (settings.partitions, settings.kafka_bootstrap) == (2, "127.0.0.1:9999")
    assert Settings(partitions=8).partitions == 8


def test_secrets_do_not_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIZITA_STORE_URL", "clickhouse://u:secret@db:9000/vizita")
    settings = Settings()
    assert "secret" not in repr(settings)
    assert "secret" in settings.store_url.get_secret_value()


def test_settings_are_frozen_and_strict() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.partitions = 3  # type: ignore[misc]  # the point: frozen
    with pytest.raises(ValidationError):
        Settings(partitions=0)
    with pytest.raises(ValidationError):
        Settings(no_such_setting=1)  # type: ignore[call-arg]  # the point: unknown keys fail


def test_topics_take_the_prefix() -> None:
    assert Settings(topic_prefix="t1.").topic("visits") == "t1.visits"


def test_a_store_cluster_is_one_identifier(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().store_cluster is None
    monkeypatch.setenv("VIZITA_STORE_CLUSTER", "vizita")
    assert Settings().store_cluster == "vizita"
    for refused in ("my-cluster", "vizita ON CLUSTER x", ""):
        with pytest.raises(ValidationError):
            Settings(store_cluster=refused)


def test_mail_recipients_are_comma_separated_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIZITA_SMTP_RECIPIENTS", "ana@example.org, ben@example.org,")
    monkeypatch.setenv("VIZITA_SMTP_PASSWORD", "hunter2-hunter2")
    settings = Settings()
    assert settings.smtp_recipients == ("ana@example.org", "ben@example.org")
    assert "hunter2" not in repr(settings)
    assert (settings.smtp_port, settings.smtp_starttls) == (587, True)


@pytest.mark.parametrize(
    "address", ["ana", "Ana <ana@example.org>", "ana@example.org\nBcc: x@y.z", "a b@c.d"]
)
def test_a_mail_address_is_a_bare_address(address: str) -> None:
    with pytest.raises(ValidationError, match="local@domain"):
        Settings(smtp_sender=address)
    with pytest.raises(ValidationError, match="local@domain"):
        Settings(smtp_recipients=(address,))


def test_secrets_are_refused_in_the_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "vizita.yaml"
    path.write_text("smtp_host: mail.example.org\nsmtp_password: in-a-file\n", encoding="utf-8")

    class FromFile(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": path})

    with pytest.raises(ConfigError, match="VIZITA_SMTP_PASSWORD"):
        FromFile()
    path.write_text("smtp_host: mail.example.org\n", encoding="utf-8")
    assert FromFile().smtp_host == "mail.example.org"
