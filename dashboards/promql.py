"""The PromQL of the pipeline-metrics dashboard and its alert rules, on the metrics of
`vizita.contract.metrics` (named from there, so a renamed metric changes the queries).

`$__rate_interval` is Grafana's: at least four scrape intervals, so a rate always has
two samples to work with. Alert rules run at one instant, so they name their windows.
"""

from __future__ import annotations

from prometheus_client.metrics import MetricWrapperBase

from vizita.contract import metrics

RATE = "$__rate_interval"
#: the jobs of config/prometheus.yml
JOBS = 'job=~"vizita-.+"'
STALLED_WINDOW = "5m"  # rows stored in this window, or none (the sink writes every 0.5 s)
RISING_MINUTES = 30  # dead letters of the last half hour …
RISING_WINDOW = f"{RISING_MINUTES}m"
RISING_BASELINE_HOURS = 24  # … against the half hours of the day before it
RISING_FACTOR = 3  # more than three times the usual, …
RISING_MARGIN = 20  # … by more than this many dead letters


def name(metric: MetricWrapperBase, suffix: str = "") -> str:
    """A metric's series name: `_total` for a counter, `_bucket` etc. for a histogram."""
    (family,) = metric.describe()
    return family.name + suffix


def total(metric: MetricWrapperBase) -> str:
    return name(metric, "_total")


def rate_by(metric: MetricWrapperBase, by: str = "", match: str = "") -> str:
    """Per second over Grafana's rate interval, summed (by `by`)."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({total(metric)}{{{match}}}[{RATE}]))"


def quantile(q: float, histogram: MetricWrapperBase, by: str = "") -> str:
    keys = ", ".join(["le", *([by] if by else [])])
    buckets = name(histogram, "_bucket")
    return f"histogram_quantile({q}, sum by ({keys}) (rate({buckets}[{RATE}])))"


def lag() -> str:
    """Per consumer and topic; every sink worker measures the same groups: the largest."""
    return f"max by (consumer, topic) ({name(metrics.CONSUMER_LAG)})"


def sink_stalled() -> str:
    """1 while the sink's groups have messages left and no row was stored for
    STALLED_WINDOW, else 0; nothing at all when no worker reports the sink's lag (then the
    rule's no-data state speaks: no sink is running)."""
    sink_lag = f'sum({name(metrics.CONSUMER_LAG)}{{consumer="sink"}})'
    stored = f"sum(increase({total(metrics.SINK_ROWS)}[{STALLED_WINDOW}]))"
    # `or vector(0)`: a sink that never stored a row has no rate at all, and is stalled too.
    return f"({sink_lag} > bool 0) * (({stored} or vector(0)) == bool 0)"


def _dead_letters(window: str, offset: str = "") -> str:
    shift = f" offset {offset}" if offset else ""
    series = f'{total(metrics.SINK_ROWS)}{{table="dead_letters"}}'
    return f"sum(increase({series}[{window}]{shift}))"


def dead_letters_recent() -> str:
    """Dead letters stored in the last RISING_WINDOW, from every source (stage 1,
    stage 2, the sink, the ingest endpoint)."""
    return _dead_letters(RISING_WINDOW)


def dead_letters_limit() -> str:
    """What the last RISING_WINDOW may hold before the rule fires: RISING_FACTOR times a
    usual RISING_WINDOW of the day before (its average; none the first day), and
    RISING_MARGIN more."""
    windows = RISING_BASELINE_HOURS * 60 // RISING_MINUTES
    baseline = _dead_letters(f"{RISING_BASELINE_HOURS}h", RISING_WINDOW)
    return f"{RISING_FACTOR} * (({baseline} or vector(0)) / {windows}) + {RISING_MARGIN}"


def dead_letters_rising() -> str:
    """How many more dead letters the last RISING_WINDOW holds than its limit (the
    rule fires above 0)."""
    return f"{dead_letters_recent()} - ({dead_letters_limit()})"
