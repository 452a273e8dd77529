"""``arc up``: the whole centre on one machine, supervised.

Theory of operation. With neither ``ARC_DATABASE_URL`` nor
``ARC_KAFKA_BOOTSTRAP`` set, ``arc up`` starts the embedded PostgreSQL (data
under ``ARC_DATA_DIR``) and the embedded broker, applies the migrations, lets
the ``arc_app`` role (and ``arc_config``, the console's configuration writes)
log in, creates the topics, and runs each service as a
child process (``arc logwriter``, ``arc dispatcher``, ``arc receiver``, ``arc
console``) with the connection settings in its environment: the services run exactly as they do in
production, one process each, so they use both cores and one can be killed
and restarted alone.

It then supervises: a service that dies is started again (with a growing
pause if it keeps dying); a broker that dies is started again on the same
port, its topics recreated (it keeps them in memory only, which is why the
ack policy here is ``database``); PostgreSQL likewise. Once a partition of
the embedded broker holds ``ARC_BROKER_LOG_LIMIT`` records and all of them
are stored, it starts the broker afresh, the receivers held meanwhile
(arc.embedded.rotation): that broker's every read costs more the longer its
log. Ctrl-C or SIGTERM stops everything in order: the receiver first (no new
signals), then the dispatcher and the log writer, then the broker and the
database.

Every endpoint is printed once, one line each, in a stable form for scripts::

    database: postgresql://postgres:***@127.0.0.1:PORT/arc
    broker: 127.0.0.1:PORT
    dc09: tcp://127.0.0.1:PORT udp://127.0.0.1:PORT
    logwriter: consuming arc.signals, arc.quarantine
    dispatcher: consuming arc.signals, arc.commands
    http: http://127.0.0.1:PORT
    arc: ready (Ctrl-C stops)

(``demo: ...`` too with ``--demo``, among them ``demo: console login NAME / PASSWORD``
for each demo login; the order of the service lines may vary.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from arc import bus, db, runtime
from arc.config import Settings
from arc.embedded import EmbeddedBroker, EmbeddedPostgres, rotation, topics
from arc.process import (
    CONTROL_PREFIX,
    HOLD_SENDS,
    LOG_STARTED_OVER,
    LOG_STARTS_OVER,
    RELEASE_SENDS,
    STORE_NOW,
    stop_event,
)

logger = logging.getLogger(__name__)

_RESTART_PAUSES = (0.5, 1.0, 2.0, 5.0, 10.0)
_HEALTHY_AFTER = 30.0  # seconds a child must live before its pause resets
_LOG_CHECK_EVERY = 10.0  # seconds between looks at the embedded broker's log length
# Seconds the readers get to store the broker's whole log while the receivers
# are held (they answer late, within the ACK timeout), and the pause before
# trying again when they did not.
_DRAIN_WITHIN = 3.0
_DRAIN_POLL = 0.005  # seconds between two looks, the receivers held meanwhile
# Seconds the dispatcher stores every site state with each batch before the receivers
# are held (it does so for STORE_NOW_FOR seconds, arc.dispatch.service).
_STORE_AHEAD = 0.3
_ROTATION_RETRY = 30.0
# Seconds a reader gets to start over on the new log in place, before it is restarted.
_START_OVER_WITHIN = 3.0


@dataclass
class Child:
    """A service process that ``arc up`` keeps running."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None  # when a dead child is due to start again
    relay: asyncio.Task[None] | None = field(default=None, repr=False)
    # Set by the child's first line on stdout: it prints it once it serves.
    ready: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    # Its control lines (arc.process.control_line), the words only.
    notices: asyncio.Queue[str] = field(default_factory=asyncio.Queue, repr=False)

    @property
    def serving(self) -> bool:
        """Whether it runs and said it serves (so it handles the signals arc up sends)."""
        return self.process is not None and self.process.returncode is None and self.ready.is_set()

    async def start(self, announce: Callable[[str], None]) -> None:
        """Start the process; its stdout lines (endpoints) are relayed to ``announce``."""
        self.ready = asyncio.Event()  # set by this process's first line, not an earlier one's
        self.notices = asyncio.Queue()
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        self.started_at = time.monotonic()
        self.relay = asyncio.create_task(self._relay(self.process, announce))

    async def start_again(self, announce: Callable[[str], None]) -> None:
        """Start it after ``arc up`` stopped it on purpose: no failure is counted."""
        self.failures = 0
        await self.start(announce)

    async def _relay(
        self, process: asyncio.subprocess.Process, announce: Callable[[str], None]
    ) -> None:
        assert process.stdout is not None  # noqa: S101 - opened with PIPE
        async for line in process.stdout:
            text = line.decode(errors="replace").rstrip("\n")
            if text.startswith(CONTROL_PREFIX):
                self.notices.put_nowait(text.removeprefix(CONTROL_PREFIX))
                continue
            announce(text)
            self.ready.set()

    def tell(self, sig: signal.Signals) -> None:
        """Send ``sig`` if it runs; a notice it gave before is forgotten (see ``notice``)."""
        while not self.notices.empty():
            self.notices.get_nowait()
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(sig)

    async def notice(self, word: str, *, within: float) -> bool:
        """Wait for the control line ``word``; False if it did not come in time."""
        try:
            async with asyncio.timeout(within):
                while await self.notices.get() != word:
                    pass
        except TimeoutError:
            return False
        return True

    async def stop(self, *, within: float) -> None:
        """SIGTERM, then SIGKILL after ``within`` seconds."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), within)
        except TimeoutError:
            logger.warning("%s did not stop within %.0fs: killing it", self.name, within)
            process.kill()
            await process.wait()
        if self.relay is not None:
            await asyncio.wait((self.relay,), timeout=1.0)


async def _seed_logins(admin_dsn: SecretStr, settings: Settings) -> list[str]:
    """The demo's console logins, one per role (after the staff: a guard login is one of them)."""
    from arc.auth.demo import seed_demo_users

    conn = await db.connect(admin_dsn)
    try:
        return await seed_demo_users(conn=conn, data_dir=settings.data_dir)
    finally:
        await conn.close()


def free_dual_port(host: str) -> int:
    """A port free for both TCP and UDP on ``host`` (DC-09 serves both on one port)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise OSError(f"no port free for both TCP and UDP on {host}")


def _once(announce: Callable[[str], None]) -> Callable[[str], None]:
    """``announce`` for each line once: receivers (and restarts) repeat their endpoints."""
    seen: set[str] = set()

    def once(line: str) -> None:
        if line not in seen:
            seen.add(line)
            announce(line)

    return once


class Centre:
    """The embedded servers and the service processes of one ``arc up``."""

    def __init__(self, settings: Settings, announce: Callable[[str], None]) -> None:
        self.settings = settings
        self.announce = _once(announce)
        self.postgres: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None
        self.children: list[Child] = []
        self._broker_port = 0
        self._admin_dsn: SecretStr | None = None
        self._topics: Mapping[str, int] = bus.TOPIC_PARTITIONS  # the embedded broker's: start()
        self._broker_since = time.monotonic()  # when the embedded broker now running started
        self._log_check_at = time.monotonic() + _LOG_CHECK_EVERY

    async def start(self, *, demo: bool) -> None:
        """Bring the servers up, migrate, then start the services."""
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        admin_dsn, app_dsn, config_dsn = await self._database()
        self._admin_dsn = admin_dsn
        bootstrap = await self._broker()
        if self.broker is not None:
            conn = await db.connect(admin_dsn)
            try:
                self._topics = await topics.partitions(conn)
            finally:
                await conn.close()
        await bus.ensure_topics(bootstrap, self._topics)
        if demo:
            from arc.demo import seed  # only here: the demo is no part of the services

            for line in await seed(admin_dsn, settings):
                self.announce(line)
            for line in await _seed_logins(admin_dsn, settings):
                self.announce(line)
        port = settings.dc09_port or free_dual_port(settings.listen_host)
        env = {
            name: value
            for name, value in os.environ.items()
            # Least privilege: no owner's DSN for any service, arc_config's for the console only.
            if not name.startswith(("ARC_DATABASE", "ARC_CONFIG_DATABASE"))
        }
        env.update(
            ARC_DATABASE_URL=app_dsn.get_secret_value(),
            ARC_KAFKA_BOOTSTRAP=bootstrap,
            # Resolved here: with a bootstrap in its environment a child would
            # otherwise take the broker policy of a real cluster.
            ARC_ACK_POLICY=settings.ack_policy.value,
            ARC_DC09_PORT=str(port),
            # Chosen here when any will do: a restarted console keeps its address.
            ARC_HTTP_PORT=str(settings.http_port or free_dual_port(settings.listen_host)),
            ARC_DATA_DIR=str(settings.data_dir.resolve()),
        )
        parent = ["--stop-with-parent", str(os.getpid())]
        if self.broker is not None:
            parent.append("--embedded-broker")  # its failures are arc up's to report
        names = ["logwriter", "dispatcher", "console"] + [
            "receiver" if n == 0 else f"receiver-{n + 1}" for n in range(settings.receivers)
        ]
        console_env = dict(env)
        if config_dsn is not None:
            console_env["ARC_CONFIG_DATABASE_URL"] = config_dsn.get_secret_value()
        for name in names:
            argv = [sys.executable, "-m", "arc.cli", name.split("-")[0], *parent]
            if name in ("logwriter", "dispatcher"):
                argv.append("--all-partitions")  # the only one: no group to join
            self.children.append(Child(name, argv, console_env if name == "console" else env))
        for child in self.children:
            await child.start(self.announce)
        for child in self.children:
            await self._until_ready(child)

    async def _until_ready(self, child: Child, within: float = 60.0) -> None:
        """Wait for a child's first line; fail if it exits or takes too long."""
        ready = asyncio.create_task(child.ready.wait())
        assert child.process is not None  # noqa: S101 - started
        exited = asyncio.create_task(child.process.wait())
        done, _ = await asyncio.wait((ready, exited), timeout=within, return_when="FIRST_COMPLETED")
        ready.cancel()
        exited.cancel()
        if ready not in done:
            status = child.process.returncode
            raise RuntimeError(
                f"{child.name} did not start within {within:.0f}s"
                if status is None
                else f"{child.name} exited with status {status} while starting (see its log above)"
            )

    async def _database(self) -> tuple[SecretStr, SecretStr, SecretStr | None]:
        """The owner's, arc_app's and arc_config's DSNs (the last None: not configured)."""
        settings = self.settings
        if not settings.embedded_database:
            admin = settings.admin_database_url
            app = settings.database_url
            assert admin is not None and app is not None  # noqa: S101 - not embedded
            await runtime.migrate(admin)
            self.announce("database: (ARC_DATABASE_URL)")
            return admin, app, settings.config_database_url
        directory = runtime.postgres_directory(settings)
        self.postgres = EmbeddedPostgres(directory)
        await asyncio.to_thread(self.postgres.start)
        self.postgres.pin_port()  # a restart must not move it: the services' DSN names it
        admin = self.postgres.dsn()
        await runtime.migrate(admin)
        app = await runtime.enable_login(
            admin, directory, role=runtime.APP_ROLE, stored_in="app-password"
        )
        config = await runtime.enable_login(
            admin, directory, role=runtime.CONFIG_ROLE, stored_in="config-password"
        )
        self.announce(f"database: {self.postgres.display_dsn()}")
        return admin, app, config

    async def _broker(self) -> str:
        settings = self.settings
        if not settings.embedded_broker:
            assert settings.kafka_bootstrap is not None  # noqa: S101
            self.announce(f"broker: {settings.kafka_bootstrap}")
            return settings.kafka_bootstrap
        broker = await self._start_broker()
        self._broker_port = broker.port
        self.announce(f"broker: {broker.bootstrap}")
        return broker.bootstrap

    async def _start_broker(self) -> EmbeddedBroker:
        """Start an embedded broker on ``_broker_port`` (0: any free one); now ``self.broker``."""
        data = self.settings.data_dir
        self.broker = EmbeddedBroker(
            port=self._broker_port, log_path=data / "broker.log", pid_file=data / "broker.pid"
        )
        await asyncio.to_thread(self.broker.start)
        self._broker_since = time.monotonic()
        return self.broker

    async def supervise(self, stop: asyncio.Event) -> None:
        """Restart whatever dies until ``stop`` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
            if stop.is_set():
                return
            try:
                if self.postgres is not None and not self.postgres.running:
                    logger.error("the embedded PostgreSQL died: starting it again on its port")
                    await asyncio.to_thread(self.postgres.stop)
                    await asyncio.to_thread(self.postgres.start)  # its port was fixed at start
                if self.broker is not None and not self.broker.running:
                    logger.error("the embedded broker died (its log is gone): starting it again")
                    await self._restart_broker()
            except Exception:  # the next round tries again; the centre stays up
                logger.exception("could not start a server again")
                continue
            for child in self.children:
                await self._revive(child)
            if time.monotonic() >= self._log_check_at:
                self._log_check_at = time.monotonic() + _LOG_CHECK_EVERY
                try:
                    await self._keep_broker_log_short()
                except Exception:  # the centre stays up; the next look tries again
                    logger.exception("could not start the embedded broker afresh")

    async def _restart_broker(self) -> None:
        """A new, empty broker on the same port, its log read from offset 0.

        The log writer tells a lost log by its stored offsets lying beyond the
        new log's end, which holds only while the new log is still empty when
        it resumes: so the receivers stop first and start again only once the
        log writer is back. Nothing they had not ACKed is lost (panels resend);
        nothing they had ACKed under ack policy ``database`` was only in the broker.
        """
        receivers = self._receivers()
        writers = [c for c in self.children if c not in receivers]
        for child in (*receivers, *writers):
            await child.stop(within=self._stop_within)
        await self._new_broker()
        for group in (writers, receivers):
            for child in group:
                await child.start_again(self.announce)
            for child in group:
                await self._until_ready(child)

    async def _new_broker(self) -> None:
        """Kill the broker; start an empty one on the same port, with the topics."""
        assert self.broker is not None  # noqa: S101 - only called for the embedded broker
        # Called once the readers stored its whole log: nothing in it is needed.
        await asyncio.to_thread(functools.partial(self.broker.stop, discard=True))
        broker = await self._start_broker()
        await bus.ensure_topics(broker.bootstrap, self._topics)

    async def _keep_broker_log_short(self) -> None:
        """Start the embedded broker afresh once its log is long and stored (see rotation)."""
        limit = self.settings.broker_log_limit
        if self.broker is None or not self.broker.running or limit == 0:
            return
        assert self._admin_dsn is not None  # noqa: S101 - set by start()
        ends = await bus.log_ends(self.broker.bootstrap, self._topics)
        age = time.monotonic() - self._broker_since
        if not rotation.due(ends, limit, age=age, interval=self.settings.broker_log_interval):
            return
        # The console's commands are held with the receivers' signals.
        senders = [*self._receivers(), *(c for c in self.children if c.name == "console")]
        readers = [c for c in self.children if c.name in ("logwriter", "dispatcher")]
        if not self._may_hold(senders, readers):
            return
        dispatchers = [c for c in readers if c.name == "dispatcher"]
        # Its site states are held up to a second: stored with every batch from
        # now, they are at most a batch behind when the receivers are held.
        self._signal(dispatchers, STORE_NOW)
        await asyncio.sleep(_STORE_AHEAD)
        if not self._may_hold(senders, readers):
            return  # one ended meanwhile
        restarted: list[Child] = []
        failed: Exception | None = None
        async with contextlib.AsyncExitStack() as opened:
            conn = await db.connect(self._admin_dsn)
            opened.push_async_callback(conn.close)
            # Started before the hold: a client's start took 15-25 ms of it.
            log = await opened.enter_async_context(
                bus.LogEnds(self.broker.bootstrap, rotation.READERS)
            )
            held_at = time.monotonic()
            try:
                self._signal(senders, HOLD_SENDS)
                self._signal(dispatchers, STORE_NOW)  # and its next batch at once
                late = await self._until_stored(conn, log)
                await log.stop()  # before its broker goes
                if late:
                    logger.warning(
                        "the embedded broker's log is long, but not all of it is stored (%s):"
                        " trying again in %.0fs",
                        "; ".join(late[:4]),
                        _ROTATION_RETRY,
                    )
                    self._log_check_at = time.monotonic() + _ROTATION_RETRY
                else:
                    try:
                        await self._new_broker()
                        await rotation.start_positions_over(conn)
                        restarted = await self._start_readers_over(readers, conn)
                    except Exception as error:  # the old broker is gone: see below
                        failed = error
            finally:
                # The readers read the new log from its start (those restarted once
                # they are up): what the receivers send from now on waits there for them.
                # Not after a failure: a reader may still be at an old offset.
                if failed is None:
                    self._signal(senders, RELEASE_SENDS)
                held = time.monotonic() - held_at
        if failed is not None:
            # Whatever is missing (a topic, a stored position at 0, a reader told),
            # the way back is the one of a broker that died: every service
            # stopped, an empty broker, the readers up before the receivers.
            logger.error(
                "could not start the embedded broker afresh in place (%s: %s):"
                " starting it and every service again",
                type(failed).__name__,
                failed,
            )
            await self._restart_broker()
            return
        for child in restarted:
            await self._until_ready(child)
        if not late:
            logger.info(
                "started the embedded broker afresh: a partition held %d records or more,"
                " all of them stored (%.2fs with the receivers held; %s)",
                limit,
                held,
                f"restarted {', '.join(c.name for c in restarted)}, back after"
                f" {time.monotonic() - held_at:.1f}s"
                if restarted
                else "the log writer and the dispatcher read on in place",
            )

    async def _start_readers_over(self, readers: list[Child], conn: db.Connection) -> list[Child]:
        """Tell the readers to read the new log from 0; restart any that does not say it did.

        Call with the receivers held and the stored positions at 0: the new log
        is empty, so nothing is read at an old offset meanwhile.
        """
        for child in readers:
            child.tell(LOG_STARTS_OVER)
        answered = await asyncio.gather(
            *(child.notice(LOG_STARTED_OVER, within=_START_OVER_WITHIN) for child in readers)
        )
        stuck = [child for child, ok in zip(readers, answered, strict=True) if not ok]
        if not stuck:
            return []
        logger.warning(
            "%s did not start over on the new log within %.0fs: restarting",
            ", ".join(c.name for c in stuck),
            _START_OVER_WITHIN,
        )
        await asyncio.gather(*(child.stop(within=self._stop_within) for child in stuck))
        # A stopping dispatcher stores its site states at the old log's offsets.
        await rotation.start_positions_over(conn)
        for child in stuck:
            await child.start_again(self.announce)
        return stuck

    async def _until_stored(
        self, conn: db.Connection, log: bus.LogEnds, *, within: float = _DRAIN_WITHIN
    ) -> list[str]:
        """Wait until the readers stored the broker's whole log and it stays put; who is late."""
        deadline = time.monotonic() + within
        previous: rotation.Ends | None = None
        while True:
            ends = await log.now()
            late = rotation.behind(ends, await rotation.stored_positions(conn))
            if not late and (ends == previous or within == 0.0):
                return []
            if time.monotonic() >= deadline:
                return late or ["the log still grows"]
            previous = ends
            await asyncio.sleep(_DRAIN_POLL)

    def _may_hold(self, senders: list[Child], readers: list[Child]) -> bool:
        """Whether the broker runs and every service serves, so it may hold them.

        One starting (or dead) may not handle the signals yet: their default
        action ends a process. The next look tries again.
        """
        running = self.broker is not None and self.broker.running
        return running and all(child.serving for child in (*senders, *readers))

    def _receivers(self) -> list[Child]:
        return [c for c in self.children if c.name.startswith("receiver")]

    @staticmethod
    def _signal(children: list[Child], sig: signal.Signals) -> None:
        for child in children:
            child.tell(sig)

    @property
    def _stop_within(self) -> float:
        """Seconds a service gets to stop (it finishes what waits for durability) before a kill."""
        return self.settings.ack_timeout + 5

    async def _revive(self, child: Child) -> None:
        """Start a dead child again once its pause (longer each quick death) is over."""
        process = child.process
        if process is None or process.returncode is None:
            return
        now = time.monotonic()
        if child.restart_at is None:
            lived = now - child.started_at
            child.failures = 0 if lived > _HEALTHY_AFTER else child.failures + 1
            pause = _RESTART_PAUSES[min(child.failures, len(_RESTART_PAUSES) - 1)]
            child.restart_at = now + pause
            logger.error(
                "%s exited with status %s after %.0fs: starting it again in %.1fs",
                child.name,
                process.returncode,
                lived,
                pause,
            )
        if now >= child.restart_at:
            child.restart_at = None
            await child.start(self.announce)

    async def stop(self) -> None:
        """Stop in order: receiver, log writer, broker, database."""
        for child in reversed(self.children):
            await child.stop(within=self.settings.ack_timeout + 10)
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop)


async def run_up(settings: Settings, *, demo: bool, announce: Callable[[str], None]) -> int:
    """Run the centre until SIGINT or SIGTERM; return the exit status."""
    stop = stop_event()
    centre = Centre(settings, announce)
    try:
        await centre.start(demo=demo)
        announce("arc: ready (Ctrl-C stops)")
        await centre.supervise(stop)
    finally:
        await centre.stop()
    return 0
