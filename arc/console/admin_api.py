"""Supervisors' and administrators' changes: storms, rules, grants and users (``/api/admin``).

Each route declares its permission (``Depends(allowed(Permission.X))``),
takes a body that forbids unknown fields, and calls the domain function the
``arc storm | rules | grant | user | account | staff`` commands call, with
the logged-in person as the actor, on a connection of the ``arc_config``
pool (``config_connection``, migration 0010): the function writes the change
and its ``audit_log`` row in one transaction. The permission is checked
before the pool is asked for, so a refusal is the same with or without it.

Answers: 200 with the result; 404 no such account, user, grant or member of
staff; 409 refused by a rule of the domain (the grants workflow, 表1, storm
mode, R4), 422 a value the domain cannot take (a weak password, a schedule it
cannot read), both ``{"error", "rule"}``; 503 without
``ARC_CONFIG_DATABASE_URL``. Keys and passwords go in and never come out:
they are ``SecretStr`` in the bodies (hidden from validation errors), never
in an answer, a log line or an audit row. Accounts, their sites and staff
have their routes in ``arc.console.admin_accounts``, which shares the helpers
here (``answering``, ``json_answer``, ``Body``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from arc.accounts import service as accounts
from arc.accounts import sites
from arc.accounts.schedule import RULE as SCHEDULE_RULE
from arc.accounts.schedule import ScheduleError
from arc.auth import grants
from arc.auth import service as users
from arc.auth.models import AuthError, Permission, User
from arc.auth.passwords import WeakPassword
from arc.console.deps import Principal, allowed, config_connection, console
from arc.db import Connection
from arc.dispatch import rules_store, storm_store
from arc.dispatch.plans import PlanOverride
from arc.dispatch.rules import RulesRefused, parse_step
from arc.dispatch.storm import Storm, StormRefused
from arc.guards import service as staff
from arc.guards import staffing
from arc.imports import ImportRejected

router = APIRouter(prefix="/api/admin")
P = Permission

ACCOUNT_RULE = "用户编号 DC-09 account: one record per account"
STAFF_RULE = "保安员证 one certificate, one person (REGULATION R2)"
INPUT_RULE = "输入格式 input format"
TEXT_LIMIT = 500  # reasons, names, addresses: a paragraph at most


class Refused(Exception):
    """A change the domain refused: the status, the rule it applied and why."""

    def __init__(self, status: int, rule: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.rule = rule
        self.message = message


async def refused(_request: Request, error: Exception) -> Response:
    """The answer to a ``Refused`` change (installed by ``arc.console.app``)."""
    assert isinstance(error, Refused)  # noqa: S101 - registered for Refused only
    return json_answer({"error": error.message, "rule": error.rule}, error.status)


def json_answer(value: Any, status_code: int = 200) -> Response:
    """``value`` as a JSON answer (times ISO 8601, ids as text)."""
    return Response(
        orjson.dumps(value, default=str), status_code=status_code, media_type="application/json"
    )


def _validation_text(error: ValidationError) -> str:
    # Field and message only: the input may be a key or a password.
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg'].removeprefix('Value error, ')}"
        for e in error.errors()
    )


def _refusal(error: Exception) -> Refused | None:
    """The answer a domain error implies, or None for an error that is a bug."""
    match error:
        case grants.GrantNotFound() | users.UserNotFound():
            return Refused(404, error.rule, error.message)
        case sites.AccountNotFound():
            return Refused(404, ACCOUNT_RULE, str(error))
        case staff.StaffNotFound():
            return Refused(404, STAFF_RULE, str(error))
        case users.UserExists() | grants.GrantRefused():
            return Refused(409, error.rule, error.message)
        case users.UserError():  # a username, role or staff link the rules do not take
            return Refused(422, error.rule, error.message)
        case AuthError():
            return Refused(409, error.rule, error.message)
        case WeakPassword():
            return Refused(422, f"密码策略 password policy: {error.rule}", str(error))
        case staff.StaffingRefused():
            return Refused(409, staffing.RULE, str(error))
        case accounts.AccountError():
            return Refused(409, ACCOUNT_RULE, str(error))
        case staff.StaffExists():
            return Refused(409, STAFF_RULE, str(error))
        case StormRefused() | RulesRefused():
            return Refused(409, error.rule, error.message)
        case ScheduleError():
            return Refused(422, SCHEDULE_RULE, str(error))
        case ImportRejected():
            return Refused(422, INPUT_RULE, str(error))
        case ValidationError():
            return Refused(422, INPUT_RULE, _validation_text(error))
    return None


@contextlib.contextmanager
def answering() -> Iterator[None]:
    """Turn the domain's refusals into answers that name the rule."""
    try:
        yield
    except Exception as error:
        answer = _refusal(error)
        if answer is None:
            raise
        raise answer from None


class Body(BaseModel):
    """A change's body: an unknown field is a mistake, refused (422), never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoBody(Body):
    """A change that needs nothing more than its path: ``{}``."""


class ReasonIn(Body):
    """A step that is recorded with why."""

    reason: str = Field(min_length=1, max_length=TEXT_LIMIT)


# --- storm mode (rules.manage) ---------------------------------------------------------------


class StormStartIn(Body):
    """Switch a class of signals to storm handling for a time."""

    event_class: str = Field(max_length=50)
    mode: str = Field(max_length=20)
    minutes: float = Field(allow_inf_nan=False)
    delay_seconds: float | None = Field(default=None, allow_inf_nan=False)
    reason: str = Field(max_length=TEXT_LIMIT)


class StormStopIn(Body):
    """End a class's storm mode now."""

    event_class: str = Field(max_length=50)
    reason: str = Field(max_length=TEXT_LIMIT)


def _storm(storm: Storm) -> dict[str, Any]:
    return {
        "storm_id": str(storm.storm_id),
        "event_class": storm.event_class,
        "mode": storm.mode.value,
        "delay_seconds": None if storm.delay is None else storm.delay.total_seconds(),
        "started_at": storm.started_at,
        "ends_at": storm.ends_at,
        "started_by": storm.started_by,
        "reason": storm.reason,
        "stopped_at": storm.stopped_at,
        "stopped_by": storm.stopped_by,
        "stop_reason": storm.stop_reason,
    }


@router.post("/storms")
async def start_storm(
    body: StormStartIn,
    who: Annotated[Principal, Depends(allowed(P.RULES_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Start storm mode for a class (it ends by itself; recorded with its reason)."""
    with answering():
        storm = await storm_store.start_storm(
            conn=conn,
            event_class=body.event_class,
            mode=body.mode,
            minutes=body.minutes,
            delay_seconds=body.delay_seconds,
            reason=body.reason,
            actor=who.user.username,
        )
    return json_answer(_storm(storm))


@router.post("/storms/stop")
async def stop_storm(
    body: StormStopIn,
    who: Annotated[Principal, Depends(allowed(P.RULES_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Stop a class's storm mode now, with the reason."""
    with answering():
        storm = await storm_store.stop_storm(
            conn=conn, event_class=body.event_class, reason=body.reason, actor=who.user.username
        )
    return json_answer(_storm(storm))


# --- classification overrides and response plans (rules.manage, R4) ---------------------------


class OverrideIn(Body):
    """How signals matching ``match`` are classed and graded in a scope."""

    match: str = Field(max_length=50)
    grade: int
    event_class: str | None = Field(default=None, max_length=50)
    account: str = Field(default="", max_length=16)
    zone: str = Field(default="", max_length=16)
    reason: str = Field(max_length=TEXT_LIMIT)


class OverrideRemoveIn(Body):
    """Which override to remove (the default applies again)."""

    match: str = Field(max_length=50)
    account: str = Field(default="", max_length=16)
    zone: str = Field(default="", max_length=16)
    reason: str = Field(max_length=TEXT_LIMIT)


class PlanIn(Body):
    """A class's plan in a scope: steps written ``KIND:SECONDS[:optional]``."""

    event_class: str = Field(max_length=50)
    grade: int = 0
    account: str = Field(default="", max_length=16)
    steps: list[str] = Field(max_length=30)
    reason: str = Field(max_length=TEXT_LIMIT)


class PlanRemoveIn(Body):
    """Which plan to remove (the default applies again)."""

    event_class: str = Field(max_length=50)
    grade: int = 0
    account: str = Field(default="", max_length=16)
    reason: str = Field(max_length=TEXT_LIMIT)


def _plan(plan: PlanOverride) -> dict[str, Any]:
    return {
        "event_class": plan.event_class,
        "grade": plan.grade or 0,
        "account": plan.account,
        "steps": [s.as_json() for s in plan.steps],
    }


@router.post("/overrides")
async def set_override(
    body: OverrideIn,
    who: Annotated[Principal, Depends(allowed(P.RULES_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Set a classification override (globally, for an account or a zone)."""
    with answering():
        override = await rules_store.set_override(
            conn=conn,
            match=body.match,
            grade=body.grade,
            event_class=body.event_class or None,
            account=body.account,
            zone=body.zone,
            reason=body.reason,
            actor=who.user.username,
        )
    return json_answer(override)


@router.post("/overrides/remove")
async def remove_override(
    body: OverrideRemoveIn,
    who: Annotated[Principal, Depends(allowed(P.RULES_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Remove a classification override."""
    with answering():
        override = await rules_store.remove_override(
            conn=conn,
            match=body.match,
            account=body.account,
            zone=body.zone,
            reason=body.reason,
            actor=who.user.username,
        )
    return json_answer(override)


@router.post("/plans")
async def set_plan(
    body: PlanIn,
    who: Annotated[Principal, Depends(allowed(P.RULES_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Set the centre's response plan of a class (and grade, and account)."""
    with answering():
        plan = await rules_store.set_plan(
            conn=conn,
            event_class=body.event_class,
            grade=body.grade,
            account=body.account,
            steps=[parse_step(text) for text in body.steps],
            reason=body.reason,
            actor=who.user.username,
        )
    return json_answer(_plan(plan))


@router.post("/plans/remove")
async def remove_plan(
    body: PlanRemoveIn,
    who: Annotated[Principal, Depends(allowed(P.RULES_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Remove the centre's plan of a class (the default plan applies again)."""
    with answering():
        plan = await rules_store.remove_plan(
            conn=conn,
            event_class=body.event_class,
            grade=body.grade,
            account=body.account,
            reason=body.reason,
            actor=who.user.username,
        )
    return json_answer(_plan(plan))


# --- grants (R5: apply, approve or reject, issue, change, revoke) ------------------------------


class GrantApplyIn(Body):
    """An application for ``username`` to hold ``permission`` in ``scope`` for ``days``."""

    username: str = Field(max_length=64)
    permission: str = Field(max_length=50)
    scope: str = Field(default=grants.ALL, max_length=100)
    reason: str = Field(max_length=TEXT_LIMIT)
    days: int


class GrantChangeIn(Body):
    """A new period (days from now) or scope for an issued grant."""

    reason: str = Field(max_length=TEXT_LIMIT)
    days: int | None = None
    scope: str | None = Field(default=None, max_length=100)


def _grant(request: Request, grant: grants.Grant) -> Response:
    return json_answer(grant.to_json(console(request).clock()))


@router.post("/grants")
async def apply_grant(
    body: GrantApplyIn,
    request: Request,
    who: Annotated[Principal, Depends(allowed(P.GRANTS_APPLY))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Apply for a grant on behalf of a user."""
    with answering():
        grantee = await users.get_user_by_name(conn=conn, username=body.username)
        if grantee is None:
            raise users.UserNotFound("user", f"无此用户 no user {body.username!r}")
        grant = await grants.apply_grant(
            conn=conn,
            user_id=grantee.user_id,
            permission=body.permission,
            scope=body.scope,
            reason=body.reason,
            valid_days=body.days,
            actor=who.user,
            now=console(request).clock(),
        )
    return _grant(request, grant)


@router.post("/grants/{grant_id}/approve")
async def approve_grant(
    grant_id: uuid.UUID,
    body: ReasonIn,
    request: Request,
    who: Annotated[Principal, Depends(allowed(P.GRANTS_APPROVE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Approve an application (never one's own)."""
    with answering():
        grant = await grants.approve_grant(
            conn=conn,
            grant_id=grant_id,
            actor=who.user,
            reason=body.reason,
            now=console(request).clock(),
        )
    return _grant(request, grant)


@router.post("/grants/{grant_id}/reject")
async def reject_grant(
    grant_id: uuid.UUID,
    body: ReasonIn,
    request: Request,
    who: Annotated[Principal, Depends(allowed(P.GRANTS_APPROVE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Reject an application, or an approved grant not yet issued."""
    with answering():
        grant = await grants.reject_grant(
            conn=conn,
            grant_id=grant_id,
            actor=who.user,
            reason=body.reason,
            now=console(request).clock(),
        )
    return _grant(request, grant)


@router.post("/grants/{grant_id}/issue")
async def issue_grant(
    grant_id: uuid.UUID,
    _body: NoBody,
    request: Request,
    who: Annotated[Principal, Depends(allowed(P.GRANTS_APPROVE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Put an approved grant in force for its days from now."""
    with answering():
        grant = await grants.issue_grant(
            conn=conn, grant_id=grant_id, actor=who.user, now=console(request).clock()
        )
    return _grant(request, grant)


@router.post("/grants/{grant_id}/change")
async def change_grant(
    grant_id: uuid.UUID,
    body: GrantChangeIn,
    request: Request,
    who: Annotated[Principal, Depends(allowed(P.GRANTS_APPROVE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Give an issued grant a new period or scope."""
    with answering():
        grant = await grants.change_grant(
            conn=conn,
            grant_id=grant_id,
            actor=who.user,
            reason=body.reason,
            valid_days=body.days,
            scope=body.scope or None,
            now=console(request).clock(),
        )
    return _grant(request, grant)


@router.post("/grants/{grant_id}/revoke")
async def revoke_grant(
    grant_id: uuid.UUID,
    body: ReasonIn,
    request: Request,
    who: Annotated[Principal, Depends(allowed(P.GRANTS_APPROVE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """End a grant for good, whatever stage it reached."""
    with answering():
        grant = await grants.revoke_grant(
            conn=conn,
            grant_id=grant_id,
            actor=who.user,
            reason=body.reason,
            now=console(request).clock(),
        )
    return _grant(request, grant)


# --- users (users.manage) ----------------------------------------------------------------------


class _Secret(Body):
    # A validation error must not echo a password.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class UserAddIn(_Secret):
    """A new user with the password the administrator gives them (the policy applies)."""

    username: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=100)
    role: str = Field(max_length=20)
    password: SecretStr = Field(max_length=1000)
    staff_id: uuid.UUID | None = None


class PasswordIn(_Secret):
    """A new password (the policy applies); the user's sessions end."""

    password: SecretStr = Field(max_length=1000)


def _user(user: User) -> dict[str, Any]:
    return {
        "user_id": str(user.user_id),
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "staff_id": None if user.staff_id is None else str(user.staff_id),
        "totp_enabled": user.totp_enabled,
        "disabled": user.disabled,
    }


async def _named(conn: Connection, username: str) -> User:
    found = await users.get_user_by_name(conn=conn, username=username)
    if found is None:
        raise users.UserNotFound("user", f"无此用户 no user {username!r}")
    return found


@router.post("/users")
async def add_user(
    body: UserAddIn,
    who: Annotated[Principal, Depends(allowed(P.USERS_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Add a user with a password that meets the policy (never shown back)."""
    with answering():
        user = await users.add_user(
            conn=conn,
            username=body.username,
            display_name=body.display_name,
            role=body.role,
            password=body.password.get_secret_value(),
            actor=who.user.username,
            staff_id=body.staff_id,
        )
    return json_answer(_user(user))


@router.post("/users/{username}/disable")
async def disable_user(
    username: str,
    _body: NoBody,
    who: Annotated[Principal, Depends(allowed(P.USERS_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Stop a user from logging in; their sessions end at once."""
    with answering():
        found = await _named(conn, username)
        user = await users.disable_user(conn=conn, user_id=found.user_id, actor=who.user.username)
    return json_answer(_user(user))


@router.post("/users/{username}/enable")
async def enable_user(
    username: str,
    _body: NoBody,
    who: Annotated[Principal, Depends(allowed(P.USERS_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Let a disabled user log in again."""
    with answering():
        found = await _named(conn, username)
        user = await users.enable_user(conn=conn, user_id=found.user_id, actor=who.user.username)
    return json_answer(_user(user))


@router.post("/users/{username}/password")
async def set_password(
    username: str,
    body: PasswordIn,
    who: Annotated[Principal, Depends(allowed(P.USERS_MANAGE))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """Give a user a new password (the policy applies); their sessions end."""
    with answering():
        found = await _named(conn, username)
        await users.set_password(
            conn=conn,
            user_id=found.user_id,
            password=body.password.get_secret_value(),
            actor=who.user.username,
        )
    return json_answer({"username": found.username, "password_changed": True})
