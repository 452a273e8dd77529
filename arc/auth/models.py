"""Roles, permissions and the people who hold them (REGULATION R5: least privilege).

Theory of operation. A user has exactly one role; a role is a fixed set of
permissions (``ROLE_PERMISSIONS``), the least each kind of work needs. Anything
beyond it is a grant (``arc.auth.grants``): applied for with a reason,
approved by someone else, valid for a limited time. ``records.export`` is in no
role at all: every export of alarm records is a decision someone answered for.

Administrators manage users and grants but do not see alarm records by
default: who runs the system and who reads its records are kept apart
(graded authorisation, R5). The auditor (a regulator, 公安机关) reads
everything it needs to inspect and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

R5 = "REGULATION R5 最小权限 least privilege"
"""The rule that refusals of access name."""


class Role(StrEnum):
    """What a user is employed to do."""

    OPERATOR = "operator"  # 值守员: works the live queue
    SUPERVISOR = "supervisor"  # 值班主管: leads a shift, changes rules and plans
    ADMIN = "admin"  # 系统管理员: users and grants, not alarm records
    AUDITOR = "auditor"  # 审计员 (公安机关 regulator): reads, never changes
    GUARD = "guard"  # 巡逻保安员: accepts, arrives, closes his own assignments
    API_CLIENT = "api_client"  # a manufacturer's or IoT platform's system: posts events


class Permission(StrEnum):
    """One thing the console or the API lets a user do."""

    QUEUE_READ = "queue.read"  # the live queue and incidents
    INCIDENT_WORK = "incident.work"  # take, steps, notes, dispatch, close
    STEP_WAIVE = "step.waive"  # skip a required plan step, with a reason
    ACCOUNT_READ = "account.read"  # an account's page and its signal history
    ACCOUNT_MANAGE = "account.manage"
    STAFF_READ = "staff.read"
    STAFF_MANAGE = "staff.manage"
    RULES_MANAGE = "rules.manage"  # classification overrides, plans, storm mode
    USERS_MANAGE = "users.manage"
    GRANTS_APPLY = "grants.apply"  # apply for a grant on behalf of another user
    GRANTS_APPROVE = "grants.approve"  # approve, issue, change, reject, revoke grants
    AUDIT_READ = "audit.read"  # the access audit and the integrity reports
    RECORDS_EXPORT = "records.export"  # export or copy alarm records: by grant only
    GUARD_ACT = "guard.act"  # a guard's own assignments
    EVENTS_POST = "events.post"  # the ingest API
    STAFFING_READ = "staffing.read"  # 表1 compliance


P = Permission
_OPERATOR = frozenset({P.QUEUE_READ, P.INCIDENT_WORK, P.ACCOUNT_READ, P.STAFF_READ})

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = MappingProxyType(
    {
        Role.OPERATOR: _OPERATOR,
        Role.SUPERVISOR: _OPERATOR
        | {
            P.STEP_WAIVE,
            P.ACCOUNT_MANAGE,
            P.STAFF_MANAGE,
            P.RULES_MANAGE,
            P.STAFFING_READ,
            P.GRANTS_APPLY,
        },
        Role.ADMIN: frozenset(
            {P.USERS_MANAGE, P.GRANTS_APPLY, P.GRANTS_APPROVE, P.STAFFING_READ, P.STAFF_READ}
        ),
        Role.AUDITOR: frozenset({P.QUEUE_READ, P.ACCOUNT_READ, P.AUDIT_READ, P.STAFFING_READ}),
        Role.GUARD: frozenset({P.GUARD_ACT}),
        Role.API_CLIENT: frozenset({P.EVENTS_POST}),
    }
)
"""What each role may do without a grant."""

GRANTABLE: frozenset[Permission] = frozenset(
    {
        P.QUEUE_READ,
        P.INCIDENT_WORK,
        P.STEP_WAIVE,
        P.ACCOUNT_READ,
        P.ACCOUNT_MANAGE,
        P.STAFF_READ,
        P.RULES_MANAGE,
        P.AUDIT_READ,
        P.RECORDS_EXPORT,
        P.STAFFING_READ,
    }
)
"""What a grant may add to a role. Never the power to make users or grants:
that would let one approval multiply itself."""

ROLE_NAMES_ZH: Mapping[Role, str] = MappingProxyType(
    {
        Role.OPERATOR: "值守员",
        Role.SUPERVISOR: "值班主管",
        Role.ADMIN: "系统管理员",
        Role.AUDITOR: "审计员（监管）",
        Role.GUARD: "巡逻保安员",
        Role.API_CLIENT: "接口客户端",
    }
)
"""Each role's name as the console shows it."""


class AuthError(Exception):
    """Base of the refusals of ``arc.auth``; ``rule`` names what refused it."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class PermissionDenied(AuthError):
    """The user lacks the permission the action needs (R5)."""


@dataclass(frozen=True, slots=True)
class User:
    """A person (or system) that logs in to the console or the API."""

    user_id: uuid.UUID
    username: str
    display_name: str
    role: Role
    staff_id: uuid.UUID | None  # a guard's row in `staff`; None for others
    totp_enabled: bool
    disabled: bool


def require(user: User, permission: Permission, permissions: frozenset[Permission]) -> None:
    """Raise ``PermissionDenied`` unless ``permissions`` (the user's effective ones) hold it."""
    if user.disabled or permission not in permissions:
        raise PermissionDenied(
            R5,
            f"{user.username} ({user.role}) 无权限 lacks permission {permission} ({R5})",
        )
