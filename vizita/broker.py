"""A real Apache Kafka broker (KRaft, single node) that the project starts itself.

Maven resolves the jars pinned in `vizita/kafka/pom.xml` into a cache directory once;
each :class:`LocalBroker` formats a fresh log directory, starts the broker on free
ports, waits until it answers and stops it cleanly. Tests, `vizita demo` and
`vizita replay` (without `--bootstrap`) use it.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

import structlog
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from vizita.errors import BrokerError
from vizita.settings import Settings

log = structlog.get_logger(__name__)

KAFKA_DIR = Path(__file__).parent / "kafka"
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
            if _answers(self.bootstrap):
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


def _answers(bootstrap: str) -> bool:
    # kafka-python logs every refused connection as an error; here they are expected.
    client_log = logging.getLogger("kafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        with _admin(bootstrap, timeout_ms=2000) as admin:
            admin.list_topics()
    except (KafkaError, OSError):
        return False
    finally:
        client_log.setLevel(level)
    return True


@contextlib.contextmanager
def _admin(bootstrap: str, timeout_ms: int = 10000) -> Iterator[KafkaAdminClient]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        yield admin
    finally:
        admin.close()


def ensure_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    with _admin(bootstrap) as admin:
        created = []
        for name in sorted(set(names) - set(admin.list_topics())):
            with contextlib.suppress(TopicAlreadyExistsError):  # a racing creator won
                admin.create_topics([NewTopic(name, partitions, 1)])
                created.append(name)
    if created:
        log.info("kafka.topics.created", topics=created, partitions=partitions)


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """partition -> end offset (the next offset to be written) of one topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in sorted(partitions)])
    finally:
        consumer.close()
    return {tp.partition: int(offset) for tp, offset in ends.items()}


def last_value(bootstrap: str, topic: str, partition: int = 0) -> bytes | None:
    """The value of the last record in one partition (None when it is empty or absent)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, partition)
        if partition not in (consumer.partitions_for_topic(topic) or set()):
            return None
        end = int(consumer.end_offsets([tp])[tp])
        if end == 0:
            return None
        consumer.assign([tp])
        consumer.seek(tp, end - 1)
        for _ in range(10):  # a few polls: the first may only fetch metadata
            records = consumer.poll(timeout_ms=500).get(tp, [])
            if records:
                value: bytes | None = records[-1].value
                return value
        return None
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """partition -> the offset `group` has committed on `topic` (absent when none).

    Asked through the admin API: a consumer carrying the group's id would make the
    group rebalance when it leaves, over and over if polled."""
    with _admin(bootstrap) as admin:
        try:
            offsets = admin.list_group_offsets({group: None}).get(group, {})
        except KafkaError as exc:
            if not exc.retriable:  # e.g. the coordinator is not there yet: nothing committed
                raise
            return {}
    return {tp.partition: int(meta.offset) for tp, meta in offsets.items()
            if tp.topic == topic and meta.offset >= 0}  # fmt: skip


@contextlib.contextmanager
def kafka_for(settings: Settings) -> Iterator[Settings]:
    """The settings, with a local broker started for them when they name none."""
    if settings.kafka_bootstrap:
        yield settings
        return
    with LocalBroker(settings.data_dir / "kafka", settings.kafka_cache_dir) as broker:
        yield settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
