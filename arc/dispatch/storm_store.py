"""Storm mode in the database: start, stop and list storms (``storm_modes``), each audited.

The console and ``arc storm`` call these with a connection of the schema's
owner (``arc_app`` may only read the table). Each start and stop writes its
``audit_log`` row in the same transaction (``arc.audit.record``), and the
table's trigger tells the dispatchers (NOTIFY ``arc_rules``), which reload
their storms; a storm stops applying at its end even before they do.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg

from arc import audit
from arc.db import Connection
from arc.dispatch.classification import CLASS_NAMES_ZH
from arc.dispatch.storm import Storm, StormMode, StormRefused, check_start
from arc.model import BEIJING

# "Not over at $1": least() skips a NULL stopped_at.
_NOT_OVER = """
SELECT storm_id, event_class, mode, delay_seconds, started_at, ends_at, reason, started_by,
       stopped_at, stopped_by, stop_reason
FROM storm_modes
WHERE least(stopped_at, ends_at) > $1
ORDER BY started_at DESC
"""
_ACTIVE_OF_CLASS = """
SELECT storm_id, event_class, mode, delay_seconds, started_at, ends_at, reason, started_by,
       stopped_at, stopped_by, stop_reason
FROM storm_modes
WHERE least(stopped_at, ends_at) > $1 AND event_class = $2
ORDER BY started_at DESC
LIMIT 1
"""
_STOP = """
UPDATE storm_modes SET stopped_at = $2, stopped_by = $3, stop_reason = $4
WHERE storm_id = $1
RETURNING storm_id, event_class, mode, delay_seconds, started_at, ends_at, reason, started_by,
          stopped_at, stopped_by, stop_reason
"""


def _storm(row: asyncpg.Record) -> Storm:
    delay = row["delay_seconds"]
    return Storm(
        storm_id=row["storm_id"],
        event_class=row["event_class"],
        mode=StormMode(row["mode"]),
        delay=None if delay is None else timedelta(seconds=delay),
        started_at=row["started_at"],
        ends_at=row["ends_at"],
        reason=row["reason"],
        started_by=row["started_by"],
        stopped_at=row["stopped_at"],
        stopped_by=row["stopped_by"],
        stop_reason=row["stop_reason"],
    )


def _beijing(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


async def _active(conn: Connection, event_class: str, now: datetime) -> Storm | None:
    row = await conn.fetchrow(_ACTIVE_OF_CLASS, now, event_class)
    return None if row is None else _storm(row)


async def start_storm(
    *,
    conn: Connection,
    event_class: str,
    mode: str,
    minutes: float,
    delay_seconds: float | None,
    reason: str,
    actor: str,
) -> Storm:
    """Switch ``event_class`` to storm mode for ``minutes``; ``StormRefused`` names the rule."""
    request = check_start(
        event_class=event_class,
        mode=mode,
        minutes=minutes,
        delay_seconds=delay_seconds,
        reason=reason,
    )
    async with conn.transaction():
        # One storm per class at a time: starters queue here, and the second finds the first.
        await conn.execute("LOCK TABLE storm_modes IN SHARE ROW EXCLUSIVE MODE")
        now: datetime = await conn.fetchval("SELECT clock_timestamp()")
        running = await _active(conn, request.event_class, now)
        if running is not None:
            raise StormRefused(
                f"{request.event_class} is in storm mode {running.mode} until"
                f" {_beijing(running.until)} (北京时间) already; stop it first"
                f" (arc storm stop {request.event_class})"
            )
        storm = Storm(
            storm_id=uuid.uuid4(),
            event_class=request.event_class,
            mode=request.mode,
            delay=request.delay,
            started_at=now,
            ends_at=now + request.duration,
            reason=request.reason,
            started_by=actor,
        )
        await conn.execute(
            "INSERT INTO storm_modes (storm_id, event_class, mode, delay_seconds, started_at,"
            " ends_at, reason, started_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            storm.storm_id,
            storm.event_class,
            storm.mode.value,
            None if storm.delay is None else round(storm.delay.total_seconds()),
            storm.started_at,
            storm.ends_at,
            storm.reason,
            storm.started_by,
        )
        await audit.record(
            conn=conn,
            actor=actor,
            action="storm.start",
            subject=f"storm:{storm.event_class}",
            details={**storm.details(), "started_at": storm.started_at.isoformat()},
        )
    return storm


async def stop_storm(*, conn: Connection, event_class: str, reason: str, actor: str) -> Storm:
    """End ``event_class``'s storm mode now; ``StormRefused`` if it has none or no reason."""
    text = reason.strip()
    if not text:
        raise StormRefused("stopping storm mode needs a reason, which is recorded")
    async with conn.transaction():
        await conn.execute("LOCK TABLE storm_modes IN SHARE ROW EXCLUSIVE MODE")
        now: datetime = await conn.fetchval("SELECT clock_timestamp()")
        running = await _active(conn, event_class, now)
        if running is None:
            name = CLASS_NAMES_ZH.get(event_class, event_class)
            raise StormRefused(f"{name} {event_class} is not in storm mode")
        row = await conn.fetchrow(_STOP, running.storm_id, now, actor, text)
        if row is None:  # pragma: no cover - locked and found above
            raise StormRefused(f"{event_class}'s storm vanished while it was being stopped")
        stopped = _storm(row)
        await audit.record(
            conn=conn,
            actor=actor,
            action="storm.stop",
            subject=f"storm:{event_class}",
            details={
                "storm_id": str(stopped.storm_id),
                "mode": stopped.mode.value,
                "stopped_at": now.isoformat(),
                "ends_at": stopped.ends_at.isoformat(),
                "reason": text,
            },
        )
    return stopped


async def list_storms(
    *, conn: Connection, now: datetime, ended_since: datetime | None = None
) -> list[Storm]:
    """The storms not over at ``now``, and those that ended after ``ended_since``; newest first."""
    rows = await conn.fetch(_NOT_OVER, now if ended_since is None else min(now, ended_since))
    return [_storm(r) for r in rows]
