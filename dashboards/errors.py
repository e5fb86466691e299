"""Errors of the dashboards package."""

from vizita.contract.errors import VizitaError


class DashboardsError(VizitaError):
    """Base class of this package's errors."""


class GrafanaTokenMissing(DashboardsError):
    """`vizita dashboards push` needs VIZITA_GRAFANA_TOKEN in the environment."""


class PushError(DashboardsError):
    """Grafana refused a dashboard, or could not be reached."""
