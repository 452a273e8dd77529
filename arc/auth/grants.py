"""Grants (REGULATION R5): a permission beyond a role, applied for, approved, issued for a time.

Theory of operation. A grant moves through a small state machine, written
here as pure functions of a frozen ``Grant`` (no database, no clock: the time
is passed in), so that every rule is tested on its own::

    applied ──approve──▶ approved ──issue──▶ issued ──change──▶ issued
       │                    │                   │
       ├──reject──▶ rejected ◀──reject──┘       └──revoke──▶ revoked
       └──revoke (withdrawn) ──▶ revoked ◀── revoke ── approved

"Expired" is no state: an issued grant counts while valid_from <= now <
valid_until and not after, so a grant stops working by itself, with no job
that could fail to run. An expired grant can be revoked (for the record) but
not changed: extending it is a new application.

Who may do what (``GrantRefused`` names the rule when not):

- apply: anyone for themselves; for another user with ``grants.apply``
  (supervisors for their operators, administrators);
- approve, reject, issue, change: ``grants.approve``, and never the grantee
  or the applicant (graded authorisation: nobody approves their own request);
- revoke: ``grants.approve``, or the grantee giving it up, or the applicant
  withdrawing the application;
- only ``GRANTABLE`` permissions, never ``users.manage`` or ``grants.approve``;
  at most ``MAX_DAYS`` days; a reason at every step but issuing.

Every step is the row of ``grants`` changed and an ``audit_log`` row
(``arc.audit.record``, actions ``grant.apply`` ... ``grant.revoke``) in one
transaction. audit_log rather than a chain of its own: it is the
administrative record already, append-only, hash-chained, walked by ``arc
verify`` and signed by ``arc digest``; a second chain would add a table to
protect and nothing to prove.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import asyncpg

from arc import audit
from arc.auth.models import (
    GRANTABLE,
    R5,
    ROLE_PERMISSIONS,
    AuthError,
    Permission,
    User,
)
from arc.auth.sessions import user_from_row
from arc.db import Connection

MAX_DAYS = 90
ALL = "*"  # the scope of a grant that holds everywhere


class GrantStatus(StrEnum):
    """Where a grant stands (expiry is time, not a status)."""

    APPLIED = "applied"
    APPROVED = "approved"
    ISSUED = "issued"
    REJECTED = "rejected"
    REVOKED = "revoked"


TERMINAL = frozenset({GrantStatus.REJECTED, GrantStatus.REVOKED})


class GrantRefused(AuthError):
    """A step of the workflow that is not allowed; ``rule`` names why."""


class GrantNotFound(GrantRefused):
    """No grant with that id."""


@dataclass(frozen=True, slots=True)
class Grant:
    """One grant and its history's latest facts."""

    grant_id: uuid.UUID
    user_id: uuid.UUID
    username: str  # the grantee
    permission: Permission
    scope: str
    status: GrantStatus
    reason: str
    valid_days: int
    applied_by: str
    applied_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    issued_by: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    changed_by: str | None = None
    changed_at: datetime | None = None
    changes: int = 0
    revoked_by: str | None = None
    revoked_at: datetime | None = None
    revoke_reason: str | None = None

    def active(self, now: datetime) -> bool:
        """Whether the grant gives its permission at ``now``."""
        return (
            self.status is GrantStatus.ISSUED
            and self.valid_from is not None
            and self.valid_until is not None
            and self.valid_from <= now < self.valid_until
        )

    def expired(self, now: datetime) -> bool:
        """Whether an issued grant's period is over."""
        return (
            self.status is GrantStatus.ISSUED
            and self.valid_until is not None
            and now >= self.valid_until
        )

    def state(self, now: datetime) -> str:
        """The status as shown: ``expired`` for an issued grant past its period."""
        return "expired" if self.expired(now) else self.status.value

    def to_json(self, now: datetime) -> dict[str, object]:
        """A JSON-ready form, with the state at ``now``."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, uuid.UUID):
                value = str(value)
            out[f.name] = value
        out["state"] = self.state(now)
        return out


# --- the pure state machine ----------------------------------------------------


def _refuse(rule: str, message: str) -> GrantRefused:
    return GrantRefused(rule, f"{message} ({R5})")


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise _refuse("reason", "须说明理由 every step of a grant needs a reason")
    return text


def _days(valid_days: int) -> int:
    if not 1 <= valid_days <= MAX_DAYS:
        raise _refuse(
            "validity", f"有效期须为 1-{MAX_DAYS} 天 a grant is valid for 1-{MAX_DAYS} days"
        )
    return valid_days


def _active_actor(actor: User) -> None:
    if actor.disabled:
        raise _refuse("disabled", f"用户已停用 user {actor.username} is disabled")


def _approver(grant: Grant, actor: User, step: str) -> None:
    _active_actor(actor)
    if Permission.GRANTS_APPROVE not in ROLE_PERMISSIONS[actor.role]:
        raise _refuse(
            "approver",
            f"{actor.username} ({actor.role}) 无审批权限 may not {step} grants "
            f"(needs {Permission.GRANTS_APPROVE})",
        )
    if actor.user_id == grant.user_id or actor.username == grant.applied_by:
        raise _refuse(
            "separation",
            f"不得审批本人的申请 {actor.username} may not {step} a grant they applied for "
            "or would hold",
        )


def _status(grant: Grant, step: str, *allowed: GrantStatus) -> None:
    if grant.status not in allowed:
        wanted = " or ".join(s.value for s in allowed)
        raise _refuse(
            "state",
            f"grant {grant.grant_id} is {grant.status.value}: only a grant that is {wanted} "
            f"can be {step}",
        )


def apply(
    *,
    grant_id: uuid.UUID,
    grantee: User,
    permission: Permission | str,
    scope: str,
    reason: str,
    valid_days: int,
    actor: User,
    at: datetime,
) -> Grant:
    """A new application for ``grantee`` to hold ``permission`` in ``scope``."""
    _active_actor(actor)
    try:
        wanted = Permission(permission)
    except ValueError:
        raise _refuse("permission", f"无此权限 no permission {permission!r}") from None
    if wanted not in GRANTABLE:
        raise _refuse("permission", f"{wanted} 不可授予 is never granted, only held by role")
    if (
        grantee.user_id != actor.user_id
        and Permission.GRANTS_APPLY not in ROLE_PERMISSIONS[actor.role]
    ):
        raise _refuse(
            "applicant",
            f"{actor.username} ({actor.role}) may apply for themselves only "
            f"(needs {Permission.GRANTS_APPLY})",
        )
    if grantee.disabled:
        raise _refuse("disabled", f"用户已停用 user {grantee.username} is disabled")
    scope = scope.strip()
    if not scope:
        raise _refuse("scope", f"须指定范围 a grant needs a scope ({ALL} for all)")
    if scope == ALL and wanted in ROLE_PERMISSIONS[grantee.role]:
        raise _refuse(
            "redundant", f"{grantee.username} ({grantee.role}) holds {wanted} by role already"
        )
    return Grant(
        grant_id=grant_id,
        user_id=grantee.user_id,
        username=grantee.username,
        permission=wanted,
        scope=scope,
        status=GrantStatus.APPLIED,
        reason=_reason(reason),
        valid_days=_days(valid_days),
        applied_by=actor.username,
        applied_at=at,
    )


def approve(grant: Grant, *, actor: User, reason: str, at: datetime) -> Grant:
    """The application approved (not yet in force: ``issue`` starts its period)."""
    _status(grant, "approved", GrantStatus.APPLIED)
    _approver(grant, actor, "approve")
    return dataclasses.replace(
        grant,
        status=GrantStatus.APPROVED,
        decided_by=actor.username,
        decided_at=at,
        decision_reason=_reason(reason),
    )


def reject(grant: Grant, *, actor: User, reason: str, at: datetime) -> Grant:
    """The application (or an approved grant not yet issued) refused for good."""
    _status(grant, "rejected", GrantStatus.APPLIED, GrantStatus.APPROVED)
    _approver(grant, actor, "reject")
    return dataclasses.replace(
        grant,
        status=GrantStatus.REJECTED,
        decided_by=actor.username,
        decided_at=at,
        decision_reason=_reason(reason),
    )


def issue(grant: Grant, *, actor: User, at: datetime) -> Grant:
    """The approved grant put in force for ``valid_days`` from ``at``."""
    _status(grant, "issued", GrantStatus.APPROVED)
    _approver(grant, actor, "issue")
    return dataclasses.replace(
        grant,
        status=GrantStatus.ISSUED,
        issued_by=actor.username,
        valid_from=at,
        valid_until=at + timedelta(days=grant.valid_days),
    )


def change(
    grant: Grant,
    *,
    actor: User,
    reason: str,
    at: datetime,
    valid_days: int | None = None,
    scope: str | None = None,
) -> Grant:
    """An issued, unexpired grant with a new period (``valid_days`` from ``at``) or scope."""
    _status(grant, "changed", GrantStatus.ISSUED)
    if grant.expired(at):
        raise _refuse(
            "expired", f"grant {grant.grant_id} has expired: apply again rather than change it"
        )
    _approver(grant, actor, "change")
    _reason(reason)  # kept in the audit row of the change
    new_scope = grant.scope if scope is None else scope.strip()
    if not new_scope:
        raise _refuse("scope", f"须指定范围 a grant needs a scope ({ALL} for all)")
    new_until = grant.valid_until if valid_days is None else at + timedelta(days=_days(valid_days))
    if new_scope == grant.scope and new_until == grant.valid_until:
        raise _refuse("change", "无变更 the change changes nothing (give --days or --scope)")
    return dataclasses.replace(
        grant,
        scope=new_scope,
        valid_days=grant.valid_days if valid_days is None else valid_days,
        valid_until=new_until,
        changed_by=actor.username,
        changed_at=at,
        changes=grant.changes + 1,
    )


def revoke(grant: Grant, *, actor: User, reason: str, at: datetime) -> Grant:
    """The grant ended for good, whatever stage it reached."""
    _status(grant, "revoked", GrantStatus.APPLIED, GrantStatus.APPROVED, GrantStatus.ISSUED)
    _active_actor(actor)
    own = actor.user_id == grant.user_id or actor.username == grant.applied_by
    if not own:
        _approver(grant, actor, "revoke")
    return dataclasses.replace(
        grant,
        status=GrantStatus.REVOKED,
        revoked_by=actor.username,
        revoked_at=at,
        revoke_reason=_reason(reason),
    )


# --- the database --------------------------------------------------------------

_GRANT_COLUMNS = (
    "g.grant_id, g.user_id, u.username, g.permission, g.scope, g.status, g.reason,"
    " g.valid_days, g.applied_by, g.applied_at, g.decided_by, g.decided_at, g.decision_reason,"
    " g.issued_by, g.valid_from, g.valid_until, g.changed_by, g.changed_at, g.changes,"
    " g.revoked_by, g.revoked_at, g.revoke_reason"
)
_USER_COLUMNS = "user_id, username, display_name, role, staff_id, totp_enabled, disabled"
_STORED = (
    "status",
    "scope",
    "valid_days",
    "decided_by",
    "decided_at",
    "decision_reason",
    "issued_by",
    "valid_from",
    "valid_until",
    "changed_by",
    "changed_at",
    "changes",
    "revoked_by",
    "revoked_at",
    "revoke_reason",
)


def _grant(row: asyncpg.Record) -> Grant:
    values = dict(row.items())
    values["permission"] = Permission(values["permission"])
    values["status"] = GrantStatus(values["status"])
    return Grant(**values)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


async def _user(conn: Connection, user_id: uuid.UUID, what: str) -> User:
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = $1",  # noqa: S608 - fixed columns
        user_id,
    )
    if row is None:
        raise GrantRefused("user", f"无此用户 no {what} {user_id}")
    return user_from_row(row)


async def _locked_grant(conn: Connection, grant_id: uuid.UUID) -> Grant:
    row = await conn.fetchrow(
        f"SELECT {_GRANT_COLUMNS} FROM grants g JOIN users u USING (user_id)"  # noqa: S608
        " WHERE g.grant_id = $1 FOR UPDATE OF g",
        grant_id,
    )
    if row is None:
        raise GrantNotFound("grant", f"无此授权 no grant {grant_id}")
    return _grant(row)


def _details(grant: Grant, **extra: object) -> dict[str, object]:
    details: dict[str, object] = {
        "grantee": grant.username,
        "permission": grant.permission.value,
        "scope": grant.scope,
        "status": grant.status.value,
        "valid_from": grant.valid_from.isoformat() if grant.valid_from else None,
        "valid_until": grant.valid_until.isoformat() if grant.valid_until else None,
    }
    details.update(extra)
    return details


async def _record(
    conn: Connection, actor: User, step: str, grant: Grant, reason: str | None
) -> None:
    await audit.record(
        conn=conn,
        actor=actor.username,
        action=f"grant.{step}",
        subject=f"grant:{grant.grant_id}",
        details=_details(grant, reason=reason),
    )


async def apply_grant(
    *,
    conn: Connection,
    user_id: uuid.UUID,
    permission: Permission | str,
    scope: str,
    reason: str,
    valid_days: int,
    actor: User,
    now: datetime | None = None,
) -> Grant:
    """Apply for ``user_id`` to hold ``permission``; audited."""
    at = _now(now)
    async with conn.transaction():
        grantee = await _user(conn, user_id, "user")
        applicant = await _user(conn, actor.user_id, "applicant")
        grant = apply(
            grant_id=uuid.uuid4(),
            grantee=grantee,
            permission=permission,
            scope=scope,
            reason=reason,
            valid_days=valid_days,
            actor=applicant,
            at=at,
        )
        await conn.execute(
            "INSERT INTO grants (grant_id, user_id, permission, scope, status, reason,"
            " valid_days, applied_by, applied_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            grant.grant_id,
            grant.user_id,
            grant.permission.value,
            grant.scope,
            grant.status.value,
            grant.reason,
            grant.valid_days,
            grant.applied_by,
            grant.applied_at,
        )
        await _record(conn, applicant, "apply", grant, grant.reason)
    return grant


async def _step(
    conn: Connection,
    grant_id: uuid.UUID,
    actor: User,
    step: str,
    reason: str | None,
    now: datetime | None,
    **options: object,
) -> Grant:
    at = _now(now)
    async with conn.transaction():
        current = await _locked_grant(conn, grant_id)
        fresh = await _user(conn, actor.user_id, "user")  # disabled meanwhile? role changed?
        if step == "approve":
            grant = approve(current, actor=fresh, reason=reason or "", at=at)
        elif step == "reject":
            grant = reject(current, actor=fresh, reason=reason or "", at=at)
        elif step == "issue":
            grant = issue(current, actor=fresh, at=at)
        elif step == "change":
            days = options.get("valid_days")
            scope = options.get("scope")
            grant = change(
                current,
                actor=fresh,
                reason=reason or "",
                at=at,
                valid_days=days if isinstance(days, int) else None,
                scope=scope if isinstance(scope, str) else None,
            )
        else:
            grant = revoke(current, actor=fresh, reason=reason or "", at=at)
        assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(_STORED, start=2))
        await conn.execute(
            f"UPDATE grants SET {assignments} WHERE grant_id = $1",  # noqa: S608 - fixed columns
            grant.grant_id,
            *(getattr(grant, c).value if c == "status" else getattr(grant, c) for c in _STORED),
        )
        await _record(conn, fresh, step, grant, reason)
    return grant


async def approve_grant(
    *,
    conn: Connection,
    grant_id: uuid.UUID,
    actor: User,
    reason: str,
    now: datetime | None = None,
) -> Grant:
    """Approve an application (``grants.approve``, not one's own); audited."""
    return await _step(conn, grant_id, actor, "approve", reason, now)


async def reject_grant(
    *,
    conn: Connection,
    grant_id: uuid.UUID,
    actor: User,
    reason: str,
    now: datetime | None = None,
) -> Grant:
    """Reject an application or an approved grant not yet issued; audited."""
    return await _step(conn, grant_id, actor, "reject", reason, now)


async def issue_grant(
    *, conn: Connection, grant_id: uuid.UUID, actor: User, now: datetime | None = None
) -> Grant:
    """Put an approved grant in force for its days from now; audited."""
    return await _step(conn, grant_id, actor, "issue", None, now)


async def change_grant(
    *,
    conn: Connection,
    grant_id: uuid.UUID,
    actor: User,
    reason: str,
    valid_days: int | None = None,
    scope: str | None = None,
    now: datetime | None = None,
) -> Grant:
    """Give an issued grant a new period (days from now) or scope; audited."""
    return await _step(
        conn, grant_id, actor, "change", reason, now, valid_days=valid_days, scope=scope
    )


async def revoke_grant(
    *,
    conn: Connection,
    grant_id: uuid.UUID,
    actor: User,
    reason: str,
    now: datetime | None = None,
) -> Grant:
    """End a grant for good (an approver, or the grantee or applicant themselves); audited."""
    return await _step(conn, grant_id, actor, "revoke", reason, now)


async def get_grant(*, conn: Connection, grant_id: uuid.UUID) -> Grant | None:
    """The grant with this id, if any."""
    row = await conn.fetchrow(
        f"SELECT {_GRANT_COLUMNS} FROM grants g JOIN users u USING (user_id)"  # noqa: S608
        " WHERE g.grant_id = $1",
        grant_id,
    )
    return _grant(row) if row is not None else None


async def list_grants(*, conn: Connection, user_id: uuid.UUID | None = None) -> list[Grant]:
    """Every grant (of one user, if given), oldest application first."""
    rows = await conn.fetch(
        f"SELECT {_GRANT_COLUMNS} FROM grants g JOIN users u USING (user_id)"  # noqa: S608
        " WHERE $1::uuid IS NULL OR g.user_id = $1 ORDER BY g.applied_at, g.grant_id",
        user_id,
    )
    return [_grant(r) for r in rows]


async def active_grants(*, conn: Connection, user: User, now: datetime) -> list[Grant]:
    """The user's grants in force at ``now`` (none for a disabled user)."""
    if user.disabled:
        return []
    rows = await conn.fetch(
        f"SELECT {_GRANT_COLUMNS} FROM grants g JOIN users u USING (user_id)"  # noqa: S608
        " WHERE g.user_id = $1 AND g.status = 'issued' AND g.valid_from <= $2"
        " AND $2 < g.valid_until AND NOT u.disabled",
        user.user_id,
        now,
    )
    return [_grant(r) for r in rows]


async def effective_permissions(
    *, conn: Connection, user: User, now: datetime
) -> frozenset[Permission]:
    """The role's permissions and those of grants in force with scope ``*``; none if disabled.

    A grant for a narrower scope (``account:1234``) is not in this set: ask
    ``allowed`` with the subject at hand.
    """
    if user.disabled:
        return frozenset()
    grants = await active_grants(conn=conn, user=user, now=now)
    return ROLE_PERMISSIONS[user.role] | {g.permission for g in grants if g.scope == ALL}


async def allowed(
    *, conn: Connection, user: User, permission: Permission, scope: str, now: datetime
) -> bool:
    """Whether ``user`` may use ``permission`` on ``scope`` (by role, or by a grant)."""
    if user.disabled:
        return False
    if permission in ROLE_PERMISSIONS[user.role]:
        return True
    grants = await active_grants(conn=conn, user=user, now=now)
    return any(g.permission is permission and g.scope in (ALL, scope) for g in grants)
