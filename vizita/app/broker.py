"""A real Apache Kafka broker (KRaft, single node) that the project starts itself.

Maven resolves the jars pinned in `vizita/app/local_kafka/pom.xml` into a cache directory once;
each :class:`LocalBroker` formats a fresh log directory, starts the broker on free
ports, waits until it answers and stops it cleanly. Tests, `vizita demo` and
`vizita replay` (without `--bootstrap`) use it.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import structlog

from vizita.app.errors import BrokerError
from vizita.contract.settings import Settings
from vizita.kafka.admin import answers

log = structlog.get_logger(__name__)

KAFKA_DIR = Path(__file__).parent / "local_kafka"
POM = KAFKA_DIR / "pom.xml"
KAFKA_VERSION = "4.4.0"  # keep equal to the pom's; the cache is keyed by it
_COMPLETE = ".complete"


def ensure_jars(cache_dir: Path) -> Path:
    """Resolve the broker's jars with Maven into `cache_dir/<version>` (once)."""
    jars = cache_dir / KAFKA_VERSION
    if (jars / _COMPLETE).exists():
        return jars
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is not on PATH; it resolves the Kafka jars")
    jars.mkdir(parents=True, exist_ok=True)
    command = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
               f"-DoutputDirectory={jars}", "-DincludeScope=runtime"]  # fmt: skip
    log.info("kafka.jars.resolve", directory=str(jars))
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603  # fixed argv
    if done.returncode != 0:
        raise BrokerError(f"mvn could not resolve the Kafka jars:\n{done.stdout[-2000:]}")
    (jars / _COMPLETE).touch()
    return jars


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_properties(log_dirs: Path, port: int, controller_port: int) -> str:
    # Small internal topics keep the first consumer-group join and the first
    # transaction fast on a 2-core machine; replication factor 1 fits one node.
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={log_dirs}",
        "num.partitions=1",
        "auto.create.topics.enable=false",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=4",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=4",
        "group.initial.rebalance.delay.ms=0",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
    ]) + "\n"  # fmt: skip


class LocalBroker:
    """One Kafka broker process in `work_dir`; a context manager."""

    def __init__(self, work_dir: Path, cache_dir: Path, *, heap_mb: int = 512) -> None:
        self.work_dir = work_dir
        self.cache_dir = cache_dir
        self.heap_mb = heap_mb
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> LocalBroker:
        jars = ensure_jars(self.cache_dir)
        self.port, controller_port = free_port(), free_port()
        shutil.rmtree(self.work_dir, ignore_errors=True)
        (self.work_dir / "logs").mkdir(parents=True)
        config = self.work_dir / "server.properties"
        config.write_text(_server_properties(self.work_dir / "data", self.port, controller_port))
        self._java(
            jars, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(config)
        )
        self._process = self._spawn(jars, "kafka.Kafka", str(config))
        self._wait_ready(timeout)
        log.info("kafka.started", bootstrap=self.bootstrap, version=KAFKA_VERSION)
        return self

    def _command(self, jars: Path, main: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerError("java is not on PATH; Kafka needs Java 17+")
        return [java, f"-Xmx{self.heap_mb}m", "-Xms128m", "-XX:+UseG1GC",
                "-Djava.awt.headless=true", f"-Dkafka.logs.dir={self.work_dir / 'logs'}",
                f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.xml'}",
                "-cp", f"{jars}/*", main, *args]  # fmt: skip

    def _java(self, jars: Path, main: str, *args: str) -> None:
        done = subprocess.run(  # noqa: S603  # argv built here, no shell
            self._command(jars, main, *args), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BrokerError(f"{main} failed: {done.stderr[-2000:] or done.stdout[-2000:]}")

    def _spawn(self, jars: Path, main: str, *args: str) -> subprocess.Popen[bytes]:
        out = (self.work_dir / "logs" / "stdout.log").open("wb")
        return subprocess.Popen(  # noqa: S603  # argv built here, no shell
            self._command(jars, main, *args),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the JVM
        )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise BrokerError(f"the broker exited early:\n{self._log_tail()}")
            if answers(self.bootstrap):
                return
            time.sleep(0.3)
        self.stop()
        raise BrokerError(f"the broker did not answer within {timeout:.0f} s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        lines: list[str] = []
        for name in ("stdout.log", "server.log"):
            path = self.work_dir / "logs" / name
            if path.exists():
                lines += path.read_text(errors="replace").splitlines()[-20:]
        return "\n".join(lines)

    def stop(self, timeout: float = 30.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # controlled shutdown
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.info("kafka.stopped", bootstrap=self.bootstrap)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _cluster_id() -> str:
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # the storage tool would read it as an option
            return cluster_id


@contextlib.contextmanager
def kafka_for(settings: Settings) -> Iterator[Settings]:
    """The settings, with a local broker started for them when they name none."""
    if settings.kafka_bootstrap:
        yield settings
        return
    with LocalBroker(settings.data_dir / "kafka", settings.kafka_cache_dir) as broker:
        yield settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
