"""Supervisors' and administrators' pages: accounts, staff, the centre's rules, users and grants.

What the centre is set up with, shown to those who run it, with the forms
that change it (``static/admin.js`` posts them to ``arc.console.admin_api``
and ``admin_accounts``). The pages read through the application role, which
may not change any of it; the changes go through the console's ``arc_config``
pool, each audited (docs/console.md says why two roles). Without that pool
the pages say so and show no forms.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from arc.accounts.service import list_accounts
from arc.auth import grants
from arc.auth import service as users
from arc.auth.models import GRANTABLE, ROLE_PERMISSIONS, Permission, Role
from arc.console import i18n
from arc.console.deps import Principal, allowed, connection, console, lang
from arc.console.pages import render
from arc.db import Connection
from arc.dispatch import storm_store
from arc.dispatch.classification import CLASS_NAMES_ZH
from arc.dispatch.storm import StormMode
from arc.guards import service as staff
from arc.guards.staffing import Category

router = APIRouter()


def _config(request: Request) -> bool:
    """Whether this console can change configuration (it has the ``arc_config`` pool)."""
    return console(request).config_pool is not None


@router.get("/supervisor/accounts")
async def accounts_page(
    request: Request,
    language: Annotated[i18n.Lang, Depends(lang)],
    conn: Annotated[Connection, Depends(connection)],
    who: Annotated[Principal, Depends(allowed(Permission.ACCOUNT_MANAGE))],
) -> HTMLResponse:
    """Every account: key (whether, and its format; never the key), link test, state."""
    rows = await list_accounts(conn=conn)
    return render(
        request, "admin_accounts.html", language, who, accounts=rows, config=_config(request)
    )


@router.get("/supervisor/staff")
async def staff_page(
    request: Request,
    language: Annotated[i18n.Lang, Depends(lang)],
    conn: Annotated[Connection, Depends(connection)],
    who: Annotated[Principal, Depends(allowed(Permission.STAFF_READ))],
) -> HTMLResponse:
    """Staff with certificates, exams, training, shifts and beats, and who qualifies (R2)."""
    members = await staff.list_staff(conn=conn)
    return render(
        request,
        "admin_staff.html",
        language,
        who,
        staff=members,
        categories=list(Category),
        config=_config(request),
    )


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
    now = console(request).clock()
    storms = await storm_store.list_storms(conn=conn, now=now)
    return render(
        request,
        "admin_rules.html",
        language,
        who,
        overrides=overrides,
        plans=plans,
        storms=storms,
        classes=sorted(CLASS_NAMES_ZH),
        modes=[m.value for m in StormMode],
        now=now,
        config=_config(request),
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
        role_names=[r.value for r in Role],
        grantable=sorted(GRANTABLE),
        config=_config(request),
    )
