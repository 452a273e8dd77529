"""Classification overrides and response plans on the real PostgreSQL and broker (R4).

Each change is written with ``arc.dispatch.rules_store`` as the console does,
or with ``arc rules`` as a supervisor does; the end-to-end test changes the
rules under the running dispatcher of ``test_dispatch``'s centre and waits
(bounded) for its reload to be logged before sending the next signal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
import pytest_asyncio

from arc import db
from arc.dispatch import rules_store
from arc.dispatch.classification import Grade, Override
from arc.dispatch.plans import DEFAULT_PLANS, PlanStep, StepKind
from arc.dispatch.rules import Level, RulesRefused
from arc.dispatch.service import _plan_override
from tests.integration import test_dispatch
from tests.integration.test_dispatch import OPEN_INCIDENTS, Centre, steps_of
from tests.integration.test_storm import arc_cli

centre = test_dispatch.centre

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ACTOR = "sup:王芳"
POLICE = PlanStep(StepKind.CALL_POLICE, timedelta(seconds=30))
GUARD = PlanStep(StepKind.DISPATCH_GUARD, timedelta(seconds=90))
KEYHOLDERS = PlanStep(StepKind.CALL_KEYHOLDERS, timedelta(seconds=120), required=False)


@pytest_asyncio.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    connection = await db.connect(database_url)
    try:
        await db.migrate(conn=connection)
        await connection.execute(
            "INSERT INTO accounts (account, name) VALUES ('1234', 'shop'), ('5678', 'bank')"
        )
        yield connection
    finally:
        await connection.close()


async def counts(conn: asyncpg.Connection[asyncpg.Record]) -> tuple[int, int, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM classification_overrides) AS o,"
        " (SELECT count(*) FROM response_plans) AS p, (SELECT count(*) FROM audit_log) AS a"
    )
    assert row is not None
    return row["o"], row["p"], row["a"]


async def audited(conn: asyncpg.Connection[asyncpg.Record]) -> list[tuple[str, str, Any]]:
    rows = await conn.fetch(
        "SELECT action, subject, details FROM audit_log WHERE action LIKE 'rules.%'"
        " ORDER BY chain_seq"
    )
    return [(r["action"], r["subject"], orjson.loads(r["details"])) for r in rows]


@pytest.mark.asyncio
async def test_each_change_writes_its_row_and_its_audit_row_and_is_announced(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()
    await conn.add_listener("arc_rules", lambda *a: heard.put_nowait(str(a[-1])))
    first = await rules_store.set_override(
        conn=conn, match="sia:ba", grade=1, reason="夜间盗警一律一级", actor=ACTOR
    )
    assert first == Override("SIA:BA", None, Grade.LIFE)
    async with asyncio.timeout(10):
        assert await heard.get() == "classification_overrides"  # the dispatchers reload
    await rules_store.set_override(
        conn=conn, match="SIA:BA", grade=3, event_class="trouble", reason="改为故障", actor=ACTOR
    )
    # One zone, however it is spelt: "003" replaces "3".
    await rules_store.set_override(
        conn=conn,
        match="CID:130",
        grade=4,
        account="1234",
        zone="3",
        reason="测试防区",
        actor=ACTOR,
    )
    zoned = await rules_store.set_override(
        conn=conn, match="CID:130", grade=2, account="1234", zone="003", reason="恢复", actor=ACTOR
    )
    assert zoned.zone == "003"
    listed = await rules_store.list_overrides(conn=conn)
    assert [(s.override.account, s.override.zone, s.override.grade) for s in listed] == [
        ("", "", Grade.ATTENTION),
        ("1234", "003", Grade.URGENT),
    ]
    assert listed[0].reason == "改为故障" and listed[0].updated_by == ACTOR

    plan = await rules_store.set_plan(
        conn=conn,
        event_class="burglary",
        account="5678",
        steps=[POLICE, GUARD, KEYHOLDERS],
        reason="银行：先报 110",
        actor=ACTOR,
    )
    assert plan.steps == (POLICE, GUARD, KEYHOLDERS) and plan.grade is None
    (stored,) = await conn.fetch("SELECT * FROM response_plans")
    assert _plan_override(stored) == plan  # what the dispatcher reads is what was written
    assert (await rules_store.list_plans(conn=conn))[0].plan == plan

    # What applies, and from which level.
    here = await rules_store.effective_classification(
        conn=conn, code="130", account="1234", zone="3"
    )
    assert (here.level, here.grade, here.event_class) == (Level.ZONE, Grade.URGENT, "burglary")
    there = await rules_store.effective_classification(conn=conn, code="BA", account="5678")
    assert (there.level, there.event_class) == (Level.GLOBAL, "trouble")
    bank = await rules_store.effective_plan(
        conn=conn, event_class="burglary", grade=2, account="5678"
    )
    assert (bank.level, bank.steps) == (Level.ACCOUNT, plan.steps)
    shop = await rules_store.effective_plan(conn=conn, event_class="burglary", grade=2)
    assert (shop.level, shop.steps) == (Level.DEFAULT, DEFAULT_PLANS["burglary"])

    removed = await rules_store.remove_override(
        conn=conn, match="CID:130", account="1234", zone="3", reason="撤销", actor=ACTOR
    )
    assert removed.zone == "003"
    await rules_store.remove_plan(
        conn=conn, event_class="burglary", account="5678", reason="撤销", actor=ACTOR
    )
    assert await counts(conn) == (1, 0, 7)
    log = await audited(conn)
    assert [(a, s) for a, s, _ in log] == [
        ("rules.classify", "classification:SIA:BA"),
        ("rules.classify", "classification:SIA:BA"),
        ("rules.classify", "classification:CID:130@1234/3"),
        ("rules.classify", "classification:CID:130@1234/003"),
        ("rules.plan", "plan:burglary@5678"),
        ("rules.unclassify", "classification:CID:130@1234/003"),
        ("rules.unplan", "plan:burglary@5678"),
    ]
    before, after = log[1][2]["before"], log[1][2]["after"]
    assert (before["grade"], before["event_class"], before["reason"]) == (
        1,
        None,
        "夜间盗警一律一级",
    )
    assert (after["grade"], after["event_class"], after["reason"]) == (3, "trouble", "改为故障")
    assert log[0][2]["before"] is None and log[0][2]["reason"] == "夜间盗警一律一级"
    assert log[3][2]["before"]["zone"] == "3" and log[3][2]["after"]["zone"] == "003"
    assert log[4][2]["after"]["steps"][0] == {"kind": "call_police", "deadline_s": 30.0,
                                              "required": True}  # fmt: skip
    assert log[6][2]["after"] is None and log[6][2]["before"]["account"] == "5678"


@pytest.mark.asyncio
async def test_refusals_name_the_rule_and_change_nothing(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    await rules_store.set_override(conn=conn, match="SIA:BA", grade=2, reason="r", actor=ACTOR)
    await rules_store.set_plan(
        conn=conn, event_class="fire", steps=[GUARD], reason="r", actor=ACTOR
    )
    unchanged = await counts(conn)
    overrides: list[tuple[dict[str, Any], str]] = [
        ({"match": "BA"}, "is not a match"),
        ({"match": "ARC:SCHEDULES"}, "is not a match"),
        ({"match": "class:fridge"}, "no class 'fridge'"),
        ({"match": "SIA:BA", "event_class": "fridge"}, "no class 'fridge'"),
        ({"match": "SIA:BA", "zone": "3"}, "is a zone of one account"),
        ({"match": "SIA:BA", "account": "9999"}, "no account 9999"),
        ({"match": "SIA:BA", "grade": 5}, "a grade is 1"),
        ({"match": "SIA:BA", "reason": "  "}, "needs a reason"),
    ]
    for change, why in overrides:
        arguments: dict[str, Any] = {"grade": 1, "reason": "r", **change}
        with pytest.raises(RulesRefused, match=why) as refused:
            await rules_store.set_override(conn=conn, actor=ACTOR, **arguments)
        assert str(refused.value).endswith(
            "(报警分级 classification (联网报警运营规范 §8.4.1, REGULATION R4))"
        )
    plans: list[tuple[dict[str, Any], str]] = [
        ({"steps": []}, "at least one step"),
        ({"steps": [GUARD, POLICE, GUARD]}, "dispatch_guard .* appears twice"),
        ({"steps": [PlanStep(StepKind.CALL_POLICE, timedelta(days=2))]}, "a day"),
        ({"event_class": "fridge"}, "no class 'fridge'"),
        ({"account": "9999"}, "no account 9999"),
        ({"grade": 4}, "grade 4 opens no incident"),
    ]
    for change, why in plans:
        arguments = {"event_class": "fire", "steps": [POLICE], "reason": "r", **change}
        with pytest.raises(RulesRefused, match=why) as refused:
            await rules_store.set_plan(conn=conn, actor=ACTOR, **arguments)
        assert "报警处置预案 response plan" in refused.value.rule
    with pytest.raises(RulesRefused, match="全局 global has no override of SIA:FA"):
        await rules_store.remove_override(conn=conn, match="SIA:FA", reason="r", actor=ACTOR)
    with pytest.raises(
        RulesRefused, match=r"用户 account 1234 has no plan .* fire \(every grade\)"
    ):
        await rules_store.remove_plan(
            conn=conn, event_class="fire", account="1234", reason="r", actor=ACTOR
        )
    assert await counts(conn) == unchanged


@pytest.mark.asyncio
async def test_the_app_role_reads_the_rules_and_cannot_change_them(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    await rules_store.set_override(conn=conn, match="SIA:BA", grade=1, reason="r", actor=ACTOR)
    for table in ("classification_overrides", "response_plans"):
        grants = await conn.fetch(
            "SELECT privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = 'arc_app' AND table_name = $1",
            table,
        )
        assert [r["privilege_type"] for r in grants] == ["SELECT"]
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE arc_app")
        assert await conn.fetchval("SELECT count(*) FROM classification_overrides") == 1
        for sql in (
            "INSERT INTO classification_overrides (match, grade, reason, updated_by)"
            " VALUES ('SIA:FA', 4, 'r', 'x')",
            "UPDATE classification_overrides SET grade = 4",
            "DELETE FROM classification_overrides",
            "INSERT INTO response_plans (event_class, steps, reason, updated_by)"
            " VALUES ('fire', '[]', 'r', 'x')",
            "DELETE FROM response_plans",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute(sql)
    assert await counts(conn) == (1, 0, 1)


@pytest.mark.asyncio
async def test_arc_rules_sets_lists_shows_and_refuses(database_url: str) -> None:
    setup = await db.connect(database_url)
    try:
        await db.migrate(conn=setup)
        await setup.execute("INSERT INTO accounts (account, name) VALUES ('1234', 'shop')")
    finally:
        await setup.close()
    code, out, err = await arc_cli(
        database_url,
        *("rules", "classify", "SIA:BA", "--grade", "1", "--account", "1234", "--zone", "3"),
        *("--reason", "金库防区"),
    )
    assert (code, err) == (0, b"")
    assert out.decode() == (
        "报警分级已设置 classification set: 用户 account 1234 防区 zone 3 SIA:BA → 1 危及生命"
        " life at risk\n"
    )
    code, out, err = await arc_cli(
        database_url,
        *("rules", "plan", "burglary", "--grade", "1", "--step", "call_police:60"),
        *("--step", "dispatch_guard:120", "--step", "call_keyholders:300:optional"),
        *("--reason", "一级盗警先报 110"),
    )
    assert (code, err) == (0, b"")
    assert out.decode().endswith(
        "burglary 1 级 grade 1: call_police:60, dispatch_guard:120, call_keyholders:300:optional\n"
    )
    code, out, _ = await arc_cli(
        database_url, "rules", "show", "BA", "--account", "1234", "--zone", "003", "--json"
    )
    shown = orjson.loads(out)
    assert (shown["grade"], shown["level"], shown["override"]["reason"]) == (1, "zone", "金库防区")
    assert shown["plan"]["level"] == "global" and shown["plan"]["stored"]["grade"] == 1
    assert [s["kind"] for s in shown["plan"]["steps"]] == [
        "call_police",
        "dispatch_guard",
        "call_keyholders",
    ]
    code, out, _ = await arc_cli(database_url, "rules", "list")
    text = out.decode()
    assert code == 0 and "1 override\n" in text and "1 plan;" in text and "金库防区" in text
    # Refused: exit 1, the rule named; wrong usage: exit 2.
    code, out, err = await arc_cli(
        database_url,
        *("rules", "plan", "fire", "--step", "call_police:60", "--step", "call_police:90"),
        *("--reason", "r"),
    )
    assert (code, out) == (1, b"")
    assert err.decode() == (
        "arc rules plan: step call_police (报警 110) appears twice; each kind once, in the order"
        " the operator works them (报警处置预案 response plan (联网报警运营规范 §8.4.1,"
        " REGULATION R4))\n"
    )
    code, _, err = await arc_cli(
        database_url, "rules", "plan", "fire", "--step", "call_police:soon", "--reason", "r"
    )
    assert code == 2 and "whole seconds after the incident opened" in err.decode()


class Reloads(logging.Handler):
    """The dispatcher's "rules loaded" lines, as they come (it runs in this event loop)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.changed.set()

    async def wait_for(self, overrides: int, plans: int) -> None:
        line = f"rules loaded: {overrides} overrides, {plans} plans"
        async with asyncio.timeout(10):
            while line not in self.lines:
                self.changed.clear()
                await self.changed.wait()


@pytest_asyncio.fixture
async def reloads() -> AsyncIterator[Reloads]:
    logger = logging.getLogger("arc.dispatch.service")
    handler, level = Reloads(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.asyncio
async def test_the_running_dispatcher_applies_a_change_to_the_next_signal(
    reloads: Reloads, centre: Centre
) -> None:
    # A zone of 1234 regraded, the zone spelt as the supervisor typed it ("3" for "003").
    await rules_store.set_override(
        conn=centre.admin,
        match="SIA:BA",
        grade=1,
        account="1234",
        zone="3",
        reason="金库防区",
        actor=ACTOR,
    )
    await reloads.wait_for(1, 0)
    await centre.send("1234", "Nri1/BA003")
    (vault,) = await centre.wait_for(OPEN_INCIDENTS, "1234", "burglary")
    assert vault["grade"] == 1
    assert steps_of(vault) == [
        (s.kind.value, s.required, "pending") for s in DEFAULT_PLANS["burglary"]
    ]
    (opening,) = await centre.admin.fetch(
        "SELECT details FROM incident_log WHERE incident_id = $1", vault["incident_id"]
    )
    assert (
        orjson.loads(opening["details"])["classified_by"] == "override account 1234 zone 3 SIA:BA"
    )

    # The bank's own plan replaces the default steps of its next incident.
    await rules_store.set_plan(
        conn=centre.admin,
        event_class="burglary",
        account="5678",
        steps=[POLICE, GUARD],
        reason="银行：先报 110",
        actor=ACTOR,
    )
    await reloads.wait_for(1, 1)
    await centre.send("5678", "Nri1/BA002")
    (bank,) = await centre.wait_for(OPEN_INCIDENTS, "5678", "burglary")
    assert bank["grade"] == 2  # the zone override is 1234's only
    assert steps_of(bank) == [
        ("call_police", True, "pending"),
        ("dispatch_guard", True, "pending"),
    ]
    deadlines = [
        datetime.fromisoformat(s["deadline"]) - bank["opened_at"]
        for s in orjson.loads(bank["state"])["steps"]
    ]
    assert deadlines == [POLICE.deadline, GUARD.deadline]


@pytest.mark.asyncio
async def test_the_dispatchers_own_codes_can_be_regraded_and_nothing_else_of_arc(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    # A centre whose managers forget to arm: 未按时布防 for this account is urgent.
    await rules_store.set_override(
        conn=conn, match="arc:schedule", grade=2, account="1234", reason="金库", actor=ACTOR
    )
    effective = await rules_store.effective_classification(
        conn=conn, code="ARC:SCHEDULE", account="1234"
    )
    assert (effective.level, effective.grade) == ("account", 2)
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(
            "INSERT INTO classification_overrides (match, grade, reason, updated_by)"
            " VALUES ('ARC:OTHER', 2, 'r', 'test')"
        )
