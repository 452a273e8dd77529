"""The console's pages: login, the live queue, an incident, an account, staffing, the guard's page.

Pages are rendered on the server in the person's language (Chinese by
default) with Beijing times; the small scripts under ``static/`` make the
queue live and send the operator's actions to the JSON API. A page that shows
alarm records reads them through ``audited_read``, as the API does.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from arc.accounts import schedule
from arc.accounts.models import TECHNOLOGY_NAMES_ZH, Technology
from arc.auth import service as users
from arc.auth import sessions
from arc.auth.models import Permission, Role
from arc.console import i18n, queries
from arc.console.deps import (
    LANG_COOKIE,
    SESSION_COOKIE,
    Principal,
    Reading,
    allowed,
    audited_read,
    connection,
    console,
    lang,
    peer,
)
from arc.db import Connection
from arc.dispatch import incident_json, response_times
from arc.guards import service as guards
from arc.model import BEIJING

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.globals.update(
    word=i18n.word,
    status_name=i18n.status_name,
    class_name=i18n.class_name,
    step_name=i18n.step_name,
    beijing=i18n.beijing,
    duration=i18n.duration,
)
TEMPLATES.env.filters["time"] = lambda value: i18n.beijing(
    datetime.fromisoformat(value) if isinstance(value, str) else value
)
# JSON as people read it: Chinese as Chinese, not \\u escapes (autoescaping still applies).
TEMPLATES.env.globals["guard_clocks"] = lambda state, now: response_times.clocks(
    incident_json.from_json(state), now
)
TEMPLATES.env.filters["readable"] = lambda value: orjson.dumps(value, default=str).decode()

router = APIRouter()

# Where each role starts: the page its work is on.
_HOME = {
    Role.OPERATOR: "/queue",
    Role.SUPERVISOR: "/queue",
    Role.AUDITOR: "/queue",
    Role.ADMIN: "/admin/users",
    Role.GUARD: "/guard",
}


def render(
    request: Request,
    name: str,
    language: i18n.Lang,
    who: Principal | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """One page in ``language`` with the navigation ``who`` may use."""
    return TEMPLATES.TemplateResponse(
        request,
        name,
        {
            "lang": language,
            "who": who,
            "can": (lambda p: p in who.permissions) if who else (lambda p: False),
            "P": Permission,
            "words": i18n.script_words(language),
            **context,
        },
        status_code=status_code,
    )


def _safe_next(target: str | None) -> str:
    """A local path to go back to after logging in (never another site)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login")
async def login_page(
    request: Request,
    language: Annotated[i18n.Lang, Depends(lang)],
    next_: Annotated[str | None, Query(alias="next")] = None,
) -> HTMLResponse:
    """The login form."""
    return render(request, "login.html", language, next=_safe_next(next_), error=None)


def _same_origin(request: Request) -> bool:
    """Whether a login form came from this console (login CSRF: no session token exists yet)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host")


@router.post("/login")
async def login(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    language: Annotated[i18n.Lang, Depends(lang)],
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    totp: Annotated[str, Form(max_length=10)] = "",
    next_: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    """Check the password (and one-time code), open a session, go where the person was going."""
    state = console(request)
    if not _same_origin(request):
        raise HTTPException(403, "login form from another site (login CSRF)")
    now = state.clock()
    try:
        user = await users.authenticate(
            conn=conn,
            username=username,
            password=password,
            totp_code=totp or None,
            peer=peer(request),
            now=now,
            box=state.totp_box,
        )
    except users.LoginRefused as refused:
        return render(
            request,
            "login.html",
            language,
            status_code=401,
            next=_safe_next(next_),
            error=f"{refused.message} ({refused.rule})",
        )
    token, _session = await sessions.create_session(
        conn=conn, user=user, now=now, ttl=state.session_ttl
    )
    target = _safe_next(next_)
    if target == "/":
        target = _HOME.get(user.role, "/queue")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=state.settings.secure_cookies,
        max_age=int(state.session_ttl.total_seconds()),
    )
    return response


@router.post("/logout")
async def logout(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    _who: Annotated[Principal, Depends(allowed())],
) -> Response:
    """End the session for good: its cookie never works again, not even replayed."""
    token = request.cookies.get(SESSION_COOKIE, "")
    await sessions.end_session(conn=conn, token=token, now=console(request).clock())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{choice}")
async def choose_language(
    choice: str, next_: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """Switch between Chinese and English."""
    response = RedirectResponse(_safe_next(next_), status_code=303)
    response.set_cookie(LANG_COOKIE, i18n.parse_lang(choice).value, samesite="lax")
    return response


@router.get("/")
async def home(who: Annotated[Principal, Depends(allowed())]) -> Response:
    """Each role's own first page."""
    return RedirectResponse(_HOME.get(who.user.role, "/queue"), status_code=303)


@router.get("/queue")
async def queue_page(
    request: Request,
    language: Annotated[i18n.Lang, Depends(lang)],
    who: Annotated[Principal, Depends(allowed(Permission.QUEUE_READ))],
) -> HTMLResponse:
    """The live alarm queue (its rows come from the audited API and the live stream)."""
    return render(request, "queue.html", language, who)


def _minutes(deadline: str, now: datetime) -> int:
    return int((datetime.fromisoformat(deadline) - now) / timedelta(minutes=1))


@router.get("/incidents/{incident_id}")
async def incident_page(
    incident_id: uuid.UUID,
    request: Request,
    language: Annotated[i18n.Lang, Depends(lang)],
    reading: Annotated[Reading, audited_read(Permission.QUEUE_READ)],
) -> HTMLResponse:
    """One incident: the plan as a checklist with deadlines, keyholders, guard, notes, closing."""
    found = await queries.incident(conn=reading.conn, incident_id=incident_id)
    if found is None:
        raise HTTPException(404, f"no incident {incident_id}")
    log = await queries.incident_log(conn=reading.conn, incident_id=incident_id)
    keyholders = await queries.keyholders(conn=reading.conn, account=found["account"])
    names = await queries.staff_names(
        conn=reading.conn, ids=[found.get("guard"), *(e["actor"] for e in log)]
    )
    now = console(request).clock()
    return render(
        request,
        "incident.html",
        language,
        reading.who,
        incident=found,
        log=log,
        keyholders=keyholders,
        guard_name=names.get(found.get("guard") or ""),
        names=names,
        now=now,
        minutes_left=lambda deadline: _minutes(deadline, now),
        resolutions=i18n.resolution_choices(language),
        causes=i18n.cause_choices(language),
    )


@router.get("/accounts/{account}")
async def account_page(
    account: str,
    request: Request,
    language: Annotated[i18n.Lang, Depends(lang)],
    reading: Annotated[Reading, audited_read(Permission.ACCOUNT_READ)],
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    event_class: Annotated[str | None, Query(alias="class")] = None,
    zone: str | None = None,
    before: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """An account: site, zones, keyholders, open hours, rules, state, signals and incidents."""
    found = await queries.account(conn=reading.conn, account=account)
    if found is None:
        raise HTTPException(404, f"no account {account}")
    page = queries.SignalFilter(
        since=form_time(since, "since"),
        until=form_time(until, "until"),
        event_class=event_class or None,
        zone=zone or None,
        before=form_time(before, "before"),
    )
    signals = await queries.signals(conn=reading.conn, account=account, query=page)
    incidents = await queries.account_incidents(conn=reading.conn, account=account)
    applied = await queries.account_rules(conn=reading.conn, account=account)
    hours = (
        schedule.from_rows((r["weekday"], r["opens"], r["closes"]) for r in found["schedule"])
        if found["schedule"]
        else None
    )
    return render(
        request,
        "account.html",
        language,
        reading.who,
        account=found,
        signals=signals,
        incidents=incidents,
        filter=page,
        older=signals[-1]["received_at"].isoformat() if len(signals) == page.limit else None,
        # The site's forms (account.manage, through the arc_config pool): what is there now.
        config=console(request).config_pool is not None,
        technologies=[(t.value, TECHNOLOGY_NAMES_ZH[t]) for t in Technology],
        schedule_lines=hours.lines() if hours else [],
        # What applies here (read-only): the centre's overrides and plans, the open hours.
        rules=applied,
        hours=None
        if hours is None
        else list(zip(i18n.weekday_names(language), hours.days, strict=True)),
    )


def form_time(value: str | None, name: str) -> datetime | None:
    """A time from a filter form: empty is none; without a zone it is Beijing time.

    Read here, not by FastAPI: a browser sends an empty field as ``since=``,
    which a ``datetime`` parameter would refuse.
    """
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            422, f"{name}: {value!r} is not a time such as 2026-12-02T14:30"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=BEIJING)


@router.get("/staffing")
async def staffing_page(
    request: Request,
    language: Annotated[i18n.Lang, Depends(lang)],
    conn: Annotated[Connection, Depends(connection)],
    who: Annotated[Principal, Depends(allowed(Permission.STAFFING_READ))],
) -> HTMLResponse:
    """Staffing against 表1 now, with the warning when the centre is short."""
    status = await guards.staffing_status(conn=conn)
    return render(request, "staffing.html", language, who, status=status)


@router.get("/guard")
async def guard_page(
    request: Request,
    language: Annotated[i18n.Lang, Depends(lang)],
    reading: Annotated[Reading, audited_read(Permission.GUARD_ACT)],
) -> HTMLResponse:
    """The patrol guard's phone page: the incidents they are sent to."""
    assignments = await queries.guard_assignments(conn=reading.conn, staff_id=reading.who.actor)
    return render(
        request,
        "guard.html",
        language,
        reading.who,
        assignments=assignments,
        now=console(request).clock(),
    )
