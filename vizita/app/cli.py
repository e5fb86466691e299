"""The `vizita` command (SPEC §7). Settings and logging are built here, once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from vizita.contract.errors import ConfigError, VizitaError
from vizita.contract.settings import Settings, env_name

if TYPE_CHECKING:
    from click.decorators import FC

    from sinks.store import Store

_OVERRIDES = "overrides"


class VizitaGroup(click.Group):
    """The `vizita` group: an expected failure (a VizitaError, a usage error) ends the
    command with one line on stderr and a non-zero exit; its traceback shows only
    with --log-level debug. Anything else is a bug and shows its traceback."""

    def main(
        self, args: Sequence[str] | None = None, prog_name: str | None = None,
        complete_var: str | None = None, standalone_mode: bool = True, **extra: Any,
    ) -> Any:  # fmt: skip
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            where = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx else ""
            _one_line(where or "vizita", exc.format_message(), exc)
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            _one_line("vizita", "aborted", exc)
            sys.exit(1)
        except VizitaError as exc:
            _one_line("vizita", str(exc), exc)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _one_line(where: str, message: str, exc: BaseException) -> None:
    lines = message.strip().splitlines() or [type(exc).__name__]
    click.echo(f"{where}: error: {lines[0]}", err=True)
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        traceback.print_exception(exc, file=sys.stderr)


def _settings(ctx: click.Context, **options: Any) -> Settings:
    """Settings from the group's and this command's options (None = not given)."""
    given = {**ctx.obj[_OVERRIDES], **{k: v for k, v in options.items() if v is not None}}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigError(f"settings: {problems}") from exc


def _start(ctx: click.Context, **options: Any) -> Settings:
    from vizita.contract.logs import configure_logging

    settings = _settings(ctx, **options)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _open_store(settings: Settings) -> Store:
    from sinks.store import open_store  # here: a command without a store need not load it

    url = settings.store_url.get_secret_value()
    return open_store(url, settings.database, settings.store_cluster)


def setting_option(*decls: str, setting: str, help: str, **attrs: Any) -> Callable[[FC], FC]:
    """An option for the setting `setting`: its value reaches Settings under that name
    (`_settings`), and its help ends with the environment variable that sets it too."""
    return click.option(*decls, setting, help=f"{help} [env var: {env_name(setting)}]", **attrs)


store_option = setting_option(
    "--store", setting="store_url", help="chdb:///abs/path or clickhouse://…"
)
bootstrap_option = setting_option(
    "--bootstrap", setting="kafka_bootstrap", help="Kafka HOST:PORT; needed (or its variable)"
)
local_or_bootstrap = setting_option(
    "--bootstrap", setting="kafka_bootstrap", help="Kafka HOST:PORT; none starts a local broker"
)
needs_bootstrap = f"needs --bootstrap or {env_name('kafka_bootstrap')}"
input_file = click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
)


@click.group(cls=VizitaGroup)
@click.version_option(package_name="vizita", prog_name="vizita")
@setting_option(
    "--log-level", setting="log_level", type=click.Choice(["debug", "info", "warning", "error"]),
    help="how much to log (debug adds the traceback of an error)",
)  # fmt: skip
@setting_option(
    "--log-format", setting="log_format", type=click.Choice(["auto", "json", "console"]),
    help="auto: JSON unless stderr is a terminal",
)  # fmt: skip
@click.pass_context
def main(ctx: click.Context, log_level: str | None, log_format: str | None) -> None:
    """Vizita: live monitoring of the home visiting programme."""
    given = {"log_level": log_level, "log_format": log_format}
    ctx.obj = {_OVERRIDES: {k: v for k, v in given.items() if v is not None}}
    if log_level == "debug":  # before any command configures logging: tracebacks of errors
        logging.getLogger().setLevel(logging.DEBUG)


@main.command()
@input_file
@store_option
@local_or_bootstrap
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@click.pass_context
def replay(
    ctx: click.Context,
    file: Path,
    store_url: str | None,
    kafka_bootstrap: str | None,
    as_json: bool,
) -> None:
    """Publish FILE (JSONL), process and store all of it, print a summary."""
    from vizita.app.broker import kafka_for
    from vizita.app.replay import replay as run_replay
    from vizita.contract.targets import load_targets

    settings = _start(ctx, store_url=store_url, kafka_bootstrap=kafka_bootstrap)
    targets = load_targets(settings.targets_file)
    store = _open_store(settings)
    try:
        with kafka_for(settings) as live:
            summary = run_replay(live, store, file, targets)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
        return
    click.echo(
        f"read {summary.read}  valid {summary.valid}  duplicates {summary.duplicates}  "
        f"dead-lettered {summary.dead_lettered}  ({summary.seconds:.1f} s)\n"
        f"store: {summary.rows_stored} rows written; {summary.visits_in_store} visits, "
        f"{summary.voided_in_store} voided, "
        f"{summary.dead_letters_in_store} dead letters, {summary.indicator_rows_in_store} "
        f"indicator rows, {summary.active_alerts} active alerts"
    )


@main.command()
@input_file
@bootstrap_option
@click.pass_context
def produce(ctx: click.Context, file: Path, kafka_bootstrap: str | None) -> None:
    """Publish FILE (JSONL, one raw payload a line) to the visits topic."""
    from producers.publish import publish, read_lines
    from vizita.contract.topics import TOPIC_VISITS
    from vizita.kafka.admin import ensure_pipeline_topics

    settings = _start(ctx, kafka_bootstrap=kafka_bootstrap)
    if not settings.kafka_bootstrap:
        raise click.UsageError(f"produce {needs_bootstrap}")
    ensure_pipeline_topics(settings)
    count = publish(read_lines(file), settings.kafka_bootstrap, settings.topic(TOPIC_VISITS))
    click.echo(f"published {count} payloads to {settings.topic(TOPIC_VISITS)}")


@main.command()
@store_option
@bootstrap_option
@click.option("--no-sink", is_flag=True, help="stream only; another worker writes the store")
@click.option(
    "--exit-when-done", is_flag=True,
    help="stop once all that is in the visits topic now is processed and stored (backfills)",
)  # fmt: skip
@setting_option(
    "--clock", setting="clock", type=click.Choice(["live", "event"]),
    help="the clock day (SPEC §2): today's, or the last upsert's",
)  # fmt: skip
@setting_option(
    "--metrics-port", setting="metrics_port", type=click.IntRange(0, 65535),
    help="serve Prometheus metrics at /metrics on this port, 0: a free one (default: not served)",
)  # fmt: skip
@click.pass_context
def worker(  # noqa: PLR0917  # click passes every option positionally
    ctx: click.Context, store_url: str | None, kafka_bootstrap: str | None, no_sink: bool,
    exit_when_done: bool, clock: str | None, metrics_port: int | None,
) -> None:  # fmt: skip
    """Run the stream (and the sink) until SIGINT or SIGTERM."""
    from sinks.migrations import migrate
    from vizita.app.metrics_http import serving_metrics
    from vizita.app.runner import Pipeline
    from vizita.contract.targets import load_targets
    from vizita.kafka.admin import ensure_pipeline_topics

    settings = _start(ctx, store_url=store_url, kafka_bootstrap=kafka_bootstrap, clock=clock,
                      metrics_port=metrics_port)  # fmt: skip
    if not settings.kafka_bootstrap:
        raise click.UsageError(f"worker {needs_bootstrap}")
    if exit_when_done and no_sink:
        raise click.UsageError("--exit-when-done waits for the store: it needs the sink")
    targets = load_targets(settings.targets_file)
    store = None
    if not no_sink:
        store = _open_store(settings)
        migrate(store, settings.dead_letter_retention_days)
    try:
        ensure_pipeline_topics(settings)
        with serving_metrics(settings):  # before the start: a scrape then says "starting"
            pipeline = Pipeline(settings, store, targets)
            asyncio.run(_run_worker(pipeline, exit_when_done=exit_when_done))
    finally:
        if store is not None:
            store.close()  # the embedded engine finishes what it writes before the exit


async def _run_worker(pipeline: Any, *, exit_when_done: bool) -> None:
    """Until SIGINT or SIGTERM (or, with exit_when_done, until all is stored); a part
    that fails stops the worker with WorkerFailed: one line and a non-zero exit."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await pipeline.start()
    try:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(pipeline.failed())]
        if exit_when_done:
            waits.append(asyncio.ensure_future(_backfill(pipeline)))
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        failure = waits[1]
        if failure in done:
            raise failure.result()
        for task in done:
            task.result()  # a wait that raised
    finally:
        _exit_unless_stopped_within(EXIT_SECONDS)
        await pipeline.stop()


async def _backfill(pipeline: Any) -> None:
    """--exit-when-done: until all that is in `visits` now is stored, with a progress
    line every 10 s (logs, not a bar: a worker's stderr is its log)."""
    from vizita.app.progress import showing_progress

    async with showing_progress("worker", "vizita worker", pipeline.progress_now, bar=False):
        await pipeline.wait_until_stored({})


#: how long a worker may take to stop before it ends itself (30 s in all, with its exit)
EXIT_SECONDS = 28.0


def _exit_unless_stopped_within(seconds: float) -> None:
    """A stop that hangs (a task that ignores cancellation, a thread blocked on a broker
    that is gone) must not keep the process: a supervisor restarts what exits."""

    def end() -> None:
        print(f"vizita: error: the worker did not stop within {seconds:.0f} s", file=sys.stderr,
              flush=True)  # fmt: skip
        os._exit(3)

    timer = threading.Timer(seconds, end)
    timer.daemon = True  # a process that stops in time is not held by it
    timer.start()


def _known_municipality(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """A municipality code (or ALL); anything else is a usage error naming the codes
    closest to what was typed."""
    from vizita.contract.display import similar_municipalities
    from vizita.contract.municipalities import SCOPES

    if value is None or value in SCOPES:
        return value
    close = similar_municipalities(value)
    hint = f"; did you mean {' or '.join(close)}?" if close else "; see SPEC §6 for the codes"
    raise click.BadParameter(f"unknown municipality code {value!r}{hint}")


@main.command()
@click.option(
    "--municipality", callback=_known_municipality,
    help="one municipality code (or ALL): every indicator, both windows",
)  # fmt: skip
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), help="default: the latest day")
@store_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def indicators(
    ctx: click.Context, municipality: str | None, as_of: Any, store_url: str | None, as_json: bool
) -> None:
    """Current indicator values from the store, as a table (worst first)."""
    from sinks.queries import active_alerts, indicator_rows, latest_as_of
    from vizita.app.views import indicators_table, print_json
    from vizita.contract.targets import load_targets

    with _store(ctx, store_url) as (settings, store):
        day = as_of.date() if as_of else latest_as_of(store)
        rows = indicator_rows(store, day, municipality) if day else []
        alerts = active_alerts(store)
    if as_json:
        print_json(rows)
        return
    if not rows:
        raise click.ClickException("no indicator values for that day and municipality")
    targets = load_targets(settings.targets_file)
    indicators_table(rows, day, targets, alerts, single=municipality is not None)


@main.command()
@store_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def alerts(ctx: click.Context, store_url: str | None, as_json: bool) -> None:
    """The active alerts (municipalities behind a target), as a table."""
    from sinks.queries import active_alerts
    from vizita.app.views import alerts_table, print_json
    from vizita.contract.targets import load_targets

    with _store(ctx, store_url) as (settings, store):
        rows = active_alerts(store)
    if as_json:
        print_json(rows)
    else:
        alerts_table(rows, load_targets(settings.targets_file))


@contextlib.contextmanager
def _store(ctx: click.Context, store_url: str | None) -> Iterator[Any]:
    from sinks.migrations import migrate

    settings = _start(ctx, store_url=store_url)
    store = _open_store(settings)
    try:
        migrate(store, settings.dead_letter_retention_days)
        yield settings, store
    finally:
        store.close()


@main.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--days", type=int, default=60, show_default=True)
@click.option("--per-day", type=int, default=100, show_default=True, help="weekday visits")
@click.option("--seed", type=int, default=7, show_default=True)
def simulate(out: Path, days: int, per_day: int, seed: int) -> None:
    """Write a realistic, messy stream of visit payloads to a JSONL file."""
    from producers.simulator import SimulationConfig, write_jsonl
    from producers.simulator import simulate as run_simulation

    config = SimulationConfig(seed=seed, days=days, visits_per_day=per_day)
    count = write_jsonl(run_simulation(config), out)
    click.echo(f"wrote {count} payloads to {out}")


@main.command()
@click.pass_context
def broker(ctx: click.Context) -> None:
    """Run a local Kafka broker in the foreground (for development)."""
    from vizita.app.broker import LocalBroker

    settings = _start(ctx)
    with LocalBroker(settings.data_dir / "kafka", settings.kafka_cache_dir) as running:
        click.echo(f"Kafka at {running.bootstrap}; Ctrl-C stops it")
        signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # delivered to sigwait only
        signal.sigwait(signals)


@main.command()
@click.option("--duration", type=float, default=None, help="seconds to run; default: until Ctrl-C")
@click.option("--days", type=int, default=60, show_default=True, help="days of history first")
@store_option
@click.pass_context
def demo(ctx: click.Context, duration: float | None, days: int, store_url: str | None) -> None:
    """The whole pipeline on this machine with simulated visits and a live view."""
    from vizita.app.demo import run_demo

    settings = _start(ctx, store_url=store_url)
    if settings.store_cluster:
        raise click.UsageError("the demo runs on one store node: unset store_cluster")
    run_demo(settings, duration=duration, history_days=days)


def _calendar_period(month: str | None, quarter: str | None) -> Any:
    """The period --month or --quarter names (to date for the current one), or None."""
    from datetime import datetime

    from vizita.app.report_data import month_named, quarter_named
    from vizita.contract.days import LOCAL_TZ

    if month and quarter:
        raise click.UsageError("give --month or --quarter, not both")
    today = datetime.now(LOCAL_TZ).date()
    try:
        if month:
            return month_named(month, today)
        if quarter:
            return quarter_named(quarter, today)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--month" if month else "--quarter") from exc
    return None


@main.command()
@setting_option(
    "--out", setting="report_path", type=click.Path(dir_okay=False, path_type=Path),
    help="the HTML file to write; default: report_path (.vizita/report.html)",
)  # fmt: skip
@click.option("--month", help="a calendar month, YYYY-MM (to date for the current one)")
@click.option("--quarter", help="a calendar quarter, YYYYQn (to date for the current one)")
@click.option("--send", is_flag=True, help="also mail it to smtp_recipients (settings)")
@store_option
@click.pass_context
def report(  # noqa: PLR0917  # click passes every option positionally
    ctx: click.Context, report_path: Path | None, month: str | None, quarter: str | None,
    send: bool, store_url: str | None,
) -> None:  # fmt: skip
    """Write the store's report (indicators, targets, alerts, map, centres and nurses) as
    one self-contained HTML file; the rolling 30 days, or a calendar month or quarter."""
    from datetime import datetime

    from sinks.migrations import migrate
    from vizita.app.mail import check_mail_settings
    from vizita.app.report import mail_report, render_report, write_report
    from vizita.app.report_data import read_report_data
    from vizita.contract.days import LOCAL_TZ
    from vizita.contract.targets import load_targets

    period = _calendar_period(month, quarter)
    settings = _start(ctx, store_url=store_url, report_path=report_path)
    if send:
        check_mail_settings(settings)  # before any work
    targets = load_targets(settings.targets_file)
    now = datetime.now(LOCAL_TZ)
    store = _open_store(settings)
    try:
        migrate(store, settings.dead_letter_retention_days)
        data = read_report_data(store, targets, now, period)
    finally:
        store.close()
    page = render_report(data)
    try:
        write_report(settings.report_path, page)
    except OSError as exc:
        raise click.ClickException(f"cannot write {settings.report_path}: {exc}") from exc
    click.echo(f"report: {settings.report_path}")
    if send:
        mail_report(settings, data, page)
        click.echo(f"sent to {len(settings.smtp_recipients)} recipient(s)")


@main.group()
def ingest() -> None:
    """The HTTP endpoint submitters post visits to (POST /v1/visits)."""


@ingest.command("serve")
@setting_option("--host", setting="ingest_host", help="address to listen on (default: ingest_host)")
@setting_option(
    "--port", setting="ingest_port", type=int, help="port to listen on (default: ingest_port)"
)
@bootstrap_option
@click.pass_context
def ingest_serve(
    ctx: click.Context, ingest_host: str | None, ingest_port: int | None,
    kafka_bootstrap: str | None,
) -> None:  # fmt: skip
    """Serve POST /v1/visits until SIGINT or SIGTERM (needs a Kafka bootstrap)."""
    from producers.ingest import require_submitters, serve
    from vizita.kafka.admin import ensure_pipeline_topics

    settings = _start(
        ctx, ingest_host=ingest_host, ingest_port=ingest_port, kafka_bootstrap=kafka_bootstrap
    )
    if not settings.kafka_bootstrap:
        raise click.UsageError(f"ingest serve {needs_bootstrap}")
    require_submitters(settings.ingest_submitters_file)  # before anything else starts
    ensure_pipeline_topics(settings)
    asyncio.run(serve(settings))


@ingest.command("openapi")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path),
    help="where to write it (default: the repository's config/openapi.json)",
)  # fmt: skip
@click.pass_context
def ingest_openapi(ctx: click.Context, out: Path | None) -> None:
    """Write the OpenAPI 3.1 document of POST /v1/visits and GET /healthz."""
    from producers.openapi import DEFAULT_OPENAPI_FILE, document_for, write_openapi

    settings = _start(ctx)
    click.echo(f"wrote {write_openapi(document_for(settings), out or DEFAULT_OPENAPI_FILE)}")


@ingest.command("token")
@click.argument("name")
@click.pass_context
def ingest_token(ctx: click.Context, name: str) -> None:
    """Make a bearer token for submitter NAME; print it once, and its submitters line."""
    import re

    from producers.ingest import SUBMITTER_NAME_PATTERN, new_token, submitters_line

    if not re.fullmatch(SUBMITTER_NAME_PATTERN, name):
        raise click.BadParameter("1-64 of A-Z a-z 0-9 _ . -", param_hint="NAME")
    settings = _settings(ctx)
    token = new_token()
    click.echo(f"token for {name} (shown only now; give it to the submitter):\n  {token}\n")
    click.echo(f"add under `submitters:` in {settings.ingest_submitters_file}, then restart:")
    click.echo(submitters_line(name, token))


@main.group(name="dashboards")
def dashboards_group() -> None:
    """Grafana dashboards and alert rules as code."""


@dashboards_group.command("build")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path),
    help="writes OUT/dashboards/*.json and OUT/alerting/vizita.yaml "
         "(default: the repository's config/grafana)",
)  # fmt: skip
@click.pass_context
def dashboards_build(ctx: click.Context, out: Path | None) -> None:
    """Write the four dashboards and the alerting provisioning file."""
    from dashboards.build import build_all, write
    from dashboards.config import BuildConfig
    from vizita.contract.settings import CONFIG_DIR

    settings = _start(ctx)
    built = build_all(BuildConfig.from_settings(settings))
    for path in write(built, out or CONFIG_DIR / "grafana"):
        click.echo(f"wrote {path}")


@dashboards_group.command("push")
@setting_option("--url", setting="grafana_url", help="Grafana's URL (default: grafana_url)")
@click.option("--folder-uid", help="the Grafana folder to put the dashboards in")
@click.pass_context
def dashboards_push(ctx: click.Context, grafana_url: str | None, folder_uid: str | None) -> None:
    """Send the dashboards to Grafana (token: VIZITA_GRAFANA_TOKEN)."""
    from dashboards.build import build_all
    from dashboards.config import BuildConfig
    from dashboards.push import push_dashboards

    settings = _start(ctx, grafana_url=grafana_url)
    built = build_all(BuildConfig.from_settings(settings))
    pushed = push_dashboards(built, settings.grafana_url, settings.grafana_token, folder_uid)
    click.echo(f"pushed {', '.join(pushed)} to {settings.grafana_url}")
