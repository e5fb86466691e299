"""The command line's help: every option that sets a setting names, in `--help`, the
environment variable that sets it too, and that variable is the one Settings reads;
every `--municipality` is checked against the codes."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner
from pydantic_settings import EnvSettingsSource

from vizita.app.cli import _known_municipality, main
from vizita.contract.settings import Settings, env_name

NAMED = re.compile(r"\[env var: (\S+)\]")


def commands(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command and group, with the words that reach it, the `vizita` group first."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from commands(sub, (*path, name))


def options() -> Iterator[tuple[tuple[str, ...], click.Option]]:
    for path, command in commands(main):
        for param in command.params:
            if isinstance(param, click.Option):
                yield path, param


def settings_read(variable: str, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The settings that the environment variable sets, as pydantic-settings reads it."""
    monkeypatch.setenv(variable, "1")
    try:
        return set(EnvSettingsSource(Settings)())
    finally:
        monkeypatch.delenv(variable)


def test_every_command_is_walked() -> None:
    paths = {" ".join(path) for path, _ in commands(main)}
    assert {"", "replay", "worker", "demo", "ingest serve", "dashboards push"} <= paths


def test_an_option_of_a_setting_names_the_variable_settings_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in [v for v in os.environ if v.startswith("VIZITA_")]:
        monkeypatch.delenv(variable)  # only the variable under test is set below
    bound = set()
    for path, option in options():
        named = NAMED.findall(option.help or "")
        if option.name not in Settings.model_fields:
            assert named == [], f"vizita {' '.join(path)} {option.opts}: no setting"
            continue
        assert named == [env_name(option.name)], f"vizita {' '.join(path)} {option.opts}"
        assert settings_read(named[0], monkeypatch) == {option.name}
        bound.add(option.name)
    assert bound >= {"store_url", "kafka_bootstrap", "log_level", "log_format", "clock",
                     "report_path", "ingest_host", "ingest_port", "grafana_url"}  # fmt: skip


def test_help_shows_the_variables() -> None:
    for path, command in commands(main):
        shown = CliRunner().invoke(main, [*path, "--help"], terminal_width=100)
        assert shown.exit_code == 0, shown.output
        for param in command.params:
            if isinstance(param, click.Option) and param.name in Settings.model_fields:
                assert env_name(param.name) in shown.output, (path, param.opts)


def test_env_name_is_the_prefix_and_the_field() -> None:
    assert env_name("store_url") == "VIZITA_STORE_URL"
    assert env_name("kafka_bootstrap") == "VIZITA_KAFKA_BOOTSTRAP"
    with pytest.raises(KeyError, match="no setting named 'store'"):
        env_name("store")


def test_every_municipality_option_is_checked_against_the_codes() -> None:
    found = [(path, o) for path, o in options() if o.name == "municipality"]
    assert found  # vizita indicators
    for path, option in found:
        assert option.callback is _known_municipality, path
