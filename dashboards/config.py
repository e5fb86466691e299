"""What the dashboards and alert rules are built from."""

from __future__ import annotations

from dataclasses import dataclass

from vizita.contract.days import LOCAL_TZ
from vizita.contract.settings import Settings
from vizita.contract.targets import Targets, load_targets

OVERVIEW_UID = "vizita-overview"
MUNICIPALITY_UID = "vizita-municipality"
PIPELINE_UID = "vizita-pipeline"
TAGS = ["vizita"]
TIMEZONE = LOCAL_TZ.key  # programme days are Kosovo's (SPEC §2)


@dataclass(frozen=True)
class BuildConfig:
    database: str  # the ClickHouse database the queries name
    datasource_uid: str  # the Grafana ClickHouse datasource's uid
    targets: Targets  # config/targets.yaml

    @classmethod
    def from_settings(cls, settings: Settings) -> BuildConfig:
        return cls(settings.database, settings.grafana_datasource_uid,
                   load_targets(settings.targets_file))  # fmt: skip
