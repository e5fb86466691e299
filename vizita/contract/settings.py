"""The one settings object: built once at the entry point, then passed down.

Precedence, highest first: command-line options (passed as keyword arguments), the
environment (`VIZITA_*`), `config/vizita.yaml`, the defaults below.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from vizita.contract.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "config"
DEFAULT_DATA_DIR = Path.cwd() / ".vizita"
#: settings that are secrets: from the environment only, never from config/vizita.yaml
ENVIRONMENT_ONLY = frozenset({"grafana_token", "smtp_password"})
# A bare address (local@domain): no display name, and nothing a header could be split
# on (spaces, commas, angle brackets, line breaks).
_ADDRESS = re.compile(r"[^@\s,<>\"]+@[^@\s,<>\"]+")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIZITA_",
        yaml_file=CONFIG_DIR / "vizita.yaml",
        frozen=True,
        extra="forbid",
    )

    # Kafka. No bootstrap means: start a local broker (demo, replay, tests).
    kafka_bootstrap: str | None = None
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")
    app_id: str = Field(default="vizita", pattern=r"^[A-Za-z0-9_.-]+$")
    # Of every topic the project creates: stage 1 scales with the first, stage 2 spreads
    # its 39 scopes over them. Replication 1 fits one broker; 3 is usual on a cluster.
    partitions: int = Field(default=4, ge=1, le=256)
    replication_factor: int = Field(default=1, ge=1, le=16)
    # How long the group waits for a worker that stopped answering (a crash) before its
    # partitions go to the others: short, so a restarted worker starts soon; not so short
    # that a long computation (which pauses heartbeats) loses the partitions.
    kafka_session_timeout_seconds: float = Field(default=15.0, ge=6, le=300)
    # Stages take events in batches of at most this many, waiting at most this long.
    batch_events: int = Field(default=1000, ge=1, le=100_000)
    batch_seconds: float = Field(default=0.05, gt=0, le=10)
    # A stage that has not moved past events waiting on a partition it holds for this
    # long has stalled: the worker stops loudly, for its supervisor to restart it. Long
    # enough for a stage 2 batch that recomputes a year after a take-over.
    stall_seconds: float = Field(default=120.0, ge=1)
    # Store: chdb:///abs/path (embedded) or clickhouse://user:pw@host:9000/vizita.
    store_url: SecretStr = SecretStr(f"chdb://{DEFAULT_DATA_DIR / 'store'}")
    database: str = Field(default="vizita", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # A ClickHouse cluster (its name in the servers' remote_servers) the database spans:
    # tables replicated on every shard, read and written through Distributed tables of
    # the SPEC's names (README "Past one machine"). None: one server or the embedded engine.
    store_cluster: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # Where the worker keeps local state and a local broker its logs and jars.
    data_dir: Path = DEFAULT_DATA_DIR
    kafka_cache_dir: Path = Path.home() / ".cache" / "vizita" / "kafka"
    # Sink batching: a batch is written when it is this big or this old.
    sink_batch_rows: int = Field(default=5000, ge=1)
    sink_batch_seconds: float = Field(default=0.5, gt=0)
    store_retry_max_seconds: float = Field(default=30.0, gt=0)
    # Dead letters and store rejects may hold what a form added (a name): kept this long.
    dead_letter_retention_days: int = Field(default=90, ge=1, le=3650)
    # The clock day (SPEC §2): "live" = today's local date, advancing at midnight;
    # "event" = the latest local day of any valid upsert (what `vizita replay` uses).
    clock: Literal["live", "event"] = "live"
    tick_seconds: float = Field(default=0.5, gt=0)
    targets_file: Path = CONFIG_DIR / "targets.yaml"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    # The ingest endpoint (`vizita ingest`): POST /v1/visits. Submitters and the
    # sha256 of their bearer tokens are in `ingest_submitters_file`, never the tokens.
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(default=8080, ge=0, le=65535)
    ingest_submitters_file: Path = CONFIG_DIR / "submitters.yaml"
    # Under Kafka's default 1 MiB message limit, with room for a dead letter's headers.
    ingest_max_body_bytes: int = Field(default=1_000_000, ge=1024)
    ingest_max_items: int = Field(default=500, ge=1)
    # Connections (README "The ingest endpoint"): a client has this long to send a
    # request's line and headers, then this long for its body; an idle keep-alive
    # connection is closed after this long (longer than a proxy's usual 60 s, so a
    # proxy never reuses a connection the endpoint is closing).
    ingest_header_timeout_seconds: float = Field(default=10.0, gt=0)
    ingest_body_timeout_seconds: float = Field(default=30.0, gt=0)
    ingest_keepalive_timeout_seconds: float = Field(default=75.0, gt=0)
    # At most this many open connections (each may hold a body of up to
    # ingest_max_body_bytes in memory: 100 MB with the defaults); more are answered 503.
    ingest_max_connections: int = Field(default=100, ge=1)
    # The request line and each header line, and how many header lines (aiohttp's
    # max_line_size / max_field_size and max_headers): a bearer token is 43 characters.
    ingest_max_header_line_bytes: int = Field(default=8190, ge=256)
    ingest_max_headers: int = Field(default=64, ge=8)
    # Prometheus metrics of `vizita worker` (README "Metrics"): served at /metrics on
    # this address and port; None: not served (two workers on one host would fight for
    # a fixed port); 0: a free port, logged (`metrics.serving`). The ingest endpoint
    # serves its own at /metrics on ingest_port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # Grafana (`vizita dashboards push`); the token comes from the environment only.
    grafana_url: str = "http://localhost:3000"
    grafana_token: SecretStr | None = None
    grafana_datasource_uid: str = Field(default="vizita-clickhouse", pattern=r"^[A-Za-z0-9_-]+$")
    # The Prometheus datasource the pipeline-metrics dashboard and its alert rules use.
    grafana_prometheus_uid: str = Field(default="vizita-prometheus", pattern=r"^[A-Za-z0-9_-]+$")
    # `vizita demo` writes its HTML report here when it stops.
    report_path: Path = DEFAULT_DATA_DIR / "report.html"
    # `vizita report --send`: the mail server (STARTTLS on the submission port unless
    # smtp_starttls is false, which only a relay on the same host should need), its login
    # (the password from the environment only), the sender and the recipients (in the
    # environment, comma-separated).
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str | None = None
    smtp_recipients: Annotated[tuple[str, ...], NoDecode] = ()
    # Certificates to trust besides the system's (a relay with a private CA); none: the
    # system's only. The server's certificate and name are always checked.
    smtp_ca_file: Path | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @field_validator("smtp_recipients", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("smtp_recipients")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            _check_address(address)
        return value

    @field_validator("smtp_sender")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        return None if value is None else _check_address(value)

    def topic(self, name: str) -> str:
        """The broker's name for a contract topic (prefixed in tests)."""
        return f"{self.topic_prefix}{name}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlWithoutSecrets(settings_cls))


def env_name(setting: str) -> str:
    """The environment variable that sets `setting` (a field of Settings): spelled here
    only, from the settings' own prefix, so a help text or a message cannot drift."""
    if setting not in Settings.model_fields:
        raise KeyError(f"no setting named {setting!r}")
    return f"{Settings.model_config.get('env_prefix', '')}{setting}".upper()


def _check_address(address: str) -> str:
    if not _ADDRESS.fullmatch(address):
        raise ValueError("an e-mail address is local@domain, with no name or spaces")
    return address


class _YamlWithoutSecrets(YamlConfigSettingsSource):
    """config/vizita.yaml, refusing the secrets: a password in a file in the repository
    is a password in its history."""

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        found = sorted(ENVIRONMENT_ONLY & set(values))
        if found:
            names = ", ".join(env_name(name) for name in found)
            raise ConfigError(f"config/vizita.yaml sets secrets; use the environment: {names}")
        return values
