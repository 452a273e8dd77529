"""What the console reads from PostgreSQL: the queue, an incident, an account's history.

Only reads, each a single statement on the caller's connection: the caller
(an ``audited`` route) has already recorded the read in ``access_audit`` in
the same transaction. Incidents come from the ``incidents`` projection, their
history from ``incident_log``; times leave here timezone-aware.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from arc.db import Connection
from arc.dispatch import rules, rules_store

# Held incidents (storm mode's delay) are the dispatcher's until their hold ends.
_QUEUE = """
SELECT state FROM incidents
WHERE status <> 'closed'
  AND (state->>'held_until' IS NULL OR (state->>'held_until')::timestamptz <= $1)
ORDER BY grade, opened_at
LIMIT $2
"""


def _state(value: object) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(value) if isinstance(value, str | bytes) else value  # type: ignore[assignment]
    return parsed


async def open_incidents(
    *, conn: Connection, now: datetime, limit: int = 500
) -> list[dict[str, Any]]:
    """The open incidents, most urgent first: grade, then age."""
    rows = await conn.fetch(_QUEUE, now, limit)
    return [_state(r["state"]) for r in rows]


@dataclass(frozen=True, slots=True)
class Load:
    """One person's work in the last hour: incidents taken and closed."""

    actor: str
    taken: int
    closed: int


async def operator_load(*, conn: Connection, now: datetime) -> list[Load]:
    """Incidents each person took and closed in the hour before ``now``."""
    rows = await conn.fetch(
        """
        SELECT actor,
               count(*) FILTER (WHERE kind = 'acknowledge') AS taken,
               count(*) FILTER (WHERE kind = 'close') AS closed
        FROM incident_log
        WHERE at > $1 AND at <= $2 AND kind IN ('acknowledge', 'close')
        GROUP BY actor ORDER BY actor
        """,
        now - timedelta(hours=1),
        now,
    )
    return [Load(r["actor"], r["taken"], r["closed"]) for r in rows]


FLOOD_WINDOW = timedelta(minutes=5)
# New incidents of one class in the window from which a supervisor is told a
# storm may be on (a district's power cut opens dozens within minutes).
FLOOD_INCIDENTS = 20


async def recent_by_class(*, conn: Connection, now: datetime) -> list[tuple[str, int]]:
    """New incidents per class in the last ``FLOOD_WINDOW``, most first."""
    rows = await conn.fetch(
        "SELECT event_class, count(*) AS n FROM incidents WHERE opened_at > $1 AND opened_at <= $2"
        " GROUP BY event_class ORDER BY n DESC, event_class",
        now - FLOOD_WINDOW,
        now,
    )
    return [(r["event_class"], r["n"]) for r in rows]


async def oldest_waiting(*, conn: Connection, now: datetime) -> datetime | None:
    """When the oldest incident nobody has taken yet opened (None: nothing waits)."""
    value: datetime | None = await conn.fetchval(
        """
        SELECT min(opened_at) FROM incidents
        WHERE status = 'new'
          AND (state->>'held_until' IS NULL OR (state->>'held_until')::timestamptz <= $1)
        """,
        now,
    )
    return value


async def incident(*, conn: Connection, incident_id: uuid.UUID) -> dict[str, Any] | None:
    """One incident's state (None: no such incident)."""
    value = await conn.fetchval("SELECT state FROM incidents WHERE incident_id = $1", incident_id)
    return None if value is None else _state(value)


async def incident_log(*, conn: Connection, incident_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every change of one incident, oldest first."""
    rows = await conn.fetch(
        """
        SELECT at, kind, actor, role, details FROM incident_log
        WHERE incident_id = $1 ORDER BY at, chain_seq
        """,
        incident_id,
    )
    return [
        {
            "at": r["at"],
            "kind": r["kind"],
            "actor": r["actor"],
            "role": r["role"],
            "details": _state(r["details"]),
        }
        for r in rows
    ]


async def account(*, conn: Connection, account: str) -> dict[str, Any] | None:
    """An account's record, site, zones, keyholders, schedule and last known state."""
    row = await conn.fetchrow(
        "SELECT account, name, link_test_seconds, enabled FROM accounts WHERE account = $1",
        account,
    )
    if row is None:
        return None
    site = await conn.fetchrow(
        "SELECT address, latitude, longitude, beat FROM account_sites WHERE account = $1", account
    )
    zones = await conn.fetch(
        "SELECT zone, name, technology FROM account_zones WHERE account = $1 ORDER BY zone",
        account,
    )
    keyholders = await conn.fetch(
        "SELECT position, name, phone, relation FROM account_keyholders"
        " WHERE account = $1 ORDER BY position",
        account,
    )
    schedule = await conn.fetch(
        "SELECT weekday, opens, closes FROM account_schedules"
        " WHERE account = $1 ORDER BY weekday, opens",
        account,
    )
    state = await conn.fetchrow(
        "SELECT last_signal_at, state FROM site_state WHERE account = $1", account
    )
    return {
        "account": row["account"],
        "name": row["name"],
        "link_test_seconds": row["link_test_seconds"],
        "enabled": row["enabled"],
        "site": None if site is None else dict(site),
        "zones": [dict(z) for z in zones],
        "keyholders": [dict(k) for k in keyholders],
        "schedule": [dict(s) for s in schedule],
        "last_signal_at": None if state is None else state["last_signal_at"],
        "state": None if state is None else _state(state["state"]),
    }


@dataclass(frozen=True, slots=True)
class AccountRules:
    """The centre's overrides and plans that concern one account, with who set each and why."""

    overrides: list[tuple[rules.OverrideHere, rules_store.StoredOverride]]
    plans: list[tuple[rules.PlanHere, rules_store.StoredPlan]]


async def account_rules(*, conn: Connection, account: str) -> AccountRules:
    """This account's classification and plan overrides and the global ones, as they apply."""
    overrides = {s.override: s for s in await rules_store.list_overrides(conn=conn)}
    plans = {s.plan: s for s in await rules_store.list_plans(conn=conn)}
    return AccountRules(
        overrides=[
            (h, overrides[h.override]) for h in rules.overrides_at(list(overrides), account)
        ],
        plans=[(h, plans[h.plan]) for h in rules.plans_at(list(plans), account)],
    )


async def keyholders(*, conn: Connection, account: str) -> list[dict[str, Any]]:
    """The people to call for an account, in order."""
    rows = await conn.fetch(
        "SELECT position, name, phone, relation FROM account_keyholders"
        " WHERE account = $1 ORDER BY position",
        account,
    )
    return [dict(r) for r in rows]


@dataclass(frozen=True, slots=True)
class SignalFilter:
    """Which signals of an account to list: a time range, a class, a zone; one page."""

    since: datetime | None = None
    until: datetime | None = None
    event_class: str | None = None
    zone: str | None = None
    before: datetime | None = None  # the page after: signals older than this
    limit: int = 50


async def signals(*, conn: Connection, account: str, query: SignalFilter) -> list[dict[str, Any]]:
    """An account's signals, newest first, one page (``before`` pages on by time)."""
    rows = await conn.fetch(
        """
        SELECT signal_id, received_at, protocol, transport, qualifier, code, cid_event,
               event_class, zone, user_no, partition_no, event_text, drift_flagged
        FROM signal_log
        WHERE account = $1
          AND ($2::timestamptz IS NULL OR received_at >= $2)
          AND ($3::timestamptz IS NULL OR received_at < $3)
          AND ($4::text IS NULL OR event_class = $4)
          AND ($5::text IS NULL OR zone = $5)
          AND ($6::timestamptz IS NULL OR received_at < $6)
        ORDER BY received_at DESC
        LIMIT $7
        """,
        account,
        query.since,
        query.until,
        query.event_class,
        query.zone,
        query.before,
        query.limit,
    )
    return [dict(r) for r in rows]


async def account_incidents(
    *, conn: Connection, account: str, limit: int = 50
) -> list[dict[str, Any]]:
    """An account's incidents, newest first."""
    rows = await conn.fetch(
        """
        SELECT incident_id, event_class, grade, status, title, opened_at, closed_at,
               resolution, cause, owner, guard
        FROM incidents WHERE account = $1 ORDER BY opened_at DESC LIMIT $2
        """,
        account,
        limit,
    )
    return [dict(r) for r in rows]


async def guard_assignments(*, conn: Connection, staff_id: str) -> list[dict[str, Any]]:
    """The incidents a guard is dispatched to and has not cleared yet."""
    rows = await conn.fetch(
        """
        SELECT state FROM incidents
        WHERE guard = $1 AND status IN ('dispatched', 'on_site')
        ORDER BY grade, opened_at
        """,
        staff_id,
    )
    return [_state(r["state"]) for r in rows]


async def staff_names(*, conn: Connection, ids: Iterable[str | None]) -> dict[str, str]:
    """Staff names by the ids incidents and their logs name guards with (others are left out)."""
    keys: list[uuid.UUID] = []
    for value in ids:
        with contextlib.suppress(ValueError, TypeError):
            keys.append(uuid.UUID(str(value)))
    if not keys:
        return {}
    rows = await conn.fetch("SELECT staff_id, name FROM staff WHERE staff_id = ANY($1)", keys)
    return {str(r["staff_id"]): r["name"] for r in rows}
