"""A real Apache Kafka broker (KRaft, single node) that the project starts itself.

Maven resolves the jars pinned in `vizita/app/local_kafka/pom.xml` into a cache directory
once. A :class:`LocalBroker` formats its log directory at its first start (a new cluster
on new ports); every later start of the same object, after :meth:`LocalBroker.stop`
(controlled shutdown) or :meth:`LocalBroker.kill` (a crash), runs the broker again on
that directory with the same ports and cluster id, so topics, committed offsets and
messages are kept and clients find it at the address they already have. With
`keep_data=True` it also reopens a directory that an earlier process left. Tests,
`vizita demo`, `vizita broker` and `vizita replay` (without `--bootstrap`) use it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
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
#: what a formatted directory remembers: its cluster id and its two ports
IDENTITY_FILE = "broker.json"
#: ports are drawn from here up to the start of the ephemeral range
_LOWEST_PORT = 20_000
_FEWEST_PORTS_TO_DRAW = 1_000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


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


def port_is_free(port: int) -> bool:
    """Whether a listener could bind `port` on loopback now. SO_REUSEADDR as the JVM
    sets it: connections in TIME_WAIT from the broker's last run do not block it."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ephemeral_floor() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    return 32_768  # Linux's default


def free_port() -> int:
    """A loopback port nothing listens on, below the ephemeral range. While the broker
    is down its clients keep connecting to it; were its port ephemeral, one of those
    connections (or any other on the machine) could take it as its own local port,
    even connect to itself through it, and the broker could not come back there."""
    ceiling = _ephemeral_floor()
    if ceiling - _LOWEST_PORT >= _FEWEST_PORTS_TO_DRAW:
        for _ in range(200):
            port = _LOWEST_PORT + secrets.randbelow(ceiling - _LOWEST_PORT)
            if port_is_free(port):
                return port
    with socket.socket() as sock:  # an unusual range: let the system choose
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


NO_BOUND_MS = 2**63 - 1  # Kafka's Long.MAX_VALUE: no bound


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
        # After a crash the controller keeps the dead run's registration until its
        # session times out (default 9 s), and the new run waits for that; a 3 s session
        # with heartbeats every 0.5 s shortens a restart after SIGKILL by six seconds.
        "broker.session.timeout.ms=3000",
        "broker.heartbeat.interval.ms=500",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        # `vizita demo` stamps its records with its simulated clock, which runs 720 times
        # faster than the wall clock; Kafka 4 refuses timestamps over an hour ahead by
        # default, which failed the demo's producer five seconds into its live part.
        f"log.message.timestamp.after.max.ms={NO_BOUND_MS}",
    ]) + "\n"  # fmt: skip


@dataclass(frozen=True)
class BrokerIdentity:
    """What stays the same across a broker's restarts on one directory."""

    cluster_id: str
    port: int
    controller_port: int

    @classmethod
    def new(cls) -> BrokerIdentity:
        port = free_port()
        controller_port = free_port()
        while controller_port == port:
            controller_port = free_port()
        return cls(_cluster_id(), port, controller_port)

    @classmethod
    def read(cls, work_dir: Path) -> BrokerIdentity | None:
        """The identity of the broker formatted in `work_dir`, if one was."""
        path = work_dir / IDENTITY_FILE
        if not (path.exists() and (work_dir / "data" / "meta.properties").exists()):
            return None
        try:
            saved = json.loads(path.read_text())
            identity = cls(str(saved["cluster_id"]), int(saved["port"]),
                           int(saved["controller_port"]))  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise BrokerError(f"{path} is not a broker's identity: {exc}") from exc
        if saved.get("kafka_version") != KAFKA_VERSION:
            raise BrokerError(
                f"{work_dir} holds Kafka {saved.get('kafka_version')}'s data, not {KAFKA_VERSION}'s"
            )
        return identity

    def write(self, work_dir: Path) -> None:
        text = json.dumps({**asdict(self), "kafka_version": KAFKA_VERSION}, indent=2)
        (work_dir / IDENTITY_FILE).write_text(text + "\n")


class LocalBroker:
    """One Kafka broker process in `work_dir`; a context manager.

    The first :meth:`start` formats `work_dir` afresh (everything in it is deleted),
    unless `keep_data` is set and `work_dir` holds a broker formatted earlier; every
    later start restarts the broker on its data, at the same address."""

    def __init__(
        self, work_dir: Path, cache_dir: Path, *, heap_mb: int = 512, keep_data: bool = False
    ) -> None:
        self.work_dir = work_dir
        self.cache_dir = cache_dir
        self.heap_mb = heap_mb
        self.keep_data = keep_data
        self.identity: BrokerIdentity | None = None
        self._process: subprocess.Popen[bytes] | None = None
        # (being written, its final name) while this run's JVM writes the class archive
        self._archive_at_exit: tuple[Path, Path] | None = None

    @property
    def port(self) -> int:
        return self.identity.port if self.identity else 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 90.0) -> LocalBroker:
        if self.running:
            raise BrokerError(f"the broker at {self.bootstrap} is running already")
        jars = ensure_jars(self.cache_dir)
        if self.identity is None and self.keep_data:
            self.identity = BrokerIdentity.read(self.work_dir)
        fresh = self.identity is None
        if fresh:
            self._format(jars)
        self._start_process(jars, timeout)
        log.info("kafka.started", bootstrap=self.bootstrap, version=KAFKA_VERSION, fresh=fresh)
        return self

    def _format(self, jars: Path) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)
        (self.work_dir / "logs").mkdir(parents=True)
        identity = BrokerIdentity.new()
        config = self._write_config(identity)
        self._java(jars, "kafka.tools.StorageTool", "format", "-t", identity.cluster_id,
                   "-c", str(config))  # fmt: skip
        identity.write(self.work_dir)
        self.identity = identity

    def _write_config(self, identity: BrokerIdentity) -> Path:
        config = self.work_dir / "server.properties"
        config.write_text(
            _server_properties(self.work_dir / "data", identity.port, identity.controller_port)
        )
        return config

    def _start_process(self, jars: Path, timeout: float) -> None:
        assert self.identity is not None, "formatted or reopened first"
        for port in (self.identity.port, self.identity.controller_port):
            if not port_is_free(port):
                raise BrokerError(
                    f"port {port} of the broker in {self.work_dir} is taken by another process"
                )
        config = self._write_config(self.identity)
        self._process = self._spawn(jars, "kafka.Kafka", str(config))
        self._wait_ready(timeout)

    def _command(self, jars: Path, main: str, *args: str, heap_mb: int) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerError("java is not on PATH; Kafka needs Java 17+")
        # The client compiler only: a development broker carries little traffic, and the
        # optimising compiler's work at start would take a core from the tests it serves.
        return [java, f"-Xmx{heap_mb}m", "-Xms64m", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
                *self._class_archive_options(jars, java, main),
                "-Djava.awt.headless=true", f"-Dkafka.logs.dir={self.work_dir / 'logs'}",
                f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.xml'}",
                "-cp", f"{jars}/*", main, *args]  # fmt: skip

    def _class_archive_options(self, jars: Path, java: str, main: str) -> list[str]:
        """Class data sharing: the JVM maps the broker's classes from an archive instead
        of loading and verifying them, which halves the time to a listening broker
        here. The first broker to stop cleanly writes the archive, one per Java build."""
        archive = _archive_path(jars, java)
        if archive.exists():
            return [f"-XX:SharedArchiveFile={archive}"]
        if main != "kafka.Kafka":
            return []
        # A name of its own: brokers of other test sessions may write theirs meanwhile.
        being_written = archive.with_name(f"{archive.name}.{os.getpid()}.{uuid.uuid4().hex}")
        self._archive_at_exit = (being_written, archive)
        return [f"-XX:ArchiveClassesAtExit={being_written}"]

    def _java(self, jars: Path, main: str, *args: str) -> None:
        done = subprocess.run(  # noqa: S603  # argv built here, no shell
            self._command(jars, main, *args, heap_mb=256),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise BrokerError(f"{main} failed: {done.stderr[-2000:] or done.stdout[-2000:]}")

    def _spawn(self, jars: Path, main: str, *args: str) -> subprocess.Popen[bytes]:
        # Appended: the log of every run on this directory stays, for a failed restart.
        with (self.work_dir / "logs" / "stdout.log").open("ab") as out:
            return subprocess.Popen(  # noqa: S603  # argv built here, no shell
                self._command(jars, main, *args, heap_mb=self.heap_mb),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the JVM
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                self._process = None
                self._settle_class_archive(exited_cleanly=False)
                raise BrokerError(f"the broker exited early:\n{self._log_tail()}")
            # A refused connection costs nothing; a Kafka client is made only once the
            # port listens.
            if _listens(self.port) and answers(self.bootstrap):
                return
            time.sleep(0.05)
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
        """Controlled shutdown (SIGTERM); the data stays for the next start."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            self._settle_class_archive(exited_cleanly=False)
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            self._settle_class_archive(exited_cleanly=False)
        else:
            self._settle_class_archive(exited_cleanly=True)
        log.info("kafka.stopped", bootstrap=self.bootstrap)

    def kill(self) -> None:
        """SIGKILL, as a crash: no controlled shutdown, nothing flushed by the broker
        (what it wrote is in the page cache, as after a process crash)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            self._settle_class_archive(exited_cleanly=False)
            return
        process.kill()
        process.wait(10)
        self._settle_class_archive(exited_cleanly=False)
        log.info("kafka.killed", bootstrap=self.bootstrap)

    def _settle_class_archive(self, *, exited_cleanly: bool) -> None:
        """Keep the archive the JVM wrote at its exit; a JVM killed or failed may have
        left half of one, or one of too few classes."""
        written, self._archive_at_exit = self._archive_at_exit, None
        if written is None:
            return
        being_written, final = written
        if exited_cleanly and being_written.exists() and being_written.stat().st_size > 0:
            os.replace(being_written, final)  # atomic: another broker may be mapping it
        else:
            being_written.unlink(missing_ok=True)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _listens(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _archive_path(jars: Path, java: str) -> Path:
    """The class archive for these jars and this Java build: an archive made by another
    build is refused by the JVM (with a warning, and a slow start)."""
    binary = Path(java).resolve()
    stat = binary.stat()
    build = hashlib.sha256(f"{binary}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    return jars / f"broker-{build[:12]}.jsa"


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
