"""docker-compose.yml against the code and config it deploys (no Docker engine needed).

The compose file, the ClickHouse users, the Grafana provisioning, .env.example and the
Dockerfile each restate names that live elsewhere (settings, ports, users, uids); these
tests parse them all and fail when one of them drifts.
"""

from __future__ import annotations

import base64
import re
import subprocess
import time
import tomllib
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

from dashboards.query import PLUGIN_TYPE, PLUGIN_VERSION
from producers.ingest import HEALTH_PATH, METRICS_PATH
from sinks.migrations import load_migrations
from sinks.schema import PERSONAL_COLUMNS, READABLE_TABLES
from vizita.app.broker import KAFKA_VERSION
from vizita.app.cli import main as cli_main
from vizita.contract.settings import Settings

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
CLICKHOUSE_CONFIG = REPO / "config/clickhouse/config.d/vizita.xml"
CLICKHOUSE_USERS = REPO / "config/clickhouse/users.d/vizita.xml"
DATASOURCES = REPO / "config/grafana/provisioning/datasources/vizita-clickhouse.yaml"
DASHBOARD_PROVIDERS = REPO / "config/grafana/provisioning/dashboards/vizita.yaml"
PROMETHEUS_DATASOURCES = REPO / "config/grafana/provisioning/datasources/vizita-prometheus.yaml"
PROMETHEUS_CONFIG = REPO / "config/prometheus.yml"
PROMETHEUS_PORT = 9090  # the image's listen address (`--web.listen-address` default)

# built from the repository's Dockerfile
APP_SERVICES = ("worker", "ingest", "simulator", "reporter")
KAFKA_CLIENTS = ("worker", "ingest", "simulator")  # the reporter reads only the store
#: settings whose values are e-mail addresses: a stand-in for them must look like one
ADDRESS_SETTINGS = frozenset({"smtp_sender", "smtp_recipients"})
WEEK_SECONDS = 7 * 24 * 3600
CLICKHOUSE_TYPE = PLUGIN_TYPE  # the data source type the dashboards are built for
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"
STARTS_ONLY_WHEN = {"service_healthy", "service_completed_successfully"}

# `${NAME}`, `${NAME:?message}`, `${NAME-default}`, …: compose's (and Grafana's) syntax;
# `$${…}` is compose's escape for a literal `${`.
_REFERENCE = re.compile(
    r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}"
)
_EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PASSWD|_KEY$", re.IGNORECASE)


# --- reading ---------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def environment(service: str) -> dict[str, str]:
    env = services()[service].get("environment", {})
    if isinstance(env, list):  # the `- KEY=value` form
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def interpolated(value: str) -> str:
    """The value as compose would pass it, each `${NAME…}` replaced by a stand-in."""
    return _REFERENCE.sub(lambda ref: f"x{ref['name'].lower()}", value)


def references(text: str) -> set[str]:
    return {match["name"] for match in _REFERENCE.finditer(text)}


def xml_root(path: Path) -> ET.Element:
    return ET.parse(path).getroot()  # noqa: S314  # the repository's own files, not input


@cache
def clickhouse_users() -> ET.Element:
    return xml_root(CLICKHOUSE_USERS)


def user(name: str) -> ET.Element:
    found = clickhouse_users().find(f"users/{name}")
    assert found is not None, f"no ClickHouse user {name!r} in {CLICKHOUSE_USERS.name}"
    return found


def grants(name: str) -> list[str]:
    return [" ".join((query.text or "").split()) for query in user(name).iterfind("grants/query")]


def readonly_level(name: str) -> int:
    """The `readonly` setting of the user's profile (0: may write)."""
    profile = user(name).findtext("profile")
    value = clickhouse_users().findtext(f"profiles/{profile}/readonly")
    return int(value or 0)


def password_variable(name: str) -> str:
    password = user(name).find("password")
    assert password is not None, f"user {name!r} has no password"
    assert not (password.text or "").strip(), f"user {name!r}: a literal password in the file"
    variable = password.get("from_env")
    assert variable, f"user {name!r}: the password must come from the environment"
    return variable


def clickhouse_tcp_port() -> int:
    return int(xml_root(CLICKHOUSE_CONFIG).findtext("tcp_port") or 0)


def datasource() -> dict[str, Any]:
    (only,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    found: dict[str, Any] = only
    return found


def bind_mounts(service: str) -> dict[str, Path]:
    """Container path -> repository path of the service's bind mounts."""
    mounts = {}
    for volume in services()[service].get("volumes", []):
        source, target = _volume_parts(volume)
        if source.startswith((".", "/")):
            mounts[target] = (COMPOSE.parent / source).resolve()
    return mounts


def grafana_provisioning_variables() -> set[str]:
    """Environment variables Grafana expands in the provisioning files compose mounts
    (`$NAME`, `${NAME}`; lower-case `$labels` is alert templating, not a variable)."""
    found: set[str] = set()
    for folder in bind_mounts("grafana").values():
        for path in folder.glob("*.y*ml"):
            text = path.read_text()
            found |= references(text) | set(re.findall(r"(?<!\$)\$([A-Z][A-Z0-9_]*)", text))
    return found


def _volume_parts(volume: str | dict[str, Any]) -> tuple[str, str]:
    if isinstance(volume, dict):
        return str(volume.get("source", "")), str(volume["target"])
    source, target, *_ = volume.split(":")
    return source, target


def published_ports(service: str) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port."""
    found = []
    for port in services()[service].get("ports", []):
        if isinstance(port, dict):
            found.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
            continue
        *host, container = str(port).split("/")[0].split(":")
        address, published = (["", *host] if len(host) == 1 else host)[-2:]
        found.append((address, int(published), int(container)))
    return found


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,…` -> {NAME: (host, port)}."""
    found = {}
    for item in value.split(","):
        name, address = item.split("://")
        host, port = address.rsplit(":", 1)
        found[name] = (host, int(port))
    return found


def image_is_pinned(image: str) -> bool:
    """A digest, or a tag that names an exact release (not `latest`, not `3.11-slim`)."""
    name, _, digest = image.partition("@")
    if digest:
        return digest.startswith("sha256:")
    last = name.rsplit("/", 1)[-1]  # a registry's `host:port/` is not a tag
    tag = last.partition(":")[2]
    return tag != "latest" and _EXACT_VERSION.search(tag) is not None


def tag_of(image: str) -> str:
    return image.rsplit("/", 1)[-1].partition(":")[2]


@pytest.fixture(scope="module")
def settings() -> Settings:
    """What the containers see before their environment: defaults and config/vizita.yaml
    (tests/conftest.py clears the developer's VIZITA_* variables for each test)."""
    return Settings()


# --- the helpers reject what they must ---------------------------------------------------


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("grafana/grafana:13.2.3", True),
        ("localhost:5000/vizita:0.1.0", True),
        ("python:3.11.16-slim-trixie", True),
        ("redis@sha256:" + "0" * 64, True),
        ("grafana/grafana", False),
        ("grafana/grafana:latest", False),
        ("python:3.11-slim", False),
        ("localhost:5000/vizita", False),
    ],
)
def test_pin_rule(image: str, pinned: bool) -> None:
    assert image_is_pinned(image) is pinned


def test_reference_and_port_parsing() -> None:
    assert references("a ${A} ${B:?set it} ${C:-x} $D $${E}") == {"A", "B", "C"}
    assert interpolated("u:${PW:?set}@h") == "u:xpw@h"
    assert listeners("IN://kafka:9092,C://:9093") == {"IN": ("kafka", 9092), "C": ("", 9093)}


# --- images --------------------------------------------------------------------------------


def test_the_stack_has_its_services() -> None:
    expected = {"kafka", "clickhouse", "prometheus", "grafana", "worker", "ingest", "simulator"}
    assert expected <= set(services())


def test_every_image_is_pinned() -> None:
    for name, service in services().items():
        assert "image" in service, f"{name}: no image"
        assert image_is_pinned(service["image"]), f"{name}: {service['image']} is not pinned"
    bases = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert bases, "the Dockerfile has no FROM"
    for base in bases:
        assert image_is_pinned(base), f"Dockerfile: {base} is not pinned"


def test_kafka_is_the_release_the_tests_run() -> None:
    assert tag_of(services()["kafka"]["image"]) == KAFKA_VERSION


def test_app_services_share_one_image_of_this_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for name in APP_SERVICES:
        service = services()[name]
        assert service["build"]["context"] == ".", name
        assert (COMPOSE.parent / service["build"].get("dockerfile", "Dockerfile")) == DOCKERFILE
        assert service["image"] == f"vizita:{version}", name


def test_app_commands_exist_in_the_cli() -> None:
    for name in ("worker", "ingest"):
        command: click.Command = cli_main
        for word in services()[name]["command"]:
            assert isinstance(command, click.Group), f"{name}: {word!r} under a plain command"
            assert word in command.commands, f"{name}: `vizita … {word}` does not exist"
            command = command.commands[word]
        assert not isinstance(command, click.Group), f"{name}: names a group, not a command"


# --- the weekly report -------------------------------------------------------------------


def test_reporter_reads_the_workers_store_and_mails_with_secrets_from_env() -> None:
    reporter, worker = environment("reporter"), environment("worker")
    assert reporter["VIZITA_STORE_URL"] == worker["VIZITA_STORE_URL"]
    assert "VIZITA_KAFKA_BOOTSTRAP" not in reporter
    for setting in ("SMTP_HOST", "SMTP_USER", "SMTP_PASSWORD", "SMTP_SENDER", "SMTP_RECIPIENTS"):
        value = reporter[f"VIZITA_{setting}"]
        match = _REFERENCE.fullmatch(value)
        assert match, f"VIZITA_{setting}: from .env, not written here"
        assert match["op"] == ":?", f"VIZITA_{setting}: compose must refuse to start without it"
    # The unprivileged user may write there (Dockerfile: VIZITA_DATA_DIR, chowned).
    data_dir = dict(re.findall(r"\b(VIZITA_[A-Z_]+)=(\S+)", DOCKERFILE.read_text()))
    assert Path(reporter["VIZITA_REPORT_PATH"]).parent == Path(data_dir["VIZITA_DATA_DIR"])
    assert services()["reporter"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    assert services()["reporter"]["restart"] == "unless-stopped"
    assert "send" in {param.name for param in cli_main.commands["report"].params}


def _next_monday_six(moment: int) -> int:
    now = datetime.fromtimestamp(moment, UTC)
    monday = (now - timedelta(days=now.weekday())).replace(hour=6, minute=0, second=0)
    while monday <= now:
        monday += timedelta(days=7)
    return int(monday.timestamp())


def _stub(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(0o755)


def test_reporter_sleeps_until_monday_then_sends_and_goes_on_after_a_failure(
    tmp_path: Path,
) -> None:
    """The service's own loop, run by sh with stand-ins for `sleep` (it notes how long,
    and ends the loop on its second call) and `vizita` (it notes its arguments and
    fails, as an unreachable mail server would)."""
    (script,) = services()["reporter"]["command"]
    assert services()["reporter"]["entrypoint"] == ["sh", "-c"]
    bin_dir, log = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    _stub(bin_dir, "sleep", f'echo "sleep $1" >> {log}\n'
          f'[ "$(grep -c sleep {log})" -lt 2 ] || kill -TERM $PPID\n')  # fmt: skip
    _stub(bin_dir, "vizita", f'echo "vizita $*" >> {log}\nexit 1\n')
    started = int(time.time())
    done = subprocess.run(  # noqa: S603  # the compose file's own script, under sh
        ["/bin/sh", "-c", script.replace("$$", "$")], capture_output=True, text=True,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, timeout=30, check=False,
    )  # fmt: skip
    calls = log.read_text(encoding="utf-8").splitlines()
    assert calls[1] == "vizita report --send"
    assert calls[0].startswith("sleep ")
    assert calls[2].startswith("sleep ")  # the loop went on after the failed send
    assert "the weekly report was not sent" in done.stderr
    waited = int(calls[0].split()[1])
    assert 0 < waited <= WEEK_SECONDS
    # It wakes on the next Monday at 06:00 UTC (less the second or two it took to start).
    assert 0 <= _next_monday_six(started) - (started + waited) <= 3


def test_simulator_publishes_the_file_it_writes() -> None:
    (script,) = services()["simulator"]["command"]
    simulate = re.search(r"vizita simulate --out (\S+)", script)
    produce = re.search(r"vizita produce (\S+)", script)
    assert simulate, script
    assert produce, script
    assert simulate[1] == produce[1]
    assert {"simulate", "produce"} <= set(cli_main.commands)
    assert services()["simulator"]["profiles"] == ["demo"]


# --- start order and restarts --------------------------------------------------------------


def test_dependents_wait_for_health() -> None:
    for name, service in services().items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for dependency, how in depends_on.items():
            condition = how.get("condition")
            assert condition in STARTS_ONLY_WHEN, f"{name} -> {dependency}: {condition}"
            if condition == "service_healthy":
                check = services()[dependency].get("healthcheck", {})
                assert check.get("test"), f"{name} waits for {dependency}: no health check"
                assert not check.get("disable"), f"{dependency}: health check disabled"
            else:
                assert services()[dependency].get("restart") == "no", dependency


def test_every_service_says_how_it_restarts() -> None:
    for name, service in services().items():
        one_shot = "demo" in service.get("profiles", [])
        expected = {"no"} if one_shot else {"unless-stopped", "always"}
        assert service.get("restart") in expected, f"{name}: restart {service.get('restart')}"


# --- volumes ---------------------------------------------------------------------------------


def test_named_volumes_are_declared_and_bind_mounts_exist() -> None:
    declared = set(compose().get("volumes") or {})
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source, _ = _volume_parts(volume)
            if source.startswith((".", "/")):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} is missing"
            else:
                assert source in declared, f"{name}: volume {source!r} is not declared"
    assert {"kafka-data", "clickhouse-data", "grafana-data"} <= declared


# --- Kafka -----------------------------------------------------------------------------------


def test_kafka_bootstrap_is_the_internal_listener() -> None:
    kafka = environment("kafka")
    advertised = listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    bound = listeners(kafka["KAFKA_LISTENERS"])
    protocol_map = kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    protocols = dict(item.split(":") for item in protocol_map.split(","))
    kafka_names = {"kafka", services()["kafka"].get("hostname")}
    for name in KAFKA_CLIENTS:
        host, port = environment(name)["VIZITA_KAFKA_BOOTSTRAP"].rsplit(":", 1)
        (listener,) = [key for key, value in advertised.items() if value == (host, int(port))]
        assert host in kafka_names, f"{name}: {host} is not the kafka service"
        assert bound[listener][1] == int(port), f"{name}: {listener} listens elsewhere"
        assert protocols[listener] == "PLAINTEXT"  # what the project's clients speak
        assert listener not in kafka["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")


def test_kafka_host_listener_is_the_published_port() -> None:
    advertised = listeners(environment("kafka")["KAFKA_ADVERTISED_LISTENERS"])
    from_host = {port for host, port in advertised.values() if host == "localhost"}
    assert from_host, "no listener for tools on the host"
    published = set(published_ports("kafka"))
    # Plain text and no authentication: reachable from this host only.
    assert {("127.0.0.1", port, port) for port in from_host} <= published


def test_kraft_settings_are_well_formed() -> None:
    kafka = environment("kafka")
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    cluster_id = kafka["CLUSTER_ID"]  # a UUID in URL-safe base64, unpadded
    assert len(cluster_id) == 22
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    node, voter = kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")
    assert node == kafka["KAFKA_NODE_ID"]
    controller = kafka["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert int(voter.rsplit(":", 1)[1]) == listeners(kafka["KAFKA_LISTENERS"])[controller][1]
    assert kafka["KAFKA_LOG_DIRS"] in {_volume_parts(v)[1] for v in services()["kafka"]["volumes"]}


# --- ClickHouse and the store URL ------------------------------------------------------------


def test_store_url_names_the_clickhouse_service_and_database(settings: Settings) -> None:
    raw = environment("worker")["VIZITA_STORE_URL"]
    url = urlsplit(interpolated(raw))
    assert url.scheme == "clickhouse"
    assert url.hostname in services(), f"{url.hostname} is not a service"
    assert services()[url.hostname]["image"].startswith("clickhouse/clickhouse-server:")
    assert url.port == clickhouse_tcp_port()
    assert url.path.lstrip("/") == settings.database == environment("clickhouse")["CLICKHOUSE_DB"]


def test_store_user_writes_with_a_password_from_env(settings: Settings) -> None:
    raw = environment("worker")["VIZITA_STORE_URL"]
    url = urlsplit(interpolated(raw))
    writer = url.username or ""
    assert readonly_level(writer) == 0, f"{writer} cannot write"
    database_grants = [g for g in grants(writer) if g.endswith(f" ON {settings.database}.*")]
    for privilege in ("CREATE DATABASE", "CREATE TABLE", "CREATE VIEW", "SELECT", "INSERT"):
        assert any(privilege in grant for grant in database_grants), f"{writer}: no {privilege}"
    variable = password_variable(writer)
    assert references(raw) == {variable}, "the URL's password is not the writer's variable"
    assert references(environment("clickhouse")[variable]) == {variable}


# The privilege each kind of migration statement needs (CREATE DATABASE, the
# schema_migrations table, SELECT … FINAL and INSERT are migrate()'s own).
_PRIVILEGE_OF = {
    "CREATE OR REPLACE": "DROP TABLE",  # and CREATE TABLE: the table is made anew
    "CREATE TABLE": "CREATE TABLE",
    "CREATE VIEW": "CREATE VIEW",
    "CREATE MATERIALIZED VIEW": "CREATE VIEW",
    "ALTER TABLE": "ALTER",
    "DROP TABLE": "DROP TABLE",
    "DROP VIEW": "DROP VIEW",
    "INSERT INTO": "INSERT",
}


def test_writer_may_run_every_migration(settings: Settings) -> None:
    writer = urlsplit(interpolated(environment("worker")["VIZITA_STORE_URL"])).username or ""
    granted = " ".join(g for g in grants(writer) if g.endswith(f" ON {settings.database}.*"))
    for migration in load_migrations(settings.database):
        for statement in migration.statements:
            head = " ".join(statement.split()[:3]).upper()
            kinds = [kind for kind in _PRIVILEGE_OF if head.startswith(kind)]
            assert kinds, f"migration {migration.version}: no privilege known for {head!r}"
            privilege = _PRIVILEGE_OF[max(kinds, key=len)]
            assert privilege in granted, f"{writer} lacks {privilege} for {migration.name}"


def test_grafana_user_is_read_only_and_reads_only_the_database(settings: Settings) -> None:
    reader = datasource()["jsonData"]["username"]
    assert readonly_level(reader) >= 1, f"{reader} is not read-only"
    granted = {}
    for grant in grants(reader):
        found = re.fullmatch(r"GRANT SELECT(?:\((.+)\))? ON (\w+)\.(\w+)", grant)
        assert found, f"{reader} may do more than SELECT: {grant}"
        assert found[2] == settings.database
        granted[found[3]] = None if found[1] is None else {c.strip() for c in found[1].split(",")}
    assert set(granted) == set(READABLE_TABLES)
    for table, personal in PERSONAL_COLUMNS.items():
        columns = granted[table]
        assert columns is not None, f"{reader} reads every column of {table}"
        assert not columns & set(personal), f"{reader} reads what a form added in {table}"
    variable = password_variable(reader)
    assert references(environment("clickhouse")[variable]) == {variable}


def test_grafana_user_may_still_set_its_query_timeout() -> None:
    # The data source sets max_execution_time on every query; readonly=1 alone refuses it.
    profile = user(datasource()["jsonData"]["username"]).findtext("profile")
    constraint = clickhouse_users().find(f"profiles/{profile}/constraints/max_execution_time")
    assert constraint is not None
    assert constraint.find("changeable_in_readonly") is not None
    replace = xml_root(CLICKHOUSE_CONFIG).findtext(
        "access_control_improvements/settings_constraints_replace_previous"
    )
    assert replace == "true", "changeable_in_readonly needs settings_constraints_replace_previous"


def test_default_user_stays_on_the_loopback() -> None:
    networks = user("default").find("networks")
    assert networks is not None
    assert networks.get("replace") == "replace"
    assert {ip.text for ip in networks.iterfind("ip")} == {"::1", "127.0.0.1"}
    assert "127.0.0.1" in services()["clickhouse"]["healthcheck"]["test"]


def test_clickhouse_config_files_are_mounted() -> None:
    mounts = bind_mounts("clickhouse")
    assert mounts["/etc/clickhouse-server/config.d/vizita.xml"] == CLICKHOUSE_CONFIG
    assert mounts["/etc/clickhouse-server/users.d/vizita.xml"] == CLICKHOUSE_USERS


# --- Grafana ---------------------------------------------------------------------------------


def test_datasource_provisioning_is_well_formed() -> None:
    document = yaml.safe_load(DATASOURCES.read_text())
    assert document["apiVersion"] == 1
    assert isinstance(document["datasources"], list)
    assert len(document["datasources"]) == 1
    source = datasource()
    for key in ("name", "uid", "type", "access", "jsonData", "secureJsonData"):
        assert key in source, f"data source without {key}"
    assert source["access"] == "proxy"
    assert source["jsonData"]["protocol"] == "native"
    assert source["jsonData"]["secure"] is False  # plain TCP inside the compose network


def test_datasource_points_at_the_store(settings: Settings) -> None:
    source = datasource()
    assert source["uid"] == settings.grafana_datasource_uid
    assert source["type"] == CLICKHOUSE_TYPE
    assert source["jsonData"]["host"] in services()
    assert services()[source["jsonData"]["host"]]["image"].startswith("clickhouse/")
    assert source["jsonData"]["port"] == clickhouse_tcp_port()
    assert source["jsonData"]["defaultDatabase"] == settings.database


def test_datasource_password_comes_from_grafanas_environment() -> None:
    password = datasource()["secureJsonData"]["password"]
    variables = references(password)
    assert len(variables) == 1
    (variable,) = variables
    assert password == "${" + variable + "}"
    assert variable == password_variable(datasource()["jsonData"]["username"])
    assert references(environment("grafana")[variable]) == {variable}


def test_dashboard_provider_is_well_formed_and_reads_the_mounted_folder() -> None:
    document = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())
    assert document["apiVersion"] == 1
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["name"]
    mounted = {path: target for target, path in bind_mounts("grafana").items()}
    assert provider["options"]["path"] == mounted[REPO / "config/grafana/dashboards"]


def test_grafana_provisioning_folders_are_mounted() -> None:
    mounts = bind_mounts("grafana")
    assert mounts[f"{GRAFANA_PROVISIONING}/datasources"] == DATASOURCES.parent
    assert mounts[f"{GRAFANA_PROVISIONING}/dashboards"] == DASHBOARD_PROVIDERS.parent
    assert mounts[f"{GRAFANA_PROVISIONING}/alerting"] == REPO / "config/grafana/alerting"
    for path in mounts.values():
        assert path.is_dir(), f"{path} is not a folder of the repository"


def test_grafana_plugin_is_pinned() -> None:
    env = environment("grafana")
    assert "GF_INSTALL_PLUGINS" not in env  # deprecated; GF_PLUGINS_PREINSTALL_SYNC replaces it
    plugins = dict(item.split("@") for item in env["GF_PLUGINS_PREINSTALL_SYNC"].split(","))
    assert _EXACT_VERSION.fullmatch(plugins[CLICKHOUSE_TYPE]), plugins
    assert plugins[CLICKHOUSE_TYPE] == PLUGIN_VERSION  # the version the dashboards are built for
    assert env["GF_PLUGINS_PREINSTALL_AUTO_UPDATE"] == "false"


# --- the ingest endpoint -----------------------------------------------------------------------


def test_ingest_port_is_published_and_listened_on(settings: Settings) -> None:
    env = environment("ingest")
    assert int(env.get("VIZITA_INGEST_PORT", settings.ingest_port)) == settings.ingest_port
    assert settings.ingest_port in {target for _, _, target in published_ports("ingest")}
    assert env["VIZITA_INGEST_HOST"] == "0.0.0.0"  # noqa: S104  # the container's own interfaces
    probe = " ".join(services()["ingest"]["healthcheck"]["test"])
    assert f":{settings.ingest_port}{HEALTH_PATH}" in probe


def test_ingest_reads_the_mounted_submitters_file() -> None:
    target = environment("ingest")["VIZITA_INGEST_SUBMITTERS_FILE"]
    assert bind_mounts("ingest")[target] == REPO / "config/submitters.yaml"


# --- Prometheus ------------------------------------------------------------------------------


def scrape_targets() -> dict[str, tuple[str, list[tuple[str, int]]]]:
    """job -> (metrics path, [(host, port)]) of config/prometheus.yml."""
    jobs = {}
    for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]:
        targets = [target.rsplit(":", 1) for config in job["static_configs"]
                   for target in config["targets"]]  # fmt: skip
        path = job.get("metrics_path", "/metrics")
        jobs[job["job_name"]] = (path, [(host, int(port)) for host, port in targets])
    return jobs


def test_prometheus_scrapes_the_worker_where_its_settings_serve() -> None:
    path, targets = scrape_targets()["vizita-worker"]
    env = environment("worker")
    assert targets == [("worker", int(env["VIZITA_METRICS_PORT"]))]
    assert path == "/metrics"
    # Listening on the container's interfaces, or Prometheus in its own container
    # could not reach it (the default is the loopback).
    assert env["VIZITA_METRICS_HOST"] == "0.0.0.0"  # noqa: S104  # the container's own interfaces
    assert Settings().metrics_host == "127.0.0.1"


def test_prometheus_scrapes_the_ingest_endpoint_on_its_port(settings: Settings) -> None:
    path, targets = scrape_targets()["vizita-ingest"]
    port = int(environment("ingest").get("VIZITA_INGEST_PORT", settings.ingest_port))
    assert targets == [("ingest", port)]
    assert path == METRICS_PATH


def test_prometheus_reads_the_mounted_config_and_keeps_its_data() -> None:
    prometheus = services()["prometheus"]
    assert bind_mounts("prometheus")["/etc/prometheus/prometheus.yml"] == PROMETHEUS_CONFIG
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    data = next(arg for arg in prometheus["command"] if arg.startswith("--storage.tsdb.path="))
    volumes = {_volume_parts(v)[1]: _volume_parts(v)[0] for v in prometheus["volumes"]}
    assert volumes[data.split("=", 1)[1]] == "prometheus-data"
    assert f"127.0.0.1:{PROMETHEUS_PORT}/-/ready" in " ".join(prometheus["healthcheck"]["test"])
    assert ("127.0.0.1", PROMETHEUS_PORT, PROMETHEUS_PORT) in published_ports("prometheus")


def test_grafanas_prometheus_datasource_is_the_prometheus_service(settings: Settings) -> None:
    document = yaml.safe_load(PROMETHEUS_DATASOURCES.read_text())
    assert document["apiVersion"] == 1
    (source,) = document["datasources"]
    assert source["uid"] == settings.grafana_prometheus_uid
    assert (source["type"], source["access"], source["editable"]) == ("prometheus", "proxy", False)
    url = urlsplit(source["url"])
    assert (url.hostname, url.port) == ("prometheus", PROMETHEUS_PORT)
    assert services()["prometheus"]["image"].startswith("prom/prometheus:v")
    assert services()["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert (
        PROMETHEUS_DATASOURCES.parent
        == bind_mounts("grafana")[f"{GRAFANA_PROVISIONING}/datasources"]
    )


# --- settings, secrets and .env.example -------------------------------------------------------


def test_grafana_gets_only_the_variables_its_provisioning_reads() -> None:
    # A VIZITA_* name outside the app services is not a setting: it must be one that
    # Grafana's provisioning files expand (the alert contact point's address).
    vizita_names = {key for key in environment("grafana") if key.startswith("VIZITA_")}
    assert vizita_names <= grafana_provisioning_variables()
    for name in set(services()) - {*APP_SERVICES, "grafana"}:
        assert not [key for key in environment(name) if key.startswith("VIZITA_")], name


def test_vizita_variables_are_valid_settings() -> None:
    dockerfile_env = re.findall(r"\b(VIZITA_[A-Z_]+)=(\S+)", DOCKERFILE.read_text())
    for name in [*APP_SERVICES, "dockerfile"]:
        env = dict(dockerfile_env) if name == "dockerfile" else environment(name)
        given = {k.removeprefix("VIZITA_").lower(): interpolated(v) for k, v in env.items()
                 if k.startswith("VIZITA_")}  # fmt: skip
        for key in ADDRESS_SETTINGS & set(given):
            given[key] = _REFERENCE.sub("someone@example.org", env[f"VIZITA_{key.upper()}"])
        unknown = set(given) - set(Settings.model_fields)
        assert not unknown, f"{name}: not settings: {unknown}"
        Settings.model_validate(given)  # raises when a value is not valid for its setting


def test_no_secret_is_written_in_the_compose_file() -> None:
    for name in services():
        for key, value in environment(name).items():
            if _SECRET_NAME.search(key):
                match = _REFERENCE.fullmatch(value)
                assert match, f"{name}.{key}: a literal secret"
                assert match["op"] in {None, "?", ":?"}, f"{name}.{key}: a default secret"
            password = urlsplit(value).password if "://" in value else None
            if password is not None:
                assert _REFERENCE.fullmatch(password), f"{name}.{key}: a password in a URL"


def test_referenced_variables_are_documented_in_env_example() -> None:
    documented = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert references(COMPOSE.read_text()) == documented
    assert grafana_provisioning_variables() <= set(environment("grafana"))
    from_env = {node.get("from_env") for node in clickhouse_users().iter() if node.get("from_env")}
    assert from_env <= set(environment("clickhouse"))


def test_secrets_stay_out_of_the_image() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert ".env" in ignored


def test_the_workers_tables_on_disk_outlive_its_container() -> None:
    # The worker keeps its tables under VIZITA_DATA_DIR (streams.runtime.slots): a named
    # volume there, or every restart reads every table back from its changelog.
    data_dir = dict(re.findall(r"\b(VIZITA_[A-Z_]+)=(\S+)", DOCKERFILE.read_text()))
    volumes = (volume.split(":") for volume in services()["worker"]["volumes"])
    mounts = {target: source for source, target, *_ in volumes}
    assert mounts[data_dir["VIZITA_DATA_DIR"]] == "worker-data"
