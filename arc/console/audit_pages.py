"""The auditors' pages: the access audit, where every use of records is seen (REGULATION R5).

R5 asks that all use of permissions be audited periodically; regulators and
the centre's auditors do it here, with what ``arc access-audit`` lists, newest
first and a page at a time. Reading the access audit is itself a read of
records: ``audited_read`` writes this read's row before the listing is made,
in the same transaction, so the first page shows it at the top.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from arc.auth import access
from arc.auth.access import AccessAction
from arc.auth.models import Permission
from arc.console import i18n
from arc.console.deps import Reading, audited_read, lang
from arc.console.pages import form_time, render
from arc.model import BEIJING

router = APIRouter()

PAGE = 100  # rows a page: an auditor reads a page, then asks for the older one


def _action(value: str | None) -> str | None:
    """An action to filter by (empty: every action)."""
    if not value:
        return None
    try:
        return AccessAction(value).value
    except ValueError:
        choices = ", ".join(a.value for a in AccessAction)
        raise HTTPException(422, f"action: {value!r} is not one of {choices}") from None


@router.get("/audit/access")
async def access_audit_page(
    request: Request,
    language: Annotated[i18n.Lang, Depends(lang)],
    reading: Annotated[Reading, audited_read(Permission.AUDIT_READ)],
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    action: Annotated[str | None, Query(max_length=20)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    """The access audit, newest first, by time range, actor and action, a page at a time."""
    start, end = form_time(since, "since"), form_time(until, "until")
    name = actor.strip() if actor else None
    what = _action(action)
    rows = await access.list_access(
        conn=reading.conn,
        # Shown back in the form as Beijing wall-clock times, as they were typed.
        since=start and start.astimezone(BEIJING),
        until=end and end.astimezone(BEIJING),
        actor=name or None,
        action=what,
        before=before,
        newest_first=True,
        limit=PAGE,
    )
    # The filters as typed, carried by the links to the older page and back to the newest.
    typed = {"since": since, "until": until, "actor": name, "action": what}
    kept = {k: v for k, v in typed.items() if v}
    older = urlencode({**kept, "before": rows[-1].chain_seq}) if len(rows) == PAGE else None
    return render(
        request,
        "audit_access.html",
        language,
        reading.who,
        rows=rows,
        # Shown back in the form as Beijing wall-clock times, as they were typed.
        since=start and start.astimezone(BEIJING),
        until=end and end.astimezone(BEIJING),
        actor=name or "",
        action=what or "",
        actions=[a.value for a in AccessAction],
        older=older,
        newest=urlencode(kept) if before is not None else None,
    )
