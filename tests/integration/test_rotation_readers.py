"""The readers' part in replacing the embedded broker: control lines, and the restart fallback.

The whole replacement under load, with the real services, is in test_arc_up.py;
here ``arc up``'s side is driven against small stand-in processes, so that a
reader that never answers can be had at will.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import asyncpg
import pytest
from pydantic import SecretStr

from arc import bus, db
from arc.config import Settings
from arc.dispatch import service
from arc.dispatch.service import Dispatcher, make_engine
from arc.embedded import EmbeddedBroker, rotation
from arc.logwriter.writer import LogWriter, targets
from arc.model import encode
from arc.process import (
    HOLD_SENDS,
    LOG_STARTED_OVER,
    LOG_STARTS_OVER,
    RELEASE_SENDS,
    STORE_NOW,
    control_line,
)
from arc.up import Centre, Child
from tests.integration.conftest import Databases
from tests.integration.test_logwriter_plans import signal_message
from tests.integration.up_helpers import until

pytestmark = [pytest.mark.integration, pytest.mark.asyncio, pytest.mark.timeout(90)]

# A reader that answers LOG_STARTS_OVER as the log writer and the dispatcher do,
# and lives through the dispatcher's STORE_NOW.
_ANSWERS = f"""
import signal, sys, time
def started_over(*_):
    print({control_line(LOG_STARTED_OVER)!r}, flush=True)
signal.signal({int(LOG_STARTS_OVER)}, started_over)
signal.signal({int(STORE_NOW)}, lambda *_: None)
print("reader: consuming", flush=True)
while True:
    time.sleep(1)
"""

# A reader that never answers and, stopped, stores an old log's offset (as a
# stopping dispatcher stores its site states at the offsets it holds).
_DEAF = """
import asyncio, os, signal, sys, time
import asyncpg
from arc.process import LOG_STARTS_OVER
signal.signal(LOG_STARTS_OVER, signal.SIG_IGN)
def stopped(*_):
    async def store():
        conn = await asyncpg.connect(os.environ["DSN"])
        await conn.execute("UPDATE dispatcher_state SET next_offset = 12345")
        await conn.close()
    asyncio.run(store())
    sys.exit(0)
signal.signal(signal.SIGTERM, stopped)
print("reader: consuming", flush=True)
while True:
    time.sleep(1)
"""

# A receiver that notes which of arc up's signals reached it.
_SENDER = f"""
import os, signal, time
def noting(word):
    def note(*_):
        with open(os.environ["TOLD"], "a") as told:
            told.write(word + "\\n")
    return note
signal.signal({int(HOLD_SENDS)}, noting("held"))
signal.signal({int(RELEASE_SENDS)}, noting("released"))
print("receiver: serving", flush=True)
while True:
    time.sleep(1)
"""


def _child(name: str, script: str, dsn: str = "") -> Child:
    return Child(name, [sys.executable, "-c", script], {"DSN": dsn, "PATH": "/usr/bin:/bin"})


async def test_control_lines_reach_arc_up_only_and_wait_for_their_word() -> None:
    script = (
        "print('first: serving'); "
        f"print({control_line('other')!r}); print({control_line(LOG_STARTED_OVER)!r}); "
        "print('second line', flush=True); import time; time.sleep(30)"
    )
    relayed: list[str] = []
    child = _child("reader", script)
    await child.start(relayed.append)
    try:
        async with asyncio.timeout(10):
            await child.ready.wait()
        assert child.serving
        assert await child.notice(LOG_STARTED_OVER, within=5.0)  # past the other word

        async def both_relayed() -> bool:
            return len(relayed) == 2

        await until(both_relayed, within=5, what="the two plain lines relayed")
        assert relayed == ["first: serving", "second line"]
        # tell() forgets what came before: no word is waiting now.
        child.tell(LOG_STARTS_OVER)  # the default action of SIGUSR2 ends it
        assert not await child.notice(LOG_STARTED_OVER, within=0.2)
    finally:
        await child.stop(within=5.0)
    assert not child.serving


async def test_a_reader_that_does_not_start_over_in_place_is_restarted_at_offset_0(
    dbs: Databases, tmp_path: Path
) -> None:
    owner = dbs.owner
    await owner.execute(
        "INSERT INTO dispatcher_state (topic, shard, next_offset) VALUES ($1, 0, 0)", bus.SIGNALS
    )
    centre = Centre(Settings(data_dir=tmp_path, ack_timeout=1.0), lambda _: None)
    answers = _child("logwriter", _ANSWERS)
    deaf = _child("dispatcher", _DEAF, dbs.app_dsn)  # arc_app, as the real one
    readers = [answers, deaf]
    for child in readers:
        await child.start(lambda _: None)
    try:
        async with asyncio.timeout(20):
            for child in readers:
                await child.ready.wait()
        first = {child.name: child.process for child in readers}
        async with asyncio.timeout(30):
            restarted = await centre._start_readers_over(readers, owner)
        assert restarted == [deaf]
        assert answers.process is first["logwriter"]  # it went on in place
        assert deaf.process is not first["dispatcher"] and deaf.process is not None
        assert first["dispatcher"] is not None and first["dispatcher"].returncode == 0
        # What the stopping reader stored of the old log was set to 0 again.
        assert await owner.fetchval("SELECT next_offset FROM dispatcher_state") == 0
    finally:
        for child in readers:
            await child.stop(within=5.0)


async def _centre_due_for_a_new_broker(
    dbs: Databases, database_url: str, tmp_path: Path
) -> tuple[Centre, EmbeddedBroker]:
    """A centre whose broker holds one signal that both readers stored: it may be replaced."""
    await dbs.owner.execute(
        "INSERT INTO logwriter_state (topic, shard, next_offset, chain_seq, chain_hash)"
        " VALUES ($1, 0, 1, 1, '\\x00')",
        bus.SIGNALS,
    )
    await dbs.owner.execute(
        "INSERT INTO dispatcher_state (topic, shard, next_offset) VALUES ($1, 0, 1)", bus.SIGNALS
    )
    settings = Settings(
        data_dir=tmp_path, ack_timeout=1.0, broker_log_limit=1, broker_log_interval=0
    )
    centre = Centre(settings, lambda _: None)
    centre._admin_dsn = SecretStr(database_url)
    broker = await centre._start_broker()
    centre._broker_port = broker.port
    try:
        await bus.ensure_topics(broker.bootstrap, centre._topics)
        async with bus.make_producer(broker.bootstrap) as producer:
            await producer.send_and_wait(bus.SIGNALS, encode(signal_message(0)), partition=0)
    except BaseException:
        broker.stop()
        raise
    return centre, broker


async def _start_children(centre: Centre) -> None:
    for child in centre.children:
        await child.start(lambda _: None)
    async with asyncio.timeout(20):
        for child in centre.children:
            await child.ready.wait()


async def test_a_failure_once_the_new_broker_is_up_starts_every_service_again_in_order(
    dbs: Databases, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receivers are not released to the new log while a reader may be at an old offset."""
    centre, old_broker = await _centre_due_for_a_new_broker(dbs, database_url, tmp_path)
    told = tmp_path / "told"
    receiver = Child("receiver", [sys.executable, "-c", _SENDER], {"TOLD": str(told)})
    centre.children = [_child("logwriter", _ANSWERS), _child("dispatcher", _ANSWERS), receiver]

    async def the_database_goes_away(conn: db.Connection) -> None:
        raise ConnectionResetError("the database went away")

    monkeypatch.setattr(rotation, "start_positions_over", the_database_goes_away)
    try:
        await _start_children(centre)
        first = {child.name: child.process for child in centre.children}
        async with asyncio.timeout(60):
            await centre._keep_broker_log_short()
        # Held, then stopped: never released onto a log a reader may read at an old offset.
        assert told.read_text().split() == ["held"]
        for child in centre.children:
            assert child.serving and child.process is not first[child.name], child.name
        readers_started = max(c.started_at for c in centre.children if c is not receiver)
        assert receiver.started_at > readers_started  # once the readers were up
        assert centre.broker is not None and centre.broker is not old_broker
        assert centre.broker.port == centre._broker_port  # the port the services know
        ends = await bus.log_ends(centre.broker.bootstrap, rotation.READERS)
        assert ends and set(ends.values()) == {0}  # an empty log, its topics there
    finally:
        for child in centre.children:
            await child.stop(within=5.0)
        if centre.broker is not None:
            centre.broker.stop()
        old_broker.stop()


async def test_a_reader_that_ends_before_the_hold_holds_nothing_and_keeps_the_broker(
    dbs: Databases, database_url: str, tmp_path: Path
) -> None:
    """arc up asks the dispatcher to store its site states, then holds: not if one ended meanwhile.

    Its successor might not handle the signals yet (their default action ends a process).
    """
    centre, broker = await _centre_due_for_a_new_broker(dbs, database_url, tmp_path)
    told = tmp_path / "told"
    receiver = Child("receiver", [sys.executable, "-c", _SENDER], {"TOLD": str(told)})
    # Ended by STORE_NOW, as a dispatcher that had not yet set its handlers would be.
    ending = _child(
        "dispatcher", "print('reader: consuming', flush=True)\nimport time\ntime.sleep(60)"
    )
    centre.children = [_child("logwriter", _ANSWERS), ending, receiver]
    try:
        await _start_children(centre)
        async with asyncio.timeout(30):
            await centre._keep_broker_log_short()
        assert not ending.serving
        assert not told.exists()  # the receiver was never held
        assert centre.broker is broker and broker.running
        ends = await bus.log_ends(broker.bootstrap, [bus.SIGNALS])
        assert ends[(bus.SIGNALS, 0)] == 1  # its log kept, though stored and due
    finally:
        for child in centre.children:
            await child.stop(within=5.0)
        broker.stop()


# Signals in the old log, and in the new one: past the old log's end, so a reader
# that read on at its old offset would skip the new log's first records.
OLD, NEW = 10, 12


class _Reader(Protocol):
    log_replaced: asyncio.Event

    async def run(self, stop: asyncio.Event) -> None: ...


class _OwnBroker:
    """A broker of the test's own, replaced on its port as ``arc up`` does."""

    def __init__(self, tmp_path: Path) -> None:
        self._log = tmp_path / "broker.log"
        self.broker = EmbeddedBroker(log_path=self._log)
        self.broker.start()
        self.bootstrap = self.broker.bootstrap

    async def send(self, numbers: range) -> None:
        """Signals ``numbers`` (test_logwriter_plans.signal_message), all to partition 0."""
        async with bus.make_producer(self.bootstrap) as producer:
            for n in numbers:
                await producer.send_and_wait(bus.SIGNALS, encode(signal_message(n)), partition=0)

    async def replace(self, owner: asyncpg.Connection[asyncpg.Record]) -> None:
        """An empty broker on the same port, the topics created, the stored positions at 0."""
        port = self.broker.port
        self.broker.stop()
        self.broker = EmbeddedBroker(port=port, log_path=self._log)
        self.broker.start()
        await bus.ensure_topics(self.bootstrap)
        await rotation.start_positions_over(owner)

    def stop(self) -> None:
        self.broker.stop()


async def _across_a_replaced_log(
    own: _OwnBroker,
    reader: _Reader,
    started_over: asyncio.Event,
    owner: asyncpg.Connection[asyncpg.Record],
    counted: str,
) -> None:
    """The reader reads OLD signals; paused, the log is replaced and NEW sent; then it reads on."""

    async def reached(count: int) -> None:
        async def check() -> bool:
            return bool(await owner.fetchval(counted) >= count)

        await until(check, within=20, what=f"{count} counted by {counted!r}")

    async def run_until(count: int) -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(reader.run(stop))
        try:
            await reached(count)
        finally:
            stop.set()
            await running

    await own.send(range(OLD))
    await run_until(OLD)
    await own.replace(owner)
    await own.send(range(OLD, OLD + NEW))  # offsets 0..11 of the new log
    reader.log_replaced.set()
    await run_until(OLD + NEW)
    assert started_over.is_set()


async def test_the_log_writer_reads_a_replaced_log_from_its_start_in_place(
    dbs: Databases, tmp_path: Path
) -> None:
    own = _OwnBroker(tmp_path)
    pool = await db.create_pool(dbs.app_dsn, max_size=2, session_reset=False)
    consumer = bus.make_consumer(own.bootstrap, group_id=None)
    started_over = asyncio.Event()
    chosen = targets()
    writer = LogWriter(pool=pool, consumer=consumer, targets=chosen, on_start_over=started_over.set)
    try:
        await bus.ensure_topics(own.bootstrap)
        await consumer.start()
        partitions = [bus.TopicPartition(t.topic, 0) for t in chosen]
        consumer.assign(partitions)
        await writer.resume(partitions)
        await _across_a_replaced_log(
            own, writer, started_over, dbs.owner, "SELECT count(*) FROM signal_log"
        )
        state = await dbs.owner.fetchrow(
            "SELECT next_offset, chain_seq FROM logwriter_state WHERE topic = $1 AND shard = 0",
            bus.SIGNALS,
        )
        assert state is not None
        assert (state["next_offset"], state["chain_seq"]) == (NEW, OLD + NEW)  # one chain
    finally:
        await consumer.stop()
        await pool.close()
        own.stop()


_DISPATCHED = "SELECT count(DISTINCT signal_id) FROM incident_log WHERE signal_id IS NOT NULL"


@contextlib.asynccontextmanager
async def _dispatching(
    dbs: Databases, tmp_path: Path, accounts: int, *, fetch_max_wait_ms: int
) -> AsyncIterator[tuple[_OwnBroker, Dispatcher, asyncio.Event]]:
    """A dispatcher on a broker of the test's own, its loop not started; the event: started over."""
    await dbs.owner.executemany(
        "INSERT INTO accounts (account, name) VALUES ($1, 'shop')",
        [(f"A{n:04d}",) for n in range(accounts)],
    )
    own = _OwnBroker(tmp_path)
    pool = await db.create_pool(dbs.app_dsn, max_size=2, session_reset=False)
    consumer = bus.make_consumer(own.bootstrap, group_id=None, fetch_max_wait_ms=fetch_max_wait_ms)
    started_over = asyncio.Event()
    dispatcher = Dispatcher(
        pool=pool,
        consumer=consumer,
        producer=None,
        engine=make_engine(Settings()),
        signals_topic=bus.SIGNALS,
        commands_topic=bus.COMMANDS,
        incidents_topic=bus.INCIDENTS,
        on_start_over=started_over.set,
    )
    try:
        await bus.ensure_topics(own.bootstrap)
        await dispatcher.load_rules()
        await consumer.start()
        numbers = range(bus.TOPIC_PARTITIONS[bus.SIGNALS])
        topics = (bus.SIGNALS, bus.COMMANDS)
        consumer.assign([bus.TopicPartition(t, n) for t in topics for n in numbers])
        await dispatcher.resume(numbers)
        yield own, dispatcher, started_over
    finally:
        await consumer.stop()
        await pool.close()
        own.stop()


async def test_the_dispatcher_reads_a_replaced_log_from_its_start_in_place(
    dbs: Databases, tmp_path: Path
) -> None:
    """Every burglary of both logs reaches an incident (opens or joins one)."""
    async with _dispatching(dbs, tmp_path, 50, fetch_max_wait_ms=50) as (own, dispatcher, over):
        await _across_a_replaced_log(own, dispatcher, over, dbs.owner, _DISPATCHED)
        stored = await dbs.owner.fetchval(
            "SELECT next_offset FROM dispatcher_state WHERE topic = $1 AND shard = 0", bus.SIGNALS
        )
        assert stored == NEW


async def test_store_now_and_a_replaced_log_cut_the_dispatchers_pause_short(
    dbs: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arc up holds the receivers until the dispatcher stored the log's end: no pace waited out."""
    monkeypatch.setattr(service, "PACE", 30.0)  # a pause the bounds below would see
    monkeypatch.setattr(service, "UNPACED_FOR", 0.5)

    async def dispatched(count: int) -> None:
        async def check() -> bool:
            return bool(await dbs.owner.fetchval(_DISPATCHED) >= count)

        await until(check, within=10, what=f"{count} signals dispatched")

    async with _dispatching(dbs, tmp_path, 3, fetch_max_wait_ms=20) as (own, dispatcher, over):
        running = asyncio.create_task(dispatcher.run(asyncio.Event()))
        try:
            await own.send(range(1))
            await dispatched(1)  # its batch written, the loop pauses for a pace
            await own.send(range(1, 2))
            dispatcher.store_now()
            await dispatched(2)
            await asyncio.sleep(1.0)  # the unpaced moment over
            await own.send(range(2, 3))
            await dispatched(3)  # and the loop pauses again
            dispatcher.replace_log()
            async with asyncio.timeout(10):
                await over.wait()
        finally:
            running.cancel()  # a stop would wait out the pace
            with contextlib.suppress(asyncio.CancelledError):
                await running
