"""Storm mode and the 12-month false-alarm count on the real PostgreSQL and broker.

The centre of ``test_dispatch`` (receiver, log writer and dispatcher in this
process); storms are started with ``arc.dispatch.storm_store`` as the
console does, or with ``arc storm`` as a supervisor does, and the dispatcher
is restarted where a test needs it to have the storm for certain (a reload
on NOTIFY comes within a fraction of a second, but a test must not guess).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import asyncpg
import orjson
import pytest

from arc import db
from arc.dispatch import cli as dispatch_cli
from arc.dispatch import storm_store
from arc.dispatch.commands import CommandClient
from arc.dispatch.lifecycle import Kind, Role, rebuild
from arc.dispatch.store import rebuild_changes
from arc.dispatch.storm import StormRefused
from arc.integrity.verify import verify
from tests.integration import test_dispatch
from tests.integration.test_dispatch import OPEN_INCIDENTS, Centre

# test_dispatch's centre and command client, used here as they are there.
centre = test_dispatch.centre
commands = test_dispatch.commands

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ACTOR = "sup:王芳"
# Accounts of both test accounts' shards and others (keyed by account: spread over partitions).
GROUPED = ["1234", "5678", "1001", "1002", "1003", "1004", "1005"]


async def arc_cli(database_url: str, *args: str) -> tuple[int, bytes, bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARC_")}
    env["ARC_DATABASE_URL"] = database_url
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arc.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out, err


@pytest.mark.asyncio
async def test_arc_storm_starts_lists_and_stops_each_audited_and_announced(
    database_url: str,
) -> None:
    conn = await db.connect(database_url)
    try:
        await db.migrate(conn=conn)
        heard: asyncio.Queue[str] = asyncio.Queue()
        await conn.add_listener("arc_rules", lambda *a: heard.put_nowait(str(a[-1])))
        code, out, err = await arc_cli(
            database_url,
            *("storm", "start", "burglary", "--mode", "group", "--minutes", "30"),
            *("--reason", "朝阳区大面积停电"),
        )
        assert code == 0, err
        assert out.decode().startswith("风暴模式已开启 storm mode on: 盗警 burglary 合并 group")
        async with asyncio.timeout(10):
            assert await heard.get() == "storm_modes"  # the dispatchers reload
        # One storm per class at a time; the refusal names the rule.
        code, _, err = await arc_cli(
            database_url,
            *("storm", "start", "burglary", "--mode", "log", "--minutes", "5", "--reason", "x"),
        )
        assert code == 1 and "already; stop it first" in err.decode()
        assert "风暴模式 storm mode" in err.decode()
        with pytest.raises(StormRefused, match="at most 24 h"):
            await storm_store.start_storm(
                conn=conn,
                event_class="trouble",
                mode="log",
                minutes=25 * 60,
                delay_seconds=None,
                reason="停电",
                actor=ACTOR,
            )
        with pytest.raises(StormRefused, match="not in storm mode"):
            await storm_store.stop_storm(conn=conn, event_class="trouble", reason="r", actor=ACTOR)
        # The table refuses what the rules refuse, whoever writes it.
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO storm_modes (storm_id, event_class, mode, delay_seconds, started_at,"
                " ends_at, reason, started_by) VALUES (gen_random_uuid(), 'trouble', 'delay',"
                " 3600, now(), now() + interval '1 hour', 'r', 'x')"
            )
        code, out, _ = await arc_cli(database_url, "storm", "stop", "burglary", "--reason", "来电")
        assert code == 0 and out.decode().startswith("风暴模式已结束 storm mode off: 盗警")
        code, out, _ = await arc_cli(database_url, "storm", "list", "--json")
        (listed,) = orjson.loads(out)
        assert listed["active"] is False and listed["stop_reason"] == "来电"
        assert listed["mode"] == "group" and listed["reason"] == "朝阳区大面积停电"
        audited = await conn.fetch(
            "SELECT action, actor, details FROM audit_log WHERE action LIKE 'storm.%'"
            " ORDER BY chain_seq"
        )
        assert [r["action"] for r in audited] == ["storm.start", "storm.stop"]
        assert all(r["actor"].startswith("cli") for r in audited)
        assert orjson.loads(audited[1]["details"])["reason"] == "来电"
        # The app role reads storms and cannot change them.
        grants = await conn.fetch(
            "SELECT privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = 'arc_app' AND table_name = 'storm_modes'"
        )
        assert [r["privilege_type"] for r in grants] == ["SELECT"]
    finally:
        await conn.close()


async def start(centre: Centre, event_class: str, mode: str, **more: Any) -> None:
    await storm_store.start_storm(
        conn=centre.admin,
        event_class=event_class,
        mode=mode,
        minutes=more.get("minutes", 30),
        delay_seconds=more.get("delay"),
        reason="朝阳区大面积停电",
        actor=ACTOR,
    )
    await centre.stop_dispatcher()
    await centre.start_dispatcher()  # has the storm for certain


@pytest.mark.asyncio
async def test_log_and_group_modes_keep_the_queue_clear_but_never_grade_one(
    centre: Centre,
) -> None:
    await centre.admin.execute(
        "INSERT INTO accounts (account, name) SELECT a, 'shop ' || a FROM unnest($1::text[]) a",
        [a for a in GROUPED if a not in ("1234", "5678")],
    )
    await start(centre, "burglary", "log")
    await centre.send("1234", "Nri1/BA003")
    (logged,) = await centre.wait_for(OPEN_INCIDENTS + " AND status = 'closed'", "1234", "burglary")
    assert logged["resolution"] == "storm_logged" and logged["owner"] is None
    await centre.send("1234", "Nri1/FA001")  # life at risk: the queue, as always
    (fire,) = await centre.wait_for(OPEN_INCIDENTS, "1234", "fire")
    assert (fire["status"], fire["grade"]) == ("new", 1)
    assert orjson.loads(fire["state"])["storm"] is None
    log = await centre.admin.fetch(
        "SELECT * FROM incident_log WHERE incident_id = $1 ORDER BY chain_seq",
        logged["incident_id"],
    )
    assert [r["kind"] for r in log] == ["open", "auto_close"]
    closing = orjson.loads(log[1]["details"])
    assert closing["reason"].startswith("风暴模式自动记录") and closing["storm"]["mode"] == "log"
    assert rebuild(rebuild_changes(log)).resolution == logged["resolution"]

    await storm_store.stop_storm(conn=centre.admin, event_class="burglary", reason="r", actor=ACTOR)
    await start(centre, "burglary", "group")
    for account in GROUPED:
        await centre.send(account, "Nri1/BA001")
    grouped = await centre.wait_for(
        "SELECT * FROM incidents WHERE state->>'storm' = 'group'"
        " AND (SELECT sum(signal_count) FROM incidents WHERE state->>'storm' = 'group') = $1",
        len(GROUPED),
    )
    # One storm incident per shard, listing that shard's accounts, worked like any incident.
    shard_of = {
        r["account"]: r["shard"]
        for r in await centre.admin.fetch("SELECT DISTINCT account, shard FROM signal_log")
    }
    assert len(grouped) == len({shard_of[a] for a in GROUPED})
    for row in grouped:
        listed = orjson.loads(row["state"])["accounts"]
        assert listed == sorted(a for a in GROUPED if shard_of[a] == row["shard"])
        assert row["status"] == "new" and row["account"] in listed
    largest = max(grouped, key=lambda r: r["signal_count"])
    accounts = ", ".join(orjson.loads(largest["state"])["accounts"])
    code, out, _ = await arc_cli(centre.database_url, "incidents")
    assert code == 0 and f"用户 {largest['signal_count']} 个 accounts: {accounts}" in out.decode()
    report = await verify(conn=centre.admin, tables=["incident_log"])
    assert report.intact


@pytest.mark.asyncio
async def test_delay_mode_holds_closes_the_restored_and_queues_the_rest(centre: Centre) -> None:
    await start(centre, "burglary", "delay", delay=3)
    await centre.send("1234", "Nri1/BA003")
    await centre.send("5678", "Nri1/BA002")
    held = await centre.wait_for(
        "SELECT * FROM incidents WHERE state->>'held_until' IS NOT NULL"
        " AND (SELECT count(*) FROM incidents WHERE state->>'held_until' IS NOT NULL) = 2"
    )
    assert {r["account"] for r in held} == {"1234", "5678"}
    # Out of the queue while held: what `arc incidents` lists.
    assert await centre.admin.fetch(dispatch_cli._QUERY, False, None, 100) == []
    await centre.send("1234", "Nri1/BR003")  # restored within the delay
    (closed,) = await centre.wait_for(
        OPEN_INCIDENTS + " AND status = 'closed'", "1234", "burglary", within=5
    )
    assert closed["resolution"] == "restored" and closed["owner"] is None
    (queued,) = await centre.wait_for(
        OPEN_INCIDENTS + " AND state->>'held_until' IS NULL", "5678", "burglary", within=6
    )
    assert queued["status"] == "new"
    (released,) = await centre.admin.fetch(
        "SELECT details FROM incident_log WHERE incident_id = $1 AND kind = 'release'",
        queued["incident_id"],
    )
    assert orjson.loads(released["details"])["storm"]["delay_s"] == 3


@pytest.mark.asyncio
async def test_false_alarms_are_counted_shown_on_new_incidents_and_survive_a_restart(
    centre: Centre, commands: CommandClient
) -> None:
    async def close_as_false_alarm(incident_id: Any) -> None:
        for kind, details in [
            (Kind.ACKNOWLEDGE, {}),
            (Kind.STEP_WAIVED, {"step": 1, "reason": "业主在场"}),
            (Kind.STEP_WAIVED, {"step": 2, "reason": "业主在场"}),
            (Kind.RESOLVE, {}),
            (Kind.CLOSE, {"resolution": "false_alarm", "cause": "user_error"}),
        ]:
            outcome = await commands.submit(
                account="1234",
                incident_id=incident_id,
                kind=kind,
                actor="sup1",
                role=Role.SUPERVISOR,
                details=details,
            )
            assert outcome["ok"], outcome

    for count in range(2):
        await centre.send("1234", "Nri1/BA003")
        (row,) = await centre.wait_for(OPEN_INCIDENTS + " AND status = 'new'", "1234", "burglary")
        assert orjson.loads(row["state"])["false_alarms_12m"] == count
        await close_as_false_alarm(row["incident_id"])
    await centre.stop_dispatcher()  # the count is loaded with the shard
    await centre.start_dispatcher()
    await centre.send("1234", "Nri1/BA003")
    (row,) = await centre.wait_for(OPEN_INCIDENTS + " AND status = 'new'", "1234", "burglary")
    state = orjson.loads(row["state"])
    assert state["false_alarms_12m"] == 2
    assert state["warning"].startswith("12个月内误报 2 次，再误报 1 次公安机关将不再出警")
    code, out, _ = await arc_cli(centre.database_url, "incidents")
    assert code == 0 and "- 12个月内误报 2 次" in out.decode()
    code, out, _ = await arc_cli(centre.database_url, "false-alarms", "--json")
    (listed,) = orjson.loads(out)
    assert (listed["account"], listed["false_alarms_12m"], listed["limit"]) == ("1234", 2, 3)
    assert listed["warning"] == state["warning"]
    actions = await centre.admin.fetch("SELECT action FROM audit_log ORDER BY chain_seq")
    assert "incidents.false_alarms" in [r["action"] for r in actions]
