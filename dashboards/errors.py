"""Errors of the dashboards package."""


class DashboardsError(Exception):
    """Base class of this package's errors."""


class MacroError(DashboardsError):
    """A query uses a macro or variable that `dashboards.macros` cannot expand."""


class GrafanaTokenMissing(DashboardsError):
    """`vizita dashboards push` needs VIZITA_GRAFANA_TOKEN in the environment."""


class PushError(DashboardsError):
    """Grafana refused a dashboard, or could not be reached."""
