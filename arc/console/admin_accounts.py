"""Supervisors' changes to accounts, their sites and staff (``/api/admin``, as ``admin_api``).

The same contract as ``arc.console.admin_api``, whose helpers these routes
share: a permission per route, a body that forbids unknown fields, the
domain function with the person as actor on an ``arc_config`` connection,
and refusals that name their rule. An account's AES key is taken as
``hex:...`` or ``ascii:...`` (as ``arc account add``), sealed, and never
answered, logged or audited; an account that would leave the staff short of
联网报警运营规范 表1 is refused (409, the rule) unless a reason overrides it.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import Field

from arc.accounts import service as accounts
from arc.accounts import sites
from arc.accounts.models import AccountIn, KeyholderIn, SiteIn, ZoneIn
from arc.accounts.schedule import parse_schedule
from arc.auth.models import Permission
from arc.console.admin_api import TEXT_LIMIT, Body, NoBody, answering, json_answer
from arc.console.deps import Principal, allowed, config_connection, console
from arc.db import Connection
from arc.guards import service as staff
from arc.guards.models import StaffIn, StaffOut

router = APIRouter(prefix="/api/admin")
P = Permission


# --- accounts and their sites (account.manage) -------------------------------------------------


class AccountAddIn(AccountIn):
    """A new account as ``arc account add`` takes it; the key as ``hex:...`` or ``ascii:...``."""

    # Serving one more customer beyond what the staff allow (表1) needs the reason.
    staffing_override: str | None = Field(default=None, min_length=1, max_length=TEXT_LIMIT)


class LinkTestIn(Body):
    """The account's expected link-test interval (None: not supervised)."""

    link_test_seconds: int | None = Field(gt=0, le=2**31 - 1)


class KeyholdersIn(Body):
    """The keyholders, in the order they are called."""

    keyholders: list[KeyholderIn] = Field(max_length=20)


class ScheduleIn(Body):
    """Open hours as lines (``mon-fri 08:00-18:00``); none: no schedule, not supervised."""

    lines: list[str] = Field(max_length=14)


async def _account_name(conn: Connection, account: str) -> str:
    """The account as stored, whatever the letter case it is given in."""
    name: str | None = await conn.fetchval(
        "SELECT account FROM accounts WHERE upper(account) = upper($1)", account.strip()
    )
    if name is None:
        raise sites.AccountNotFound(account.strip())
    return name


@router.post("/accounts")
async def add_account(
    body: AccountAddIn,
    request: Request,
    who: Annotated[Principal, Depends(allowed(P.ACCOUNT_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Add an account (its key sealed, never shown); refused when 表1 staffing falls short."""
    with answering():
        added = await accounts.add_account(
            conn=conn,
            box=accounts.key_box(console(request).settings.master_key),
            account=body,
            actor=who.user.username,
            staffing_override=body.staffing_override,
        )
    return json_answer(added.model_dump(mode="json"))


@router.post("/accounts/{account}/link-test")
async def set_link_test(
    account: str,
    body: LinkTestIn,
    request: Request,
    who: Annotated[Principal, Depends(allowed(P.ACCOUNT_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Change the account's link-test interval, and nothing else of it."""
    with answering():
        name = await _account_name(conn, account)
        # The import writes only the columns the file has: one column, one row.
        out = io.StringIO()
        csv.writer(out).writerows(
            [("account", "link_test_seconds"), (name, body.link_test_seconds or "")]
        )
        await accounts.import_csv(
            conn=conn,
            box=accounts.key_box(console(request).settings.master_key),
            text=out.getvalue(),
            actor=who.user.username,
            source="console: link test",
        )
    return json_answer({"account": name, "link_test_seconds": body.link_test_seconds})


@router.post("/accounts/{account}/site")
async def set_site(
    account: str,
    body: SiteIn,
    who: Annotated[Principal, Depends(allowed(P.ACCOUNT_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Record the account's address, position and patrol beat."""
    with answering():
        site = await sites.set_site(conn=conn, account=account, site=body, actor=who.user.username)
    return json_answer(site.model_dump(mode="json"))


@router.post("/accounts/{account}/zones")
async def set_zone(
    account: str,
    body: ZoneIn,
    who: Annotated[Principal, Depends(allowed(P.ACCOUNT_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Record a zone's name and detector technology."""
    with answering():
        zone = await sites.set_zone(conn=conn, account=account, zone=body, actor=who.user.username)
    return json_answer(zone.model_dump(mode="json"))


@router.post("/accounts/{account}/zones/{zone}/remove")
async def remove_zone(
    account: str,
    zone: str,
    _body: NoBody,
    who: Annotated[Principal, Depends(allowed(P.ACCOUNT_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Forget a zone's record (its signals are still handled)."""
    with answering():
        removed = await sites.remove_zone(
            conn=conn, account=account, zone=zone, actor=who.user.username
        )
    return json_answer({"zone": zone, "removed": removed})


@router.post("/accounts/{account}/keyholders")
async def set_keyholders(
    account: str,
    body: KeyholdersIn,
    who: Annotated[Principal, Depends(allowed(P.ACCOUNT_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Replace the account's keyholders, in call order."""
    with answering():
        given = await sites.set_keyholders(
            conn=conn, account=account, keyholders=body.keyholders, actor=who.user.username
        )
    return json_answer({"keyholders": [k.model_dump(mode="json") for k in given]})


@router.post("/accounts/{account}/schedule")
async def set_schedule(
    account: str,
    body: ScheduleIn,
    who: Annotated[Principal, Depends(allowed(P.ACCOUNT_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Replace the account's open hours (no lines: no schedule, not supervised)."""
    with answering():
        lines = [line for line in body.lines if line.strip()]
        schedule = parse_schedule(lines) if lines else None
        stored = await sites.set_schedule(
            conn=conn, account=account, schedule=schedule, actor=who.user.username
        )
    return json_answer({"schedule": [] if stored is None else stored.lines()})


# --- staff (staff.manage, R2) ------------------------------------------------------------------


class QualificationIn(Body):
    """What a guard's eligibility rests on (R2); only the fields given change."""

    certificate_no: str | None = Field(default=None, max_length=40)
    certificate_expires: date | None = None
    exam_passed_on: date | None = None
    trained_on: date | None = None


def _staff(member: StaffOut) -> dict[str, Any]:
    return member.model_dump(mode="json")


@router.post("/staff")
async def add_staff(
    body: StaffIn,
    who: Annotated[Principal, Depends(allowed(P.STAFF_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Add a member of staff; the answer says whether they qualify today (R2)."""
    with answering():
        member = await staff.add_staff(conn=conn, staff=body, actor=who.user.username)
    return json_answer(_staff(member))


@router.post("/staff/{staff_id}/qualification")
async def set_qualification(
    staff_id: uuid.UUID,
    body: QualificationIn,
    who: Annotated[Principal, Depends(allowed(P.STAFF_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Change a member of staff's certificate, examination or training dates."""
    with answering():
        async with conn.transaction():
            # Held until the change commits: a second change waits and builds on this one.
            locked = await conn.fetchval(
                "SELECT staff_id FROM staff WHERE staff_id = $1 FOR UPDATE", staff_id
            )
            if locked is None:
                raise staff.StaffNotFound(staff_id)
            current = next(s for s in await staff.list_staff(conn=conn) if s.staff_id == staff_id)
            fields = current.model_dump(include=set(StaffIn.model_fields))
            changed = StaffIn.model_validate(
                {**fields, **body.model_dump(include=body.model_fields_set)}
            )
            member = await staff.replace_staff(
                conn=conn, staff_id=staff_id, staff=changed, actor=who.user.username
            )
    return json_answer(_staff(member))
