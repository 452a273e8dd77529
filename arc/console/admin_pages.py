"""Supervisors' and administrators' pages: accounts, staff, the centre's rules, users and grants.

What the centre is set up with, shown to those who run it. They read through
the application role, which may not change any of it: accounts, staff,
rules, users and grants are changed with ``arc account``, ``arc staff``,
``arc storm``, ``arc user`` and ``arc grant`` under the owner's role, each
change audited (docs/console.md says why the console does not write them yet).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from arc.accounts.service import list_accounts
from arc.auth import grants
from arc.auth import service as users
from arc.auth.models import ROLE_PERMISSIONS, Permission
from arc.console import i18n
from arc.console.deps import Principal, allowed, connection, console, lang
from arc.console.pages import render
from arc.db import Connection
from arc.dispatch import storm_store
from arc.guards import service as staff

router = APIRouter()


@router.get("/supervisor/accounts")
async def accounts_page(
    request: Request,
    language: Annotated[i18n.Lang, Depends(lang)],
    conn: Annotated[Connection, Depends(connection)],
    who: Annotated[Principal, Depends(allowed(Permission.ACCOUNT_MANAGE))],
) -> HTMLResponse:
    """Every account: key (whether, and its format; never the key), link test, state."""
    rows = await list_accounts(conn=conn)
    return render(request, "admin_accounts.html", language, who, accounts=rows)


@router.get("/supervisor/staff")
async def staff_page(
    request: Request,
    language: Annotated[i18n.Lang, Depends(lang)],
    conn: Annotated[Connection, Depends(connection)],
    who: Annotated[Principal, Depends(allowed(Permission.STAFF_READ))],
) -> HTMLResponse:
    """Staff with certificates, exams, training, shifts and beats, and who qualifies (R2)."""
    members = await staff.list_staff(conn=conn)
    return render(request, "admin_staff.html", language, who, staff=members)


@router.get("/supervisor/rules")
async def rules_page(
    request: Request,
    language: Annotated[i18n.Lang, Depends(lang)],
    conn: Annotated[Connection, Depends(connection)],
    who: Annotated[Principal, Depends(allowed(Permission.RULES_MANAGE))],
) -> HTMLResponse:
    """Classification overrides, response-plan overrides and storm modes in force."""
    overrides = await conn.fetch(
        "SELECT account, zone, match, event_class, grade, reason, updated_by, updated_at"
        " FROM classification_overrides ORDER BY account, zone, match"
    )
    plans = await conn.fetch(
        "SELECT account, event_class, grade, steps, reason, updated_by, updated_at"
        " FROM response_plans ORDER BY account, event_class, grade"
    )
    storms = await storm_store.list_storms(conn=conn, now=console(request).clock())
    return render(
        request,
        "admin_rules.html",
        language,
        who,
        overrides=overrides,
        plans=plans,
        storms=storms,
    )


@router.get("/admin/users")
async def users_page(
    request: Request,
    language: Annotated[i18n.Lang, Depends(lang)],
    conn: Annotated[Connection, Depends(connection)],
    who: Annotated[Principal, Depends(allowed(Permission.USERS_MANAGE))],
) -> HTMLResponse:
    """Users, what each role may do, and every grant with its state (R5)."""
    return render(
        request,
        "admin_users.html",
        language,
        who,
        users=await users.list_users(conn=conn),
        grants=await grants.list_grants(conn=conn),
        roles=ROLE_PERMISSIONS,
        now=console(request).clock(),
    )
