"""The PromQL of the pipeline-metrics board and of the two Prometheus alert rules,
checked by Prometheus's own promtool (scripts/bootstrap.sh unpacks it from Debian's
package): every expression parses, Prometheus's config is valid, and the rules fire on
made-up series exactly when they should (`promtool test rules`).

promtool is Debian's 2.42, the compose stack runs Prometheus 3.14: the queries use only
what both have (rate, increase, offset, histogram_quantile, `bool`, vector)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import promql
from dashboards.alerting import DEAD_LETTERS_RISING, SINK_STALLED
from dashboards.build import Built, alerting_text, build_all
from dashboards.config import METRICS_UID, BuildConfig
from vizita.contract.settings import CONFIG_DIR, Settings

PROMTOOL = Path.home() / ".cache" / "vizita" / "prometheus" / "usr" / "bin" / "promtool"


@pytest.fixture(scope="module")
def built() -> Built:
    return build_all(BuildConfig.from_settings(Settings()))


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL.exists(), "promtool is missing: run scripts/bootstrap.sh"
    return subprocess.run(  # noqa: S603  # the checker bootstrap.sh unpacked, on our files
        [str(PROMTOOL), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def _rules(built: Built) -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(alerting_text(built.alerting))
    return {rule["uid"]: rule for rule in document["groups"][0]["rules"]}


def _alerting_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """The Grafana rule as Prometheus would run it: A's expression, C's `> limit`, its `for`."""
    expr = rule["data"][0]["model"]["expr"]
    (limit,) = rule["data"][2]["model"]["conditions"][0]["evaluator"]["params"]
    return {"alert": rule["uid"], "expr": f"({expr}) > {limit}", "for": rule["for"]}


def test_prometheus_config_is_valid() -> None:
    checked = promtool("check", "config", CONFIG_DIR / "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_panel_and_rule_expression_parses(built: Built, tmp_path: Path) -> None:
    exprs = [target["expr"] for panel in built.dashboards[METRICS_UID]["panels"]
             for target in panel.get("targets", [])]  # fmt: skip
    exprs += [_alerting_rule(rule)["expr"] for uid, rule in _rules(built).items()
              if uid in {SINK_STALLED, DEAD_LETTERS_RISING}]  # fmt: skip
    assert len(exprs) > 20
    # Grafana's $__rate_interval is a duration when it reaches Prometheus.
    records = [{"record": f"vizita:check_{n}", "expr": expr.replace(promql.RATE, "1m")}
               for n, expr in enumerate(exprs)]  # fmt: skip
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": records}]}))
    checked = promtool("check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _run_rule_tests(built: Built, tmp_path: Path, tests: list[dict[str, Any]]) -> str:
    rules = [_alerting_rule(rule) for uid, rule in _rules(built).items()
             if uid in {SINK_STALLED, DEAD_LETTERS_RISING}]  # fmt: skip
    (tmp_path / "rules.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "vizita", "interval": "1m", "rules": rules}]})
    )
    (tmp_path / "tests.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests})
    )
    tested = promtool("test", "rules", tmp_path / "tests.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    return tested.stdout


def _alerts(name: str, at: str, fired: bool) -> dict[str, Any]:
    return {"eval_time": at, "alertname": name, "exp_alerts": [{}] if fired else []}


def test_sink_stalled_fires_on_lag_with_no_row_stored_and_only_then(
    built: Built, tmp_path: Path
) -> None:
    lag = 'vizita_consumer_lag_messages{consumer="sink",topic="visits-effective"}'
    rows = 'vizita_sink_rows_total{table="visits"}'
    stalled = {  # rows stored for 10 minutes, then none, while 100 messages wait
        "interval": "1m",
        "input_series": [
            {"series": lag, "values": "100x40"},
            {"series": rows, "values": "0+50x10 500x30"},
        ],
        # No row since minute 10: the 5-minute window is empty from minute 15, and that
        # has to hold for 10 minutes more.
        "alert_rule_test": [
            _alerts(SINK_STALLED, "14m", False),
            _alerts(SINK_STALLED, "20m", False),
            _alerts(SINK_STALLED, "26m", True),
        ],
    }
    working = {  # rows keep coming while messages wait: a busy sink, not a stalled one
        "interval": "1m",
        "input_series": [
            {"series": lag, "values": "100x40"},
            {"series": rows, "values": "0+50x40"},
        ],
        "alert_rule_test": [_alerts(SINK_STALLED, "35m", False)],
    }
    idle = {  # nothing waits and nothing is stored: a quiet night
        "interval": "1m",
        "input_series": [{"series": lag, "values": "0x40"}, {"series": rows, "values": "7x40"}],
        "alert_rule_test": [_alerts(SINK_STALLED, "35m", False)],
    }
    never = {  # a sink that never stored a row (its counter never appeared) and lags
        "interval": "1m",
        "input_series": [{"series": lag, "values": "100x40"}],
        "alert_rule_test": [_alerts(SINK_STALLED, "12m", True)],
    }
    _run_rule_tests(built, tmp_path, [stalled, working, idle, never])


def test_dead_letters_rising_fires_above_three_times_the_day_before_and_twenty(
    built: Built, tmp_path: Path
) -> None:
    series = 'vizita_sink_rows_total{table="dead_letters"}'
    day = 24 * 60
    rising = {  # 0.1 a minute for a day (3 per half hour), then 5 a minute (150)
        "interval": "1m",
        "input_series": [{"series": series, "values": f"0+0.1x{day + 30} {day * 0.1 + 3}+5x60"}],
        "alert_rule_test": [
            _alerts(DEAD_LETTERS_RISING, f"{day + 30}m", False),
            _alerts(DEAD_LETTERS_RISING, f"{day + 70}m", True),
        ],
    }
    usual = {  # the same 3 per half hour all along, or a busy day's 60 every half hour
        "interval": "1m",
        "input_series": [
            {"series": series, "values": f"0+0.1x{day + 90}"},
            {"series": series.replace("}", ',instance="b"}'), "values": f"0+2x{day + 90}"},
        ],
        "alert_rule_test": [_alerts(DEAD_LETTERS_RISING, f"{day + 60}m", False)],
    }
    first_day = {  # no day before: 20 in a half hour is allowed, 60 is not
        "interval": "1m",
        "input_series": [
            {"series": series, "values": "0+0.5x40"},
            {"series": series.replace("}", ',instance="b"}'), "values": "0x40 0+2x60"},
        ],
        "alert_rule_test": [
            _alerts(DEAD_LETTERS_RISING, "38m", False),
            _alerts(DEAD_LETTERS_RISING, "90m", True),
        ],
    }
    _run_rule_tests(built, tmp_path, [rising, usual, first_day])
