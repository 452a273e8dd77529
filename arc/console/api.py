"""The console's JSON API: the queue and its live stream, incidents, commands, accounts.

Reads of alarm records go through ``audited_read`` (an ``access_audit`` row in
the read's transaction); changes go to the dispatcher as commands and answer
with its outcome: 200 when applied, 409 with the rule when refused, 504 when
the dispatcher did not answer in time (it may still apply it: the page shows
the incident as the live queue reports it).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from arc.auth import sessions
from arc.auth.models import Permission
from arc.console import queries
from arc.console.deps import (
    SESSION_COOKIE,
    Console,
    Principal,
    Reading,
    allowed,
    audited_read,
    connection,
    console,
)
from arc.db import Connection
from arc.dispatch.commands import CommandTimeout
from arc.dispatch.lifecycle import Kind
from arc.guards import service as guards

router = APIRouter(prefix="/api")

KEEPALIVE_S = 15.0  # below the idle timeout of common proxies (30-60 s)


def _json(value: Any, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(value, default=str), status_code=status_code, media_type="application/json"
    )


@router.get("/queue")
async def queue(
    reading: Annotated[Reading, audited_read(Permission.QUEUE_READ)], request: Request
) -> Response:
    """The open incidents, most urgent first, and when the oldest untaken one opened."""
    now = console(request).clock()
    incidents = await queries.open_incidents(conn=reading.conn, now=now)
    oldest = await queries.oldest_waiting(conn=reading.conn, now=now)
    return _json({"incidents": incidents, "oldest_waiting_at": oldest, "now": now})


@router.get("/queue/load")
async def load(
    reading: Annotated[Reading, audited_read(Permission.STAFFING_READ)], request: Request
) -> Response:
    """Each person's work in the last hour, and new incidents per class (a flood: storm mode?)."""
    now = console(request).clock()
    rows = await queries.operator_load(conn=reading.conn, now=now)
    recent = await queries.recent_by_class(conn=reading.conn, now=now)
    return _json(
        {
            "load": [{"actor": r.actor, "taken": r.taken, "closed": r.closed} for r in rows],
            "window_minutes": int(queries.FLOOD_WINDOW.total_seconds() // 60),
            "classes": [
                {"event_class": c, "incidents": n, "flood": n >= queries.FLOOD_INCIDENTS}
                for c, n in recent
            ],
        }
    )


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data, default=str) + b"\n\n"


@router.get("/queue/stream")
async def stream(
    reading: Annotated[Reading, audited_read(Permission.QUEUE_READ, action="stream")],
    request: Request,
) -> StreamingResponse:
    """Server-sent events: every incident change from now on, as the dispatcher committed it."""
    state = console(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    changes = state.live.open()

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n" + _event("hello", {"at": state.clock()})
            while True:
                try:
                    change = await asyncio.wait_for(changes.get(), KEEPALIVE_S)
                except TimeoutError:
                    if not await _still_logged_in(state, token):
                        yield _event("logout", {})
                        return
                    yield b": keepalive\n\n"
                    continue
                if change.get("reload"):
                    yield _event("reload", {})
                    return
                yield _event("incident", change)
        finally:
            state.live.close(changes)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _still_logged_in(state: Console, token: str) -> bool:
    """Whether the stream's session still lives: a logout ends its streams too."""
    with contextlib.suppress(Exception):
        async with state.pool.acquire() as conn:
            return (
                await sessions.load_session(conn=conn, token=token, now=state.clock()) is not None
            )
    return True  # the database is unreachable: keep the stream, the next check decides


@router.get("/incidents/{incident_id}")
async def incident(
    incident_id: uuid.UUID, reading: Annotated[Reading, audited_read(Permission.QUEUE_READ)]
) -> Response:
    """One incident: its state, its log and the account's keyholders."""
    found = await queries.incident(conn=reading.conn, incident_id=incident_id)
    if found is None:
        raise HTTPException(404, f"no incident {incident_id}")
    log = await queries.incident_log(conn=reading.conn, incident_id=incident_id)
    keyholders = await queries.keyholders(conn=reading.conn, account=found["account"])
    return _json({"incident": found, "log": log, "keyholders": keyholders})


@router.get("/incidents/{incident_id}/proposal")
async def proposal(
    incident_id: uuid.UUID,
    request: Request,
    reading: Annotated[Reading, audited_read(Permission.INCIDENT_WORK)],
) -> Response:
    """The guards proposed for this incident's site, best first, and why not the others."""
    found = await queries.incident(conn=reading.conn, incident_id=incident_id)
    if found is None:
        raise HTTPException(404, f"no incident {incident_id}")
    ranking = await guards.propose_guards(
        conn=reading.conn, account=found["account"], now=console(request).clock()
    )
    return _json(
        {
            "proposals": [
                {
                    "staff_id": str(p.staff.staff_id),
                    "name": p.staff.name,
                    "distance_m": None if p.distance_m is None else round(p.distance_m),
                    "load": p.load,
                }
                for p in ranking.proposals
            ],
            "excluded": [
                {"staff_id": str(e.staff.staff_id), "name": e.staff.name, "reason": e.reason}
                for e in ranking.excluded
            ],
        }
    )


WorkKind = Literal[
    "acknowledge",
    "step_done",
    "dispatch",
    "cancel_dispatch",
    "raise_grade",
    "note",
    "resolve",
    "close",
]


class WorkIn(BaseModel):
    """An operator's change to an incident."""

    model_config = ConfigDict(extra="forbid")

    kind: WorkKind
    details: dict[str, Any] = Field(default_factory=dict)


class WaiveIn(BaseModel):
    """A supervisor's waiver of one plan step, with the reason that is recorded."""

    model_config = ConfigDict(extra="forbid")

    step: int = Field(ge=0)
    reason: str = Field(min_length=1, max_length=500)


async def submit(
    state: Console,
    conn: Connection,
    who: Principal,
    incident_id: uuid.UUID,
    kind: Kind,
    details: dict[str, Any],
) -> Response:
    """Send one command for ``who`` and answer with the dispatcher's outcome."""
    account: str | None = await conn.fetchval(
        "SELECT account FROM incidents WHERE incident_id = $1", incident_id
    )
    if account is None:
        raise HTTPException(404, f"no incident {incident_id}")
    if state.commands is None:
        raise HTTPException(503, "the console runs without a broker: it cannot send commands")
    try:
        outcome = await state.commands.submit(
            account=account,
            incident_id=incident_id,
            kind=kind,
            actor=who.actor,
            role=who.incident_role,
            details=details,
        )
    except CommandTimeout as error:
        return _json({"error": f"the dispatcher did not answer in time: {error}"}, 504)
    if not outcome.get("ok"):
        return _json({"error": outcome.get("message"), "rule": outcome.get("rule")}, 409)
    return _json(outcome)


@router.post("/incidents/{incident_id}/work")
async def work(
    incident_id: uuid.UUID,
    body: WorkIn,
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    who: Annotated[Principal, Depends(allowed(Permission.INCIDENT_WORK))],
) -> Response:
    """Take, work a step, dispatch, note, resolve or close: whatever the plan needs next."""
    return await submit(console(request), conn, who, incident_id, Kind(body.kind), body.details)


@router.post("/incidents/{incident_id}/waive")
async def waive(
    incident_id: uuid.UUID,
    body: WaiveIn,
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    who: Annotated[Principal, Depends(allowed(Permission.STEP_WAIVE))],
) -> Response:
    """Waive a required step, so that the incident can close (supervisors only)."""
    details = {"step": body.step, "reason": body.reason}
    return await submit(console(request), conn, who, incident_id, Kind.STEP_WAIVED, details)


@router.get("/accounts/{account}")
async def account(
    account: str, reading: Annotated[Reading, audited_read(Permission.ACCOUNT_READ)]
) -> Response:
    """An account's site, zones, keyholders, schedule and last known state."""
    found = await queries.account(conn=reading.conn, account=account)
    if found is None:
        raise HTTPException(404, f"no account {account}")
    return _json(found)


@router.get("/accounts/{account}/signals")
async def account_signals(
    account: str,
    reading: Annotated[Reading, audited_read(Permission.ACCOUNT_READ)],
    since: datetime | None = None,
    until: datetime | None = None,
    event_class: Annotated[str | None, Query(alias="class")] = None,
    zone: str | None = None,
    before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """One page of an account's signals, newest first, filtered by time, class and zone."""
    rows = await queries.signals(
        conn=reading.conn,
        account=account,
        query=queries.SignalFilter(since, until, event_class or None, zone or None, before, limit),
    )
    return _json({"signals": rows})


_EXPORT_COLUMNS = (
    "signal_id",
    "received_at",
    "protocol",
    "transport",
    "qualifier",
    "code",
    "cid_event",
    "event_class",
    "zone",
    "user_no",
    "partition_no",
    "event_text",
    "drift_flagged",
)
EXPORT_LIMIT = 10_000  # one export is one page of a month's history, not the whole log


@router.get("/accounts/{account}/signals.csv")
async def export_signals(
    account: str,
    reading: Annotated[Reading, audited_read(Permission.RECORDS_EXPORT, action="export")],
    since: datetime | None = None,
    until: datetime | None = None,
) -> Response:
    """An account's signals as CSV (R5: exporting needs a grant, and is audited as an export)."""
    rows = await queries.signals(
        conn=reading.conn,
        account=account,
        query=queries.SignalFilter(since=since, until=until, limit=EXPORT_LIMIT),
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_EXPORT_COLUMNS)
    for row in rows:
        writer.writerow(["" if row[c] is None else _csv_cell(row[c]) for c in _EXPORT_COLUMNS])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="signals-{account}.csv"'},
    )


def _csv_cell(value: object) -> str:
    """A cell a spreadsheet cannot run: text that starts like a formula is quoted (OWASP)."""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/accounts/{account}/incidents")
async def account_incidents(
    account: str, reading: Annotated[Reading, audited_read(Permission.ACCOUNT_READ)]
) -> Response:
    """An account's incidents, newest first."""
    return _json({"incidents": await queries.account_incidents(conn=reading.conn, account=account)})


@router.get("/staffing")
async def staffing(
    conn: Annotated[Connection, Depends(connection)],
    _who: Annotated[Principal, Depends(allowed(Permission.STAFFING_READ))],
) -> Response:
    """The centre's compliance with 联网报警运营规范 表1 now."""
    status = await guards.staffing_status(conn=conn)
    return _json(status.to_json())


@router.get("/me")
async def me(who: Annotated[Principal, Depends(allowed())]) -> JSONResponse:
    """Who is logged in and what they may do (the page hides what they may not)."""
    return JSONResponse(
        {
            "username": who.user.username,
            "display_name": who.user.display_name,
            "role": who.user.role.value,
            "permissions": sorted(who.permissions),
            "csrf": who.session.csrf_token,
        }
    )
