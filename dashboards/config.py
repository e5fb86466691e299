"""What the dashboards and alert rules are built from."""

from __future__ import annotations

from dataclasses import dataclass

from vizita.contract.days import LOCAL_TZ
from vizita.contract.settings import Settings
from vizita.contract.targets import Targets, load_targets

OVERVIEW_UID = "vizita-overview"
MUNICIPALITY_UID = "vizita-municipality"
PIPELINE_UID = "vizita-pipeline"
METRICS_UID = "vizita-metrics"
TAGS = ["vizita"]
TIMEZONE = LOCAL_TZ.key  # programme days are Kosovo's (SPEC §2)


@dataclass(frozen=True)
class BuildConfig:
    database: str  # the ClickHouse database the queries name
    datasource_uid: str  # the Grafana ClickHouse datasource's uid
    targets: Targets  # config/targets.yaml
    # The Grafana Prometheus datasource's uid (the pipeline-metrics board and its rules).
    prometheus_uid: str = Settings.model_fields["grafana_prometheus_uid"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> BuildConfig:
        targets = load_targets(settings.targets_file)
        return cls(settings.database, settings.grafana_datasource_uid, targets,
                   settings.grafana_prometheus_uid)  # fmt: skip
