"""``arc dispatcher``: signals and commands from Kafka, incidents into PostgreSQL.

One loop per process: read what ``getmany`` has (signals and commands of the
shards this process owns), let the engine decide, write the batch with its
offsets in one transaction, then publish the changed incidents on
``arc.incidents`` for the console. Once a second the clock runs too
(missed link tests, overdue plan steps). The rules (accounts' link-test
intervals, classification overrides, response plans) are reloaded when
their tables announce a change (NOTIFY ``arc_accounts`` / ``arc_rules``).

Site states are written per shard at most once a second
(``site_checkpoints``), with the offset they reflect; on taking a shard over
the signals after that offset are read again into site state only, up to
the stored offset, where deciding resumes.

A batch that fails to commit leaves nothing behind but the engine's memory
of it: the shards it touched are forgotten and loaded again from the
database, and the consumer seeks back to the stored offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from arc import bus, db
from arc.accounts import sites
from arc.config import Settings
from arc.dispatch import store, storm_store
from arc.dispatch.classification import Grade, Override, Overrides
from arc.dispatch.engine import Batch, Command, Engine
from arc.dispatch.incident_holds import FLOOD as INCIDENT_FLOOD
from arc.dispatch.incident_holds import INTERVAL as INCIDENT_INTERVAL
from arc.dispatch.incident_holds import IncidentHolds
from arc.dispatch.lifecycle import Incident
from arc.dispatch.plans import PlanOverride, Plans, PlanStep, StepKind
from arc.dispatch.signal import Signal
from arc.dispatch.site_checkpoints import INTERVAL as SITE_INTERVAL
from arc.dispatch.site_checkpoints import Checkpoint, SiteCheckpoints
from arc.dispatch.storm import Storms
from arc.guards import service as staff_service
from arc.guards.eligibility import ineligibility
from arc.guards.models import Staff
from arc.guards.staffing import Category
from arc.model import beijing_day
from arc.process import LOG_STARTED_OVER, LOG_STARTS_OVER, STORE_NOW, control_line

logger = logging.getLogger(__name__)

# The shortest time between two batches, seconds; signal→incident latency
# grows by up to this much (its target is 200 ms at p99).
PACE = 0.05

GROUP = "arc-dispatcher"
# Seconds a dispatcher writes its site states with every batch once arc up asks
# (store_now): longer than arc up waits for them (arc.up._DRAIN_WITHIN).
STORE_NOW_FOR = 5.0
# Seconds a dispatcher reads without PACE once arc up asks: it holds the receivers
# after asking (arc.up._STORE_AHEAD) until the dispatcher stored the log's end.
UNPACED_FOR = 1.0
_TICK = 1.0  # seconds between runs of the clock (supervision, escalation)
_REFRESH = 60.0  # reload the rules at least this often, should a notice be lost


def _now() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    """The consumer loop around an ``Engine``."""

    def __init__(
        self,
        *,
        pool: db.Pool,
        consumer: bus.Consumer,
        producer: bus.Producer | None,
        engine: Engine,
        signals_topic: str,
        commands_topic: str,
        incidents_topic: str,
        clock: Callable[[], datetime] = _now,
        site_checkpoints: SiteCheckpoints | None = None,
        incident_holds: IncidentHolds | None = None,
        on_start_over: Callable[[], None] = lambda: None,
    ) -> None:
        self._pool = pool
        self._consumer = consumer
        self._producer = producer
        self.engine = engine
        self._signals = signals_topic
        self._commands = commands_topic
        self._incidents = incidents_topic
        self._clock = clock
        self._writer = store.BatchWriter(incident_holds)
        self._positions: dict[bus.TopicPartition, int] = {}
        self._sites = site_checkpoints or SiteCheckpoints()
        # shard -> the arc.signals offset its stored site states reflect
        self._sites_offsets: dict[int, int] = {}
        # shard -> the stored offset up to which its signals are replayed into site state only
        self._replaying: dict[int, int] = {}
        self._unsure: set[int] = set()
        self._last_tick = 0.0
        self.assigned = asyncio.Event()
        self.rules_changed = asyncio.Event()
        # Until when every batch writes every held site state (see store_now).
        self._store_all_until = 0.0
        self._unpaced_until = 0.0  # until when batches follow without PACE (store_now)
        self._woken = asyncio.Event()  # set by store_now: the next batch at once
        # Set when the broker's log was replaced by an empty one (see start_over).
        self.log_replaced = asyncio.Event()
        self._on_start_over = on_start_over

    # -- rules --------------------------------------------------------------------

    async def load_rules(self) -> None:
        """Read the accounts' intervals, the overrides and the plans into the engine."""
        async with self._pool.acquire() as conn:
            accounts = await conn.fetch(
                "SELECT account, link_test_seconds FROM accounts WHERE enabled"
            )
            overrides = await conn.fetch(
                "SELECT account, zone, match, event_class, grade FROM classification_overrides"
            )
            plans = await conn.fetch(
                "SELECT account, event_class, grade, steps FROM response_plans"
            )
            staff = await staff_service.list_staff(conn=conn)
            storms = await storm_store.list_storms(conn=conn, now=self._clock())
            technologies = await sites.load_zone_technologies(conn=conn)
            schedules = await sites.load_schedules(conn=conn)
        self.engine.overrides = Overrides(
            Override(
                match=r["match"],
                event_class=r["event_class"],
                grade=Grade(r["grade"]),
                account=r["account"],
                zone=r["zone"],
            )
            for r in overrides
        )
        self.engine.plans = Plans(_plan_override(r) for r in plans)
        self.engine.storms = Storms(storms)
        directory: dict[str, Staff] = {str(s.staff_id): s for s in staff}
        self.engine.guard_check = functools.partial(guard_refusal, directory)
        self.engine.set_intervals({r["account"]: r["link_test_seconds"] for r in accounts})
        self.engine.set_technologies(technologies)
        self.engine.set_schedules(schedules, self._clock())
        # Says when a change reached the engine: tests wait for it instead of guessing.
        logger.debug("rules loaded: %d overrides, %d plans", len(overrides), len(plans))

    # -- partitions ---------------------------------------------------------------

    def listener(self) -> bus.ConsumerRebalanceListener:
        """The rebalance listener: load assigned shards, forget revoked ones."""
        dispatcher = self

        class _Listener(bus.ConsumerRebalanceListener):  # type: ignore[misc]  # untyped base
            async def on_partitions_revoked(self, revoked: Iterable[bus.TopicPartition]) -> None:
                for tp in revoked:
                    dispatcher.forget(tp.partition)

            async def on_partitions_assigned(self, assigned: Iterable[bus.TopicPartition]) -> None:
                await dispatcher.resume({tp.partition for tp in assigned})

        return _Listener()

    def forget(self, shard: int) -> None:
        """Drop what this process holds of ``shard``; its next owner loads it from the database."""
        self.engine.drop_shard(shard)
        self._sites.forget(shard)
        self._writer.forget(shard)
        self._replaying.pop(shard, None)

    async def resume(self, shards: Iterable[int]) -> None:
        """Load ``shards`` from the database and seek both topics to their stored offsets.

        The signals topic is sought back to where the stored site states end,
        when that is earlier: those signals are replayed into site state only.
        """
        numbers = sorted(set(shards))
        if not numbers:
            return
        topics = (self._signals, self._commands)
        partitions = [bus.TopicPartition(t, n) for n in numbers for t in topics]
        ends = await self._consumer.end_offsets(partitions)
        starts = await self._consumer.beginning_offsets(partitions)
        async with self._pool.acquire() as conn:
            for number in numbers:
                stored = await store.load_shard(conn, number, topics)
                now = self._clock()
                self.engine.load_shard(
                    number,
                    incidents=stored.incidents,
                    sites=stored.sites,
                    now=now,
                    false_alarm_closes=await store.load_false_alarms(conn, number, now),
                    schedule_checked=await store.load_schedule_checks(conn, number, now),
                )
                self._writer.take_over(number, stored)
                for topic in topics:
                    tp = bus.TopicPartition(topic, number)
                    offset = stored.offsets.get(topic, 0)
                    if offset > ends[tp]:
                        logger.warning(
                            "%s[%d]: stored offset %d is beyond the log's end %d: the broker "
                            "lost its log; reading the new log from its start",
                            topic,
                            number,
                            offset,
                            ends[tp],
                        )
                        offset = starts[tp]
                    offset = max(offset, starts[tp])
                    self._positions[tp] = offset
                    if topic == self._signals:
                        offset = self._replay_from(number, stored, offset, starts[tp])
                    self._consumer.seek(tp, offset)
        self.assigned.set()

    def _replay_from(self, number: int, stored: store.StoredShard, offset: int, start: int) -> int:
        """Where to read shard ``number``'s signals from, given its stored ``offset``."""
        sites_offset = stored.sites_offsets.get(self._signals, offset)
        if sites_offset > offset:  # the broker lost its log: the sites are as stored
            sites_offset = offset
        elif sites_offset < start:
            logger.warning(
                "%s[%d]: the signals after offset %d that the stored site states lack are no "
                "longer on the broker; site states go on from them as stored",
                self._signals,
                number,
                sites_offset,
            )
            sites_offset = start
        self._sites.forget(number)
        self._sites_offsets[number] = sites_offset
        if sites_offset < offset:
            self._replaying[number] = offset
        else:
            self._replaying.pop(number, None)
        return sites_offset

    def caught_up(self, number: int) -> bool:
        """Whether every signal of shard ``number`` the broker has was read.

        A shard still replaying into its site states is behind: its closings
        and link tests are judged once the states are whole.
        """
        if number in self._replaying:
            return False
        tp = bus.TopicPartition(self._signals, number)
        highwater = self._consumer.highwater(tp)
        return highwater is not None and self._positions.get(tp, 0) >= highwater

    # -- the loop -----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop`` is set."""
        while not stop.is_set():
            # Here no batch is half written: the offsets in memory are the stored ones.
            if self.log_replaced.is_set():
                self.log_replaced.clear()
                self.start_over()
            if self._unsure:
                owned = {tp.partition for tp in self._consumer.assignment()}
                await self.resume(self._unsure & owned)
                self._unsure.clear()
            if self.rules_changed.is_set():
                self.rules_changed.clear()
                await self.load_rules()
            began = asyncio.get_running_loop().time()
            # Idle, at most a pace: a replaced log (log_replaced) and STORE_NOW are
            # seen within it, and arc up holds the receivers until then.
            records = await self._consumer.getmany(timeout_ms=int(PACE * 1000), max_records=2_000)
            await self.step(records)
            # Batches at most every PACE: a transaction, a fetch and a publish
            # per batch are what the dispatcher costs the database and the
            # broker, whose cores the receive path needs for its ACKs.
            now = asyncio.get_running_loop().time()
            rest = PACE - (now - began)
            # No pause for a moment after STORE_NOW, and STORE_NOW or a replaced log
            # ends one: arc up holds the receivers until the dispatcher stored the
            # log's end, and again until it started over on the new one.
            if rest > 0 and not stop.is_set() and now >= self._unpaced_until:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), rest)
            self._woken.clear()
        await self.flush()

    def store_now(self, *, within: float = STORE_NOW_FOR) -> None:
        """Write every held site state with each batch for ``within`` seconds.

        ``arc up`` asks so while it waits for the dispatcher to store the whole
        broker log before replacing it: site states are otherwise held for up
        to a second, and the receivers are held meanwhile.
        """
        now = asyncio.get_running_loop().time()
        self._store_all_until = now + within
        self._unpaced_until = now + UNPACED_FOR
        self._woken.set()

    def replace_log(self) -> None:
        """Start over at the next batch, at once: arc up holds the receivers until then."""
        self.log_replaced.set()
        self._woken.set()

    def start_over(self) -> None:
        """Read every partition from offset 0: ``arc up`` replaced the broker's log.

        It does so only once every offset of the old log and every site state
        was stored, and sets the stored offsets to 0 itself; what this process
        holds (incidents, site states, recent signals) goes on as it is.
        """
        for tp in self._consumer.assignment():
            self._positions[tp] = 0
            self._consumer.seek(tp, 0)
        self._sites_offsets = dict.fromkeys(self._sites_offsets, 0)
        self._replaying.clear()
        self._on_start_over()

    async def flush(self) -> None:
        """Write every held site state and incident now (a dispatcher that stops); best effort."""
        checkpoint = self._sites.everything(held=self._replaying)
        if checkpoint is None and not self._writer.holds.held:
            return
        try:
            await self._write(Batch(), checkpoint, everything=True)
        except (bus.KafkaError, *db.DATABASE_ERRORS) as error:
            # Not lost: the next owner replays them from the signals.
            logger.warning("site states not written at stop: %s", error)

    async def step(self, records: Mapping[bus.TopicPartition, Sequence[bus.Record]]) -> Batch:
        """Decide on ``records`` (and the clock, when due) and write the batch."""
        batch = Batch()
        engine = self.engine
        for tp, items in records.items():
            if not items or tp.partition not in engine.shards:
                continue  # revoked meanwhile
            if tp.topic == self._signals:
                self._signals_of(tp.partition, items, batch)
                continue
            for record in items:
                command = _command(record.value or b"")
                if command is not None:
                    engine.on_command(tp.partition, command, batch)
            batch.offsets[(tp.topic, tp.partition)] = items[-1].offset + 1
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_tick >= _TICK:
            self._last_tick = loop.time()
            engine.on_tick(self._clock(), batch, caught_up=self.caught_up)
        self._sites.changed(batch.sites)
        if loop.time() < self._store_all_until:
            checkpoint = self._sites.everything(held=self._replaying)
        else:
            checkpoint = self._sites.due(loop.time(), held=self._replaying)
        if not batch and checkpoint is None and not self._writer.holds.due(loop.time()):
            return batch
        states = await self._write(batch, checkpoint)
        await self._publish(states)
        return batch

    def _signals_of(self, number: int, items: Sequence[bus.Record], batch: Batch) -> None:
        """Decide on shard ``number``'s signals; those before its stored offset are replayed."""
        replay_until = self._replaying.get(number)
        for record in items:
            signal = Signal.from_bus(record.value or b"")
            if replay_until is not None and record.offset < replay_until:
                self.engine.replay_signal(number, signal, batch)
            else:
                self.engine.on_signal(number, signal, batch)
        next_offset = items[-1].offset + 1
        if replay_until is None or next_offset >= replay_until:
            self._replaying.pop(number, None)
            batch.offsets[(self._signals, number)] = next_offset

    async def _write(
        self, batch: Batch, checkpoint: Checkpoint | None, *, everything: bool = False
    ) -> list[tuple[Incident, bytes]]:
        """Write ``batch`` and ``checkpoint``; a failure makes their shards load again.

        Returns the JSON of the incidents written, as stored (``everything``: every
        held one too).
        """
        if checkpoint is not None:
            for number in checkpoint.shards:
                # The checkpoint's offset is the one this transaction stores
                # (a shard holds sites only once resume gave it a position).
                key = (self._signals, number)
                batch.offsets.setdefault(key, self._positions[bus.TopicPartition(*key)])
        sites_offsets = {
            (topic, n): self._sites_offsets[n]
            if checkpoint is None or n not in checkpoint.shards
            else offset
            for (topic, n), offset in batch.offsets.items()
            if topic == self._signals
        }
        try:
            async with self._pool.acquire() as conn:
                states = await self._writer.write(
                    conn,
                    batch,
                    now=asyncio.get_running_loop().time(),
                    checkpoint=checkpoint,
                    sites_offsets=sites_offsets,
                    everything=everything,
                )
        except BaseException:
            touched = {shard for _, shard in batch.offsets} | {e.shard for e in batch.entries}
            touched |= {shard for shard, _ in batch.incidents.values()}
            touched |= {shard for shard, _, _ in batch.sites.values()}
            for shard in touched:
                self.forget(shard)
            self._unsure |= touched
            raise
        for (topic, shard), offset in batch.offsets.items():
            self._positions[bus.TopicPartition(topic, shard)] = offset
        for key, offset in sites_offsets.items():
            self._sites_offsets[key[1]] = offset
        if checkpoint is not None:
            self._sites.written(checkpoint, asyncio.get_running_loop().time())
        return states

    async def _publish(self, states: Sequence[tuple[Incident, bytes]]) -> None:
        """Tell the console which incidents changed (the database has them already)."""
        if self._producer is None or not states:
            return
        # The projection in PostgreSQL is the record; the console re-reads it. A
        # failed delivery (the broker replaced, say) is said once per batch, and
        # retrieved, so that asyncio does not report it as an error of its own.
        said = False

        def delivered(sent: asyncio.Future[bus.RecordMetadata]) -> None:
            nonlocal said
            error = None if sent.cancelled() else sent.exception()
            if error is not None and not said:
                logger.warning("could not publish incident changes: %r", error)
                said = True

        try:
            for incident, state in states:
                sent = await self._producer.send(
                    self._incidents, value=state, key=incident.account.encode()
                )
                sent.add_done_callback(delivered)
        except bus.KafkaError as error:
            logger.warning("could not publish incident changes: %s", error)


def guard_refusal(directory: Mapping[str, Staff], staff_id: str, at: datetime) -> str | None:
    """Why ``staff_id`` may not be sent to an alarm at ``at`` (None: they may)."""
    member = directory.get(staff_id)
    if member is None:
        return f"no member of staff has the id {staff_id!r}"
    if member.category is not Category.PATROL_RESPONSE:
        return f"{member.name} is not a patrol guard (现场处置巡逻人员)"
    reasons = ineligibility(member, beijing_day(at))
    if reasons:
        return f"{member.name} may not be assigned: " + "; ".join(reasons)
    return None


def _command(data: bytes) -> Command | None:
    try:
        return Command.from_json(orjson.loads(data))
    except (ValueError, KeyError, TypeError) as error:
        logger.error("ignored a malformed command on the bus: %s", error)
        return None


def _plan_override(row: asyncpg.Record) -> PlanOverride:
    steps = orjson.loads(row["steps"]) if isinstance(row["steps"], str) else row["steps"]
    return PlanOverride(
        event_class=row["event_class"],
        grade=row["grade"] or None,
        account=row["account"],
        steps=tuple(
            PlanStep(StepKind(s["kind"]), timedelta(seconds=s["deadline_s"]), s["required"])
            for s in steps
        ),
    )


async def _watch_rules(dsn: str, changed: asyncio.Event, stop: asyncio.Event) -> None:
    """Set ``changed`` when accounts or rules change, and every ``_REFRESH`` seconds."""
    while not stop.is_set():
        conn: asyncpg.Connection[asyncpg.Record] | None = None
        try:
            conn = await asyncpg.connect(dsn, timeout=10)

            def notified(*_: object) -> None:
                changed.set()

            await conn.add_listener("arc_accounts", notified)
            await conn.add_listener("arc_rules", notified)
            changed.set()  # anything committed before LISTEN
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _REFRESH)
            changed.set()
        except db.DATABASE_ERRORS as error:
            logger.warning("rules watcher: %s; reconnecting in 1 s", error)
            await asyncio.sleep(1.0)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()


def make_engine(settings: Settings) -> Engine:
    """An engine with the centre's windows and limits."""
    return Engine(
        join_window=timedelta(seconds=settings.incident_join_window),
        confirm_window=timedelta(seconds=settings.confirmation_window),
        supervision_grace=timedelta(seconds=settings.supervision_grace),
        false_alarm_limit=settings.false_alarm_limit,
        schedule_grace=timedelta(seconds=settings.schedule_grace),
    )


async def run_dispatcher(
    settings: Settings,
    stop: asyncio.Event,
    *,
    announce: Callable[[str], None] = print,
    topic_prefix: str = "",
    all_partitions: bool = False,
    site_interval: float = SITE_INTERVAL,
    incident_interval: float = INCIDENT_INTERVAL,
    incident_flood: int = INCIDENT_FLOOD,
) -> None:
    """Dispatch ``arc.signals`` and ``arc.commands`` until ``stop`` is set.

    ``site_interval``: seconds between two writes of a busy shard's site states;
    ``incident_interval``: of a flooded incident's joins, in batches of at least
    ``incident_flood`` signals.
    """
    if settings.database_url is None or settings.kafka_bootstrap is None:
        raise SystemExit(
            "arc dispatcher needs ARC_DATABASE_URL and ARC_KAFKA_BOOTSTRAP (arc up sets both)"
        )
    signals, commands, incidents = (
        topic_prefix + bus.SIGNALS,
        topic_prefix + bus.COMMANDS,
        topic_prefix + bus.INCIDENTS,
    )
    await bus.ensure_topics(
        settings.kafka_bootstrap,
        {
            signals: bus.TOPIC_PARTITIONS[bus.SIGNALS],
            commands: bus.TOPIC_PARTITIONS[bus.COMMANDS],
            incidents: bus.TOPIC_PARTITIONS[bus.INCIDENTS],
        },
    )
    dsn = settings.database_url.get_secret_value()
    pool = await db.create_pool(
        settings.database_url,
        max_size=2,
        application_name="arc-dispatcher",
        session_reset=False,  # its batches keep no session state
    )
    consumer = bus.make_consumer(
        settings.kafka_bootstrap,
        group_id=None if all_partitions else topic_prefix + GROUP,
        client_id="arc-dispatcher",
        fetch_max_wait_ms=int(PACE * 1000),  # idle: one empty fetch per pace, not per 10 ms
    )
    producer = bus.make_producer(settings.kafka_bootstrap, client_id="arc-dispatcher")
    dispatcher = Dispatcher(
        pool=pool,
        consumer=consumer,
        producer=producer,
        engine=make_engine(settings),
        signals_topic=signals,
        commands_topic=commands,
        incidents_topic=incidents,
        site_checkpoints=SiteCheckpoints(site_interval),
        incident_holds=IncidentHolds(incident_interval, incident_flood),
        on_start_over=lambda: announce(control_line(LOG_STARTED_OVER)),
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(STORE_NOW, dispatcher.store_now)
    loop.add_signal_handler(LOG_STARTS_OVER, dispatcher.replace_log)
    await producer.start()
    watching = asyncio.create_task(_watch_rules(dsn, dispatcher.rules_changed, stop))
    try:
        await dispatcher.load_rules()
        if all_partitions:
            await consumer.start()
            await consumer.topics()
            numbers = sorted(consumer.partitions_for_topic(signals) or ())
            consumer.assign(
                [bus.TopicPartition(t, n) for t in (signals, commands) for n in numbers]
            )
            await dispatcher.resume(numbers)
        else:
            consumer.subscribe([signals, commands], listener=dispatcher.listener())
            await consumer.start()
        running = asyncio.create_task(_dispatch_until(dispatcher, stop))
        assigned = asyncio.create_task(dispatcher.assigned.wait())
        await asyncio.wait((assigned, running), timeout=60, return_when="FIRST_COMPLETED")
        assigned.cancel()
        if running.done():
            running.result()
        announce(f"dispatcher: consuming {signals}, {commands}")
        await running
    finally:
        for sig in (STORE_NOW, LOG_STARTS_OVER):
            loop.remove_signal_handler(sig)
        watching.cancel()
        await consumer.stop()
        await producer.stop()
        await pool.close()


async def _dispatch_until(dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    """Run the loop; a failed batch is read again after a pause, not fatal."""
    while not stop.is_set():
        try:
            await dispatcher.run(stop)
        except (bus.KafkaError, *db.DATABASE_ERRORS) as error:
            logger.warning("dispatcher: %s; trying again in 1 s", error)
            await asyncio.sleep(1.0)
