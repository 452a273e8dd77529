"""The centre's classification overrides and response plans in the database, each change audited.

The console and ``arc rules classify | unclassify | plan | unplan`` call these
with a connection of the schema's owner (``arc_app`` may only read the
tables). Each change is checked first (``arc.dispatch.rules``: a refusal
changes nothing and names the rule), then written with its ``audit_log`` row
(what was there before, what is there after, why) in one transaction; the
tables' trigger tells the dispatchers (NOTIFY ``arc_rules``), which reload
them and classify the next signal by the new rules, without a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from arc import audit
from arc.db import Connection
from arc.dispatch import rules
from arc.dispatch.classification import CLASSES, Grade, Override, Overrides, zone_key
from arc.dispatch.plans import PlanOverride, Plans, PlanStep, StepKind
from arc.dispatch.rules import (
    CLASSIFICATION_RULE,
    PLAN_RULE,
    EffectiveClassification,
    EffectivePlan,
    RulesRefused,
    describe_scope,
)

_OVERRIDES = """
SELECT account, zone, match, event_class, grade, reason, updated_by, updated_at
FROM classification_overrides
"""
_PLANS = """
SELECT account, event_class, grade, steps, reason, updated_by, updated_at
FROM response_plans
"""


@dataclass(frozen=True, slots=True)
class StoredOverride:
    """A row of ``classification_overrides``: the override, and who set it, when and why."""

    override: Override
    reason: str
    updated_by: str
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        """The row as the audit log and ``arc rules list --json`` show it."""
        o = self.override
        return {
            "match": o.match,
            "event_class": o.event_class,
            "grade": int(o.grade),
            "account": o.account,
            "zone": o.zone,
            "level": rules.override_level(o).value,
            "reason": self.reason,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class StoredPlan:
    """A row of ``response_plans``: the plan, and who set it, when and why."""

    plan: PlanOverride
    reason: str
    updated_by: str
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        """The row as the audit log and ``arc rules list --json`` show it."""
        p = self.plan
        return {
            "event_class": p.event_class,
            "grade": p.grade or 0,
            "account": p.account,
            "level": rules.plan_level(p).value,
            "steps": [s.as_json() for s in p.steps],
            "reason": self.reason,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at.isoformat(),
        }


def _stored_override(row: asyncpg.Record) -> StoredOverride:
    return StoredOverride(
        override=Override(
            match=row["match"],
            event_class=row["event_class"],
            grade=Grade(row["grade"]),
            account=row["account"],
            zone=row["zone"],
        ),
        reason=row["reason"],
        updated_by=row["updated_by"],
        updated_at=row["updated_at"],
    )


def _steps(data: object) -> tuple[PlanStep, ...]:
    items = orjson.loads(data) if isinstance(data, str | bytes) else data
    assert isinstance(items, list)  # noqa: S101 - the column is a JSON array by construction
    return tuple(
        PlanStep(StepKind(s["kind"]), timedelta(seconds=s["deadline_s"]), s["required"])
        for s in items
    )


def _stored_plan(row: asyncpg.Record) -> StoredPlan:
    return StoredPlan(
        plan=PlanOverride(
            event_class=row["event_class"],
            steps=_steps(row["steps"]),
            grade=row["grade"] or None,
            account=row["account"],
        ),
        reason=row["reason"],
        updated_by=row["updated_by"],
        updated_at=row["updated_at"],
    )


def _override_subject(match: str, account: str, zone: str) -> str:
    scope = "" if not account else f"@{account}" + (f"/{zone}" if zone else "")
    return f"classification:{match}{scope}"


def _plan_subject(event_class: str, grade: int, account: str) -> str:
    return (
        f"plan:{event_class}"
        + (f"/grade{grade}" if grade else "")
        + (f"@{account}" if account else "")
    )


async def _check_account(conn: Connection, account: str, rule: str) -> None:
    found = account and await conn.fetchval("SELECT 1 FROM accounts WHERE account = $1", account)
    if account and found is None:
        raise RulesRefused(f"no account {account} (arc account add {account})", rule)


async def _override_row(
    conn: Connection, match: str, account: str, zone: str
) -> asyncpg.Record | None:
    """The stored row of this scope and match, its zone spelt "3" or "003"."""
    rows = await conn.fetch(
        _OVERRIDES + " WHERE account = $1 AND match = $2 AND (zone = '') = ($3 = '')",
        account,
        match,
        zone,
    )
    key = zone_key(zone)
    return next((r for r in rows if zone_key(r["zone"]) == key), None)


async def _lock(conn: Connection, table: str) -> None:
    # Changes to one table queue here, so "read the row, write the row" sees the
    # last change; the dispatchers' reads (ACCESS SHARE) are not held up.
    await conn.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")


async def set_override(
    *,
    conn: Connection,
    match: str,
    grade: int,
    event_class: str | None = None,
    account: str = "",
    zone: str = "",
    reason: str,
    actor: str,
) -> Override:
    """Set how signals matching ``match`` are classed and graded in this scope; audited."""
    override = rules.check_override(
        match=match, grade=grade, event_class=event_class, account=account, zone=zone
    )
    text = rules.check_reason(reason, CLASSIFICATION_RULE)
    async with conn.transaction():
        await _lock(conn, "classification_overrides")
        await _check_account(conn, override.account, CLASSIFICATION_RULE)
        found = await _override_row(conn, override.match, override.account, override.zone)
        before = None if found is None else _stored_override(found)
        if before is not None and before.override.zone != override.zone:
            # Another spelling of the zone ("3" for "003"): one zone, one row; the new spelling.
            await conn.execute(
                "DELETE FROM classification_overrides WHERE account = $1 AND zone = $2"
                " AND match = $3",
                before.override.account,
                before.override.zone,
                before.override.match,
            )
        row = await conn.fetchrow(
            "INSERT INTO classification_overrides (account, zone, match, event_class, grade,"
            " reason, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (account, zone, match) DO UPDATE SET event_class = EXCLUDED.event_class,"
            " grade = EXCLUDED.grade, reason = EXCLUDED.reason, updated_by = EXCLUDED.updated_by,"
            " updated_at = now()"
            " RETURNING account, zone, match, event_class, grade, reason, updated_by, updated_at",
            override.account,
            override.zone,
            override.match,
            override.event_class,
            int(override.grade),
            text,
            actor,
        )
        assert row is not None  # noqa: S101 - INSERT ... RETURNING returns the row
        after = _stored_override(row)
        await audit.record(
            conn=conn,
            actor=actor,
            action="rules.classify",
            subject=_override_subject(override.match, override.account, override.zone),
            details={
                "before": None if before is None else before.as_json(),
                "after": after.as_json(),
                "reason": text,
            },
        )
    return after.override


async def remove_override(
    *,
    conn: Connection,
    match: str,
    account: str = "",
    zone: str = "",
    reason: str,
    actor: str,
) -> Override:
    """Remove the override of ``match`` in this scope (the default applies again); audited."""
    checked = rules.parse_match(match)
    scope_account, scope_zone = rules.check_scope(account, zone, CLASSIFICATION_RULE)
    text = rules.check_reason(reason, CLASSIFICATION_RULE)
    async with conn.transaction():
        await _lock(conn, "classification_overrides")
        found = await _override_row(conn, checked, scope_account, scope_zone)
        if found is None:
            raise RulesRefused(
                f"{describe_scope(scope_account, scope_zone)} has no override of {checked}"
                " (arc rules list)"
            )
        before = _stored_override(found)
        await conn.execute(
            "DELETE FROM classification_overrides WHERE account = $1 AND zone = $2 AND match = $3",
            before.override.account,
            before.override.zone,
            before.override.match,
        )
        await audit.record(
            conn=conn,
            actor=actor,
            action="rules.unclassify",
            subject=_override_subject(checked, before.override.account, before.override.zone),
            details={"before": before.as_json(), "after": None, "reason": text},
        )
    return before.override


async def list_overrides(*, conn: Connection) -> list[StoredOverride]:
    """Every classification override: global first, then by account, zone and match."""
    rows = await conn.fetch(_OVERRIDES + " ORDER BY account, zone, match")
    return [_stored_override(r) for r in rows]


async def set_plan(
    *,
    conn: Connection,
    event_class: str,
    grade: int = 0,
    account: str = "",
    steps: Sequence[PlanStep],
    reason: str,
    actor: str,
) -> PlanOverride:
    """Set the plan of ``event_class`` (``grade`` 0: every grade) in this scope; audited."""
    plan = rules.check_plan(event_class=event_class, grade=grade, account=account, steps=steps)
    text = rules.check_reason(reason, PLAN_RULE)
    stored_grade = plan.grade or 0
    async with conn.transaction():
        await _lock(conn, "response_plans")
        await _check_account(conn, plan.account, PLAN_RULE)
        found = await conn.fetchrow(
            _PLANS + " WHERE account = $1 AND event_class = $2 AND grade = $3",
            plan.account,
            plan.event_class,
            stored_grade,
        )
        before = None if found is None else _stored_plan(found)
        row = await conn.fetchrow(
            "INSERT INTO response_plans (account, event_class, grade, steps, reason, updated_by)"
            " VALUES ($1, $2, $3, $4::jsonb, $5, $6)"
            " ON CONFLICT (account, event_class, grade) DO UPDATE SET steps = EXCLUDED.steps,"
            " reason = EXCLUDED.reason, updated_by = EXCLUDED.updated_by, updated_at = now()"
            " RETURNING account, event_class, grade, steps, reason, updated_by, updated_at",
            plan.account,
            plan.event_class,
            stored_grade,
            orjson.dumps([s.as_json() for s in plan.steps]).decode(),
            text,
            actor,
        )
        assert row is not None  # noqa: S101 - INSERT ... RETURNING returns the row
        after = _stored_plan(row)
        await audit.record(
            conn=conn,
            actor=actor,
            action="rules.plan",
            subject=_plan_subject(plan.event_class, stored_grade, plan.account),
            details={
                "before": None if before is None else before.as_json(),
                "after": after.as_json(),
                "reason": text,
            },
        )
    return after.plan


async def remove_plan(
    *,
    conn: Connection,
    event_class: str,
    grade: int = 0,
    account: str = "",
    reason: str,
    actor: str,
) -> PlanOverride:
    """Remove the centre's plan of ``event_class`` in this scope (the default applies); audited."""
    if isinstance(grade, bool) or grade not in range(5):
        raise RulesRefused(f"a plan's grade is 0 (every grade) to 4, not {grade!r}", PLAN_RULE)
    scope_account, _ = rules.check_scope(account, "", PLAN_RULE)
    name = event_class.strip()
    text = rules.check_reason(reason, PLAN_RULE)
    async with conn.transaction():
        await _lock(conn, "response_plans")
        found = await conn.fetchrow(
            "DELETE FROM response_plans WHERE account = $1 AND event_class = $2 AND grade = $3"
            " RETURNING account, event_class, grade, steps, reason, updated_by, updated_at",
            scope_account,
            name,
            grade,
        )
        if found is None:
            which = f"grade {grade}" if grade else "every grade"
            raise RulesRefused(
                f"{describe_scope(scope_account)} has no plan of its own for {name} ({which})"
                " (arc rules list)",
                PLAN_RULE,
            )
        before = _stored_plan(found)
        await audit.record(
            conn=conn,
            actor=actor,
            action="rules.unplan",
            subject=_plan_subject(name, grade, scope_account),
            details={"before": before.as_json(), "after": None, "reason": text},
        )
    return before.plan


async def list_plans(*, conn: Connection) -> list[StoredPlan]:
    """Every plan of the centre's: global first, then by account, class and grade."""
    rows = await conn.fetch(_PLANS + " ORDER BY account, event_class, grade")
    return [_stored_plan(r) for r in rows]


async def effective_classification(
    *, conn: Connection, code: str, account: str = "", zone: str = ""
) -> EffectiveClassification:
    """The class and grade a new signal of ``code`` at this account and zone gets, and why."""
    parsed = rules.parse_code(code)
    scope_account, scope_zone = rules.check_scope(account, zone, CLASSIFICATION_RULE)
    overrides = Overrides(s.override for s in await list_overrides(conn=conn))
    return rules.resolve_classification(parsed, overrides, account=scope_account, zone=scope_zone)


async def effective_plan(
    *, conn: Connection, event_class: str, grade: int, account: str = ""
) -> EffectivePlan:
    """The plan a new incident of this class and grade at ``account`` opens with, and why."""
    if event_class not in CLASSES:
        raise RulesRefused(f"no class {event_class!r}", PLAN_RULE)
    scope_account, _ = rules.check_scope(account, "", PLAN_RULE)
    plans = Plans(s.plan for s in await list_plans(conn=conn))
    return rules.resolve_plan(
        plans, account=scope_account, event_class=event_class, grade=Grade(grade)
    )
