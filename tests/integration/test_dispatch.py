"""The dispatcher end to end: DC-09 frames in, graded incidents with their plans out.

The real receiver, log writer and dispatcher run in this process against the
embedded PostgreSQL and broker; frames go over real sockets on loopback and
people's commands over ``arc.commands``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
import pytest_asyncio
from pydantic import SecretStr

from arc import bus, db
from arc.config import Settings
from arc.dispatch import incident_holds, incident_json, site_checkpoints, store
from arc.dispatch.commands import CommandClient, CommandTimeout
from arc.dispatch.lifecycle import Kind, Role, rebuild
from arc.dispatch.plans import DEFAULT_PLANS
from arc.dispatch.service import run_dispatcher
from arc.ingest.service import run_receiver
from arc.integrity.verify import verify
from arc.logwriter.service import run_logwriter
from arc.runtime import with_credentials
from protocols.dc09 import build_frame, format_timestamp
from tests.integration.up_helpers import check_ack, plain_frame, tcp_exchange

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

APP_PASSWORD = "app-test-password"  # noqa: S105 - a test database's role
LINK_TEST_SECONDS = 2
GOOD_GUARD, EXPIRED_GUARD = uuid.uuid4(), uuid.uuid4()
GRACE = 1.0


@dataclass
class Centre:
    database_url: str
    settings: Settings
    prefix: str
    port: int
    admin: asyncpg.Connection[asyncpg.Record]
    stop_dispatcher: Callable[[], Awaitable[None]]
    start_dispatcher: Callable[..., Awaitable[None]]
    crash_dispatcher: Callable[[], Awaitable[None]]
    sequence: list[int] = field(default_factory=lambda: [0])

    async def send(self, account: str, data: str) -> None:
        self.sequence[0] += 1
        seq = self.sequence[0]
        check_ack(
            await tcp_exchange(self.port, plain_frame(seq, account, data, _now())), seq, account
        )

    async def link_test(self, account: str) -> None:
        self.sequence[0] += 1
        seq = self.sequence[0]
        stamp = format_timestamp(_now()).decode()
        frame = build_frame(f'"NULL"{seq:04d}L0#{account}[]{stamp}'.encode())
        reply = await tcp_exchange(self.port, frame)
        assert b'"ACK"' in reply, reply

    async def wait_for(self, sql: str, *args: object, within: float = 15) -> list[asyncpg.Record]:
        async with asyncio.timeout(within):
            while True:
                rows = await self.admin.fetch(sql, *args)
                if rows:
                    return rows
                await asyncio.sleep(0.05)


def _now() -> datetime:
    return datetime.now(UTC)


async def _wait_line(lines: list[str], prefix: str, tasks: list[asyncio.Task[None]]) -> str:
    async with asyncio.timeout(60):
        while True:
            for line in lines:
                if line.startswith(prefix):
                    return line
            for task in tasks:
                if task.done():
                    task.result()
            await asyncio.sleep(0.05)


@pytest_asyncio.fixture
async def centre(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Centre]:
    admin = await db.connect(database_url)
    await db.migrate(conn=admin)
    await admin.execute(f"ALTER ROLE arc_app LOGIN PASSWORD '{APP_PASSWORD}'")
    # Accounts straight into the table: the onboarding rules are tested elsewhere.
    await admin.execute(
        "INSERT INTO accounts (account, name, link_test_seconds) VALUES"
        " ('1234', 'shop', NULL), ('5678', 'bank', $1)",
        LINK_TEST_SECONDS,
    )
    # Two patrol guards: one qualifies (R2), one's certificate has expired.
    await admin.execute(
        "INSERT INTO staff (staff_id, name, category, certificate_no, certificate_expires,"
        " exam_passed_on, trained_on, date_of_birth) VALUES"
        " ($1, '张伟', 'patrol_response', '京A12345678', '2030-01-01', '2020-01-01', '2020-02-01',"
        "  '1990-05-01'),"
        " ($2, '李强', 'patrol_response', '京A22345678', '2025-01-01', '2020-01-01', '2020-02-01',"
        "  '1991-05-01')",
        GOOD_GUARD,
        EXPIRED_GUARD,
    )
    settings = Settings(
        database_url=with_credentials(SecretStr(database_url), "arc_app", APP_PASSWORD),
        kafka_bootstrap=kafka_bootstrap,
        ack_policy="database",  # type: ignore[arg-type]  # validated by pydantic
        dc09_port=0,
        master_key=SecretStr("m" * 40),
        ack_timeout=10,
        supervision_grace=GRACE,
    )
    prefix = f"test.{uuid.uuid4().hex[:10]}."
    lines: list[str] = []
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            run_logwriter(settings, stop, announce=lines.append, topic_prefix=prefix)
        ),
        asyncio.create_task(
            run_receiver(settings, stop, announce=lines.append, topic_prefix=prefix)
        ),
    ]
    dispatcher: dict[str, Any] = {}

    async def start_dispatcher(
        site_interval: float = site_checkpoints.INTERVAL,
        incident_interval: float = incident_holds.INTERVAL,
        incident_flood: int = incident_holds.FLOOD,
    ) -> None:
        dispatcher["stop"] = asyncio.Event()
        mine: list[str] = []
        dispatcher["task"] = asyncio.create_task(
            run_dispatcher(
                settings,
                dispatcher["stop"],
                announce=mine.append,
                topic_prefix=prefix,
                all_partitions=True,
                site_interval=site_interval,
                incident_interval=incident_interval,
                incident_flood=incident_flood,
            )
        )
        await _wait_line(mine, "dispatcher:", [dispatcher["task"]])

    async def stop_dispatcher() -> None:
        dispatcher["stop"].set()
        async with asyncio.timeout(30):
            await dispatcher["task"]

    async def crash_dispatcher() -> None:
        """Cancel it mid-loop: it writes nothing more, as if killed."""
        dispatcher["task"].cancel()
        async with asyncio.timeout(30):
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher["task"]
        dispatcher["stop"].set()  # the fixture's stop_dispatcher at the end finds it done

    await start_dispatcher()
    await _wait_line(lines, "logwriter:", tasks)
    line = await _wait_line(lines, "dc09:", tasks)
    match = re.search(r"tcp://[\d.]+:(\d+)", line)
    assert match is not None
    try:
        yield Centre(
            database_url,
            settings,
            prefix,
            int(match[1]),
            admin,
            stop_dispatcher,
            start_dispatcher,
            crash_dispatcher,
        )
    finally:
        stop.set()
        await stop_dispatcher()
        async with asyncio.timeout(30):
            await asyncio.gather(*tasks)
        await admin.close()


@pytest_asyncio.fixture
async def commands(centre: Centre) -> AsyncIterator[CommandClient]:
    assert centre.settings.kafka_bootstrap is not None
    producer = bus.make_producer(centre.settings.kafka_bootstrap)
    await producer.start()
    client = CommandClient(
        producer=producer, dsn=centre.database_url, topic=centre.prefix + bus.COMMANDS
    )
    await client.start()
    try:
        yield client
    finally:
        await client.stop()
        await producer.stop()


OPEN_INCIDENTS = "SELECT * FROM incidents WHERE account = $1 AND event_class = $2"


def steps_of(row: asyncpg.Record) -> list[tuple[str, bool, str]]:
    return [(s["kind"], s["required"], s["status"]) for s in orjson.loads(row["state"])["steps"]]


@pytest.mark.asyncio
async def test_a_burglary_frame_opens_an_incident_with_its_class_grade_and_plan(
    centre: Centre,
) -> None:
    await centre.send("1234", "Nri1/BA003")
    (row,) = await centre.wait_for(OPEN_INCIDENTS, "1234", "burglary")
    assert (row["grade"], row["status"], row["signal_count"]) == (2, "new", 1)
    assert row["title"] == "盗警 防区 003 (BA)"
    assert steps_of(row) == [
        (s.kind.value, s.required, "pending") for s in DEFAULT_PLANS["burglary"]
    ]
    # The log names the signal that opened it, the one in signal_log.
    (opening,) = await centre.admin.fetch(
        "SELECT * FROM incident_log WHERE incident_id = $1", row["incident_id"]
    )
    (signal,) = await centre.admin.fetch("SELECT signal_id FROM signal_log WHERE account = '1234'")
    assert (opening["kind"], opening["signal_id"]) == ("open", signal["signal_id"])
    assert orjson.loads(opening["details"])["classified_by"] == "default"


@pytest.mark.asyncio
async def test_a_second_zone_confirms_the_burglary_and_a_restore_is_shown(centre: Centre) -> None:
    await centre.send("1234", "Nri1/BA003")
    await centre.wait_for(OPEN_INCIDENTS, "1234", "burglary")
    await centre.send("1234", "Nri1/BA005")
    (row,) = await centre.wait_for(OPEN_INCIDENTS + " AND confirmed", "1234", "burglary")
    assert row["grade"] == 1 and row["signal_count"] == 2
    assert steps_of(row)[-1] == ("call_police", True, "pending")  # 报 110
    await centre.send("1234", "Nri1/BR003")
    await centre.send("1234", "Nri1/BR005")
    (row,) = await centre.wait_for(OPEN_INCIDENTS + " AND restored", "1234", "burglary")
    assert row["status"] == "new"  # restored before anyone acted: still in the queue
    kinds = [
        r["kind"]
        for r in await centre.admin.fetch(
            "SELECT kind FROM incident_log WHERE incident_id = $1 ORDER BY chain_seq",
            row["incident_id"],
        )
    ]
    assert kinds == ["open", "join", "raise_grade", "join", "join"]


@pytest.mark.asyncio
async def test_fire_over_contact_id_is_grade_one_and_open_close_opens_nothing(
    centre: Centre,
) -> None:
    stamp = format_timestamp(_now()).decode()
    frame = build_frame(f'"ADM-CID"0077L0#1234[#1234|1110 01 004]{stamp}'.encode())
    check_ack(await tcp_exchange(centre.port, frame), 77, "1234")
    (row,) = await centre.wait_for(OPEN_INCIDENTS, "1234", "fire")
    assert row["grade"] == 1
    assert [k for k, _, _ in steps_of(row)] == [
        "call_keyholders",
        "call_fire_service",
        "dispatch_guard",
    ]
    await centre.send("1234", "Nri1/CL012")  # armed by user 12: information only
    (site,) = await centre.wait_for(
        "SELECT * FROM site_state WHERE account = '1234' AND (state->>'signals_seen')::int >= 2"
    )
    incidents = await centre.admin.fetch("SELECT event_class FROM incidents WHERE account = '1234'")
    assert [r["event_class"] for r in incidents] == ["fire"]


@pytest.mark.asyncio
async def test_a_missed_link_test_opens_a_communication_fault_and_the_next_restores_it(
    centre: Centre,
) -> None:
    await centre.link_test("5678")
    (row,) = await centre.wait_for(OPEN_INCIDENTS, "5678", "communication", within=10)
    (seen,) = await centre.admin.fetch("SELECT received_at FROM signal_log WHERE account = '5678'")
    waited = (row["opened_at"] - seen["received_at"]).total_seconds()
    # Due at interval + grace after the link test; the clock runs once a second.
    assert LINK_TEST_SECONDS + GRACE <= waited <= LINK_TEST_SECONDS + GRACE + 1.5
    assert (row["grade"], row["restored"]) == (3, False)
    await centre.link_test("5678")
    (row,) = await centre.wait_for(OPEN_INCIDENTS + " AND restored", "5678", "communication")
    # One fault, not one per second while it lasted.
    assert len(await centre.admin.fetch(OPEN_INCIDENTS, "5678", "communication")) == 1


@pytest.mark.asyncio
async def test_people_work_the_incident_through_commands_and_refusals_name_the_rule(
    centre: Centre, commands: CommandClient
) -> None:
    await centre.send("1234", "Nri1/BA003")
    (row,) = await centre.wait_for(OPEN_INCIDENTS, "1234", "burglary")
    incident = row["incident_id"]

    async def do(
        kind: Kind, actor: str = "op1", role: Role = Role.OPERATOR, **details: Any
    ) -> dict:
        return await commands.submit(
            account="1234", incident_id=incident, kind=kind, actor=actor, role=role, details=details
        )

    refused = await do(Kind.CLOSE, resolution="real_alarm")
    assert refused["ok"] is False and "incident lifecycle" in refused["rule"]
    assert (await do(Kind.ACKNOWLEDGE))["status"] == "acknowledged"
    assert (await do(Kind.STEP_DONE, step=1, outcome="业主确认误报"))["ok"]
    assert (await do(Kind.RESOLVE))["ok"]
    refused = await do(Kind.CLOSE, resolution="false_alarm", cause="user_error")
    assert refused["ok"] is False and "dispatch_guard" in refused["message"]
    assert "预案" in refused["rule"]
    assert (await do(Kind.STEP_WAIVED, "sup1", Role.SUPERVISOR, step=2, reason="业主在场"))["ok"]
    closed = await do(Kind.CLOSE, resolution="false_alarm", cause="user_error")
    assert closed["status"] == "closed"
    (row,) = await centre.admin.fetch("SELECT * FROM incidents WHERE incident_id = $1", incident)
    assert (row["status"], row["resolution"], row["owner"]) == ("closed", "false_alarm", "op1")
    # The projection is what its log says, and the log's chain holds.
    log = await centre.admin.fetch(
        "SELECT * FROM incident_log WHERE incident_id = $1 ORDER BY chain_seq", incident
    )
    rebuilt = rebuild(store.rebuild_changes(log))
    assert rebuilt.status.value == "closed" and rebuilt.changes == len(log) == 6
    assert [r["command_id"] is not None for r in log] == [False] + [True] * 5
    report = await verify(conn=centre.admin, tables=["incident_log"])
    assert report.intact and report.rows == 6


@pytest.mark.asyncio
async def test_after_a_restart_the_dispatcher_knows_its_open_incidents_and_sites(
    centre: Centre,
) -> None:
    await centre.send("1234", "Nri1/BA003")
    await centre.wait_for(OPEN_INCIDENTS, "1234", "burglary")
    await centre.stop_dispatcher()
    await centre.send("1234", "Nri1/OP001")  # read by the next dispatcher
    await centre.start_dispatcher()
    await centre.send("1234", "Nri1/BA003")
    (row,) = await centre.wait_for(OPEN_INCIDENTS + " AND signal_count = 2", "1234", "burglary")
    (site,) = await centre.wait_for(
        "SELECT state FROM site_state WHERE account = '1234' AND (state->>'signals_seen')::int = 3"
    )
    assert len(await centre.admin.fetch(OPEN_INCIDENTS, "1234", "burglary")) == 1
    report = await verify(conn=centre.admin, tables=["incident_log"])
    assert report.intact and report.rows == 2


@pytest.mark.asyncio
async def test_joins_a_dispatcher_held_when_it_died_reach_the_projection_from_the_log(
    centre: Centre,
) -> None:
    await centre.stop_dispatcher()
    await centre.start_dispatcher(incident_interval=3600, incident_flood=1)  # joins wait an hour
    await centre.send("1234", "Nri1/BA003")
    (opened,) = await centre.wait_for(OPEN_INCIDENTS, "1234", "burglary")
    await centre.send("1234", "Nri1/BA003")
    await centre.send("1234", "Nri1/BA003")  # the same zone again: no confirmation
    await centre.wait_for("SELECT 1 FROM incident_log HAVING count(*) = 3")
    (held,) = await centre.admin.fetch(OPEN_INCIDENTS, "1234", "burglary")
    assert (held["signal_count"], held["chain_seq"]) == (1, 1)  # the joins are held
    (heads,) = await centre.admin.fetch("SELECT * FROM incident_chain_heads")
    assert (heads["chain_seq"], heads["projected_seq"]) == (3, 1)
    await centre.crash_dispatcher()
    await centre.start_dispatcher()
    (row,) = await centre.wait_for(OPEN_INCIDENTS + " AND signal_count = 3", "1234", "burglary")
    assert row["chain_seq"] == 3 and orjson.loads(row["state"])["changes"] == 3
    log = await centre.admin.fetch("SELECT * FROM incident_log ORDER BY chain_seq")
    assert rebuild(store.rebuild_changes(log)) == incident_json.from_json(
        orjson.loads(row["state"])
    )
    assert orjson.loads(opened["state"])["incident_id"] == str(row["incident_id"])
    # Caught up from the log, not decided again.
    assert [r["kind"] for r in log] == ["open", "join", "join"]
    (heads,) = await centre.admin.fetch("SELECT * FROM incident_chain_heads")
    assert (heads["chain_seq"], heads["projected_seq"]) == (3, 3)


@pytest.mark.asyncio
async def test_a_dispatcher_that_stops_writes_the_joins_it_held(centre: Centre) -> None:
    await centre.stop_dispatcher()
    await centre.start_dispatcher(incident_interval=3600, incident_flood=1)
    await centre.send("1234", "Nri1/BA003")
    await centre.wait_for(OPEN_INCIDENTS, "1234", "burglary")
    await centre.send("1234", "Nri1/BA003")
    await centre.wait_for("SELECT 1 FROM incident_log HAVING count(*) = 2")
    (held,) = await centre.admin.fetch(OPEN_INCIDENTS, "1234", "burglary")
    assert held["signal_count"] == 1
    await centre.stop_dispatcher()
    (row,) = await centre.admin.fetch(OPEN_INCIDENTS, "1234", "burglary")
    assert (row["signal_count"], row["chain_seq"]) == (2, 2)


@pytest.mark.asyncio
async def test_a_held_join_is_written_with_the_next_change_that_is_not_a_join(
    centre: Centre, commands: CommandClient
) -> None:
    await centre.stop_dispatcher()
    await centre.start_dispatcher(incident_interval=3600, incident_flood=1)
    await centre.send("1234", "Nri1/BA003")
    (row,) = await centre.wait_for(OPEN_INCIDENTS, "1234", "burglary")
    await centre.send("1234", "Nri1/BA003")
    await centre.wait_for("SELECT 1 FROM incident_log HAVING count(*) = 2")
    outcome = await commands.submit(
        account="1234",
        incident_id=row["incident_id"],
        kind=Kind.ACKNOWLEDGE,
        actor="op1",
        role=Role.OPERATOR,
        details={},
    )
    assert outcome["ok"]
    (row,) = await centre.admin.fetch(OPEN_INCIDENTS, "1234", "burglary")
    assert (row["status"], row["signal_count"], row["chain_seq"]) == ("acknowledged", 2, 3)


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_a_held_command_waits_for_the_release_and_one_held_too_long_is_not_sent(
    centre: Centre, commands: CommandClient
) -> None:
    await centre.send("1234", "Nri1/BA003")
    (row,) = await centre.wait_for(OPEN_INCIDENTS, "1234", "burglary")

    def take(within: float = 10.0) -> Awaitable[dict[str, Any]]:
        return commands.submit(
            account="1234",
            incident_id=row["incident_id"],
            kind=Kind.ACKNOWLEDGE,
            actor="op1",
            role=Role.OPERATOR,
            within=within,
        )

    commands.sends.hold()  # as arc up does while it replaces the embedded broker
    with pytest.raises(CommandTimeout):
        await take(within=0.3)
    waiting = asyncio.ensure_future(take())
    await asyncio.sleep(1.0)  # the dispatcher answers a sent command within a pace or two
    assert not waiting.done()
    assert await centre.admin.fetchval("SELECT count(*) FROM incident_log") == 1
    commands.sends.release()
    assert (await asyncio.wait_for(waiting, 10))["ok"]
    # Only the released one was sent: the one held too long never was.
    kinds = [r["kind"] for r in await centre.admin.fetch("SELECT kind FROM incident_log")]
    assert kinds == ["open", "acknowledge"]


@pytest.mark.asyncio
async def test_site_states_a_dispatcher_held_when_it_died_are_replayed_from_the_signals(
    centre: Centre,
) -> None:
    await centre.stop_dispatcher()
    await centre.start_dispatcher(site_interval=3600)  # after its first write, it holds them
    await centre.send("1234", "Nri1/BA003")
    await centre.wait_for(OPEN_INCIDENTS, "1234", "burglary")
    await centre.send("1234", "Nri1/CL012")  # armed by user 12: zone 3's burglary is over
    await centre.send("1234", "Nri1/BA005")
    await centre.wait_for(OPEN_INCIDENTS + " AND signal_count = 2", "1234", "burglary")
    (held,) = await centre.admin.fetch("SELECT state FROM site_state WHERE account = '1234'")
    assert orjson.loads(held["state"])["signals_seen"] == 1
    await centre.crash_dispatcher()
    await centre.start_dispatcher()
    (site,) = await centre.wait_for(
        "SELECT state FROM site_state WHERE account = '1234' AND (state->>'signals_seen')::int = 3"
    )
    state = orjson.loads(site["state"])
    assert (state["partitions"]["1"]["armed"], state["partitions"]["1"]["by_user"]) == (True, "12")
    alarms = {zone: alarm["hazard"] for zone, alarm in state["alarms"].items()}
    assert alarms == {"3": None, "5": "burglary"}
    # Replayed into the site only: no incident decided twice.
    (row,) = await centre.admin.fetch(OPEN_INCIDENTS, "1234", "burglary")
    assert row["signal_count"] == 2
    log = await centre.admin.fetch("SELECT kind FROM incident_log ORDER BY chain_seq")
    assert [r["kind"] for r in log] == ["open", "join", "raise_grade"]  # zone 5 confirms
    report = await verify(conn=centre.admin, tables=["incident_log"])
    assert report.intact and report.rows == 3


@pytest.mark.asyncio
async def test_a_guard_who_does_not_qualify_is_never_dispatched(
    centre: Centre, commands: CommandClient
) -> None:
    await centre.send("1234", "Nri1/BA003")
    (row,) = await centre.wait_for(OPEN_INCIDENTS, "1234", "burglary")

    async def do(kind: Kind, actor: str, role: Role, **details: Any) -> dict:
        return await commands.submit(
            account="1234",
            incident_id=row["incident_id"],
            kind=kind,
            actor=actor,
            role=role,
            details=details,
        )

    assert (await do(Kind.ACKNOWLEDGE, "op1", Role.OPERATOR))["ok"]
    refused = await do(Kind.DISPATCH, "op1", Role.OPERATOR, guard=str(EXPIRED_GUARD))
    assert refused["ok"] is False and "R2" in refused["rule"]
    assert "expired" in refused["message"] and "李强" in refused["message"]
    unknown = await do(Kind.DISPATCH, "op1", Role.OPERATOR, guard=str(uuid.uuid4()))
    assert unknown["ok"] is False
    sent = await do(Kind.DISPATCH, "op1", Role.OPERATOR, guard=str(GOOD_GUARD))
    assert sent["status"] == "dispatched"
    # Only that guard answers for it, in order: accept, then arrive.
    assert not (await do(Kind.GUARD_ACCEPT, str(EXPIRED_GUARD), Role.GUARD))["ok"]
    assert (await do(Kind.GUARD_ACCEPT, str(GOOD_GUARD), Role.GUARD))["ok"]
    assert (await do(Kind.GUARD_ARRIVE, str(GOOD_GUARD), Role.GUARD))["status"] == "on_site"
    (row,) = await centre.admin.fetch(
        "SELECT guard, status FROM incidents WHERE incident_id = $1", row["incident_id"]
    )
    assert (row["guard"], row["status"]) == (str(GOOD_GUARD), "on_site")


@pytest.mark.asyncio
async def test_arc_incidents_lists_the_queue_and_audits_the_look(centre: Centre) -> None:
    await centre.send("1234", "Nri1/BA003")
    await centre.send("1234", "Nri1/FA001")
    await centre.wait_for(OPEN_INCIDENTS, "1234", "fire")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARC_")}
    env["ARC_DATABASE_URL"] = centre.database_url
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arc.cli",
        "incidents",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    listed = orjson.loads(out)
    assert [(i["event_class"], i["grade"]) for i in listed] == [("fire", 1), ("burglary", 2)]
    (audited,) = await centre.admin.fetch(
        "SELECT actor, details FROM audit_log WHERE action = 'incidents.list'"
    )
    assert audited["actor"].startswith("cli") and orjson.loads(audited["details"])["shown"] == 2
