"""Who is asking, what they may do, and the audited way to read alarm records.

Every route declares what it needs as a dependency (STYLE.md: never an ``if``
inside a handler): ``Depends(allowed(Permission.X))`` for an action,
``Depends(audited(Permission.X))`` for a read of alarm records. ``audited``
hands the handler a connection inside a transaction whose first statement
wrote the ``access_audit`` row (who, which route and arguments, from where),
so a read without its row cannot happen: if the row cannot be written the
read is not made, and the transaction commits before the response leaves
(``scope="function"``), so a reply is never sent for a read whose row was
rolled back. Unsafe methods also need the session's CSRF token, sent by the
page's script in the ``X-CSRF-Token`` header (or a form's ``csrf`` field).

Configuration changes (``arc.console.admin_api``) take their connection from
``config_connection``: the second pool, logged in as ``arc_config``
(migration 0010), never the ``arc_app`` pool the reads and the session use.
"""

# No ``from __future__ import annotations``: FastAPI reads the dependencies in
# the signatures of the closures below, whose names are local to them.
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from arc.auth import access, grants, sessions
from arc.auth.models import Permission, User
from arc.auth.sessions import Session
from arc.config import Settings
from arc.console.i18n import Lang, parse_lang
from arc.db import Connection, Pool
from arc.dispatch.commands import CommandClient
from arc.dispatch.lifecycle import Role as IncidentRole
from arc.secrets import SecretBox

SESSION_COOKIE = "arc_session"
LANG_COOKIE = "arc_lang"
CSRF_HEADER = "X-CSRF-Token"
LEAST_PRIVILEGE = "REGULATION R5 最小权限 least privilege"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotLoggedIn(Exception):
    """No live session: pages send people to the login page, the API answers 401."""


class Forbidden(Exception):
    """The session may not do this; ``rule`` names the rule applied."""

    def __init__(self, message: str, rule: str = LEAST_PRIVILEGE) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule


@dataclass(frozen=True, slots=True)
class Console:
    """What every request of the console shares (``app.state.console``)."""

    settings: Settings
    pool: Pool
    commands: CommandClient | None
    clock: Callable[[], datetime]
    session_ttl: timedelta
    totp_box: SecretBox  # opens supervisors' TOTP secrets at login
    live: Any  # arc.console.live.LiveFeed; Any to keep this module free of Kafka
    # Logged in as arc_config (ARC_CONFIG_DATABASE_URL); None: the console changes nothing.
    config_pool: "Pool | None" = None


@dataclass(frozen=True, slots=True)
class Principal:
    """A logged-in person: their session and what they may do now."""

    session: Session
    permissions: frozenset[Permission]
    peer: str | None

    @property
    def user(self) -> User:
        """The person."""
        return self.session.user

    @property
    def actor(self) -> str:
        """The name that goes into logs: a guard is known by their staff id, others by login."""
        if self.user.staff_id is not None and self.user.role.value == "guard":
            return str(self.user.staff_id)
        return self.user.username

    @property
    def incident_role(self) -> IncidentRole:
        """The role the dispatcher's rules know this person by."""
        return _INCIDENT_ROLES.get(self.user.role.value, IncidentRole.OPERATOR)


_INCIDENT_ROLES = {
    "supervisor": IncidentRole.SUPERVISOR,
    "guard": IncidentRole.GUARD,
    "operator": IncidentRole.OPERATOR,
}


def console(request: Request) -> Console:
    """The console's shared state."""
    state: Console = request.app.state.console
    return state


def lang(request: Request) -> Lang:
    """The language the person chose (a cookie), Chinese by default."""
    return parse_lang(request.query_params.get("lang") or request.cookies.get(LANG_COOKIE))


def peer(request: Request) -> str | None:
    """The client's address, for the audit rows."""
    return None if request.client is None else request.client.host


async def connection(request: Request) -> AsyncIterator[Connection]:
    """A pooled connection for this request."""
    async with console(request).pool.acquire() as conn:
        yield conn


NO_CONFIG_ROLE = (
    "本控制台未配置 ARC_CONFIG_DATABASE_URL，不能修改配置（请使用 arc 命令行） "
    "the console has no ARC_CONFIG_DATABASE_URL (role arc_config): it cannot change "
    "configuration; use the arc commands"
)


async def config_connection(request: Request) -> AsyncIterator[Connection]:
    """A connection of the ``arc_config`` pool for one change; 503 when there is none."""
    pool = console(request).config_pool
    if pool is None:
        raise HTTPException(503, NO_CONFIG_ROLE)
    async with pool.acquire() as conn:
        yield conn


async def principal(
    request: Request, conn: Annotated[Connection, Depends(connection)]
) -> Principal:
    """The logged-in person; raise ``NotLoggedIn`` without a live session."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotLoggedIn
    state = console(request)
    now = state.clock()
    session = await sessions.load_session(conn=conn, token=token, now=now)
    if session is None:
        raise NotLoggedIn
    if request.method not in _SAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            presented = str((await request.form()).get("csrf") or "")
        if not sessions.csrf_ok(session, presented):
            raise Forbidden("CSRF token missing or wrong", rule="CSRF 防护 (OWASP)")
    permissions = await grants.effective_permissions(conn=conn, user=session.user, now=now)
    return Principal(session=session, permissions=permissions, peer=peer(request))


def allowed(*needed: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the logged-in person, who must hold every one of ``needed``."""

    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        missing = [p for p in needed if p not in who.permissions]
        if missing:
            raise Forbidden(f"{who.user.role.value} {who.user.username} lacks {', '.join(missing)}")
        return who

    return check


@dataclass(frozen=True, slots=True)
class Reading:
    """A read of alarm records already audited: the connection and the person."""

    conn: Connection
    who: Principal


def audited(permission: Permission, action: str = "read") -> Callable[..., AsyncIterator[Reading]]:
    """A dependency: a transaction that recorded this read in ``access_audit`` first."""

    async def reading(
        request: Request,
        conn: Annotated[Connection, Depends(connection)],
        who: Annotated[Principal, Depends(allowed(permission))],
    ) -> AsyncIterator[Reading]:
        route = request.scope.get("route")
        template = getattr(route, "path", request.url.path)
        async with conn.transaction():
            await access.record_access(
                conn=conn,
                actor=who.user.username,
                role=who.user.role.value,
                action=action,
                subject=template,
                details={
                    "path": request.url.path,
                    "params": dict(request.path_params),
                    "query": dict(request.query_params),
                },
                peer=who.peer,
            )
            yield Reading(conn=conn, who=who)

    return reading


def audited_read(permission: Permission, action: str = "read") -> Any:
    """``Depends`` of ``audited``, ending before the response is sent."""
    return Depends(audited(permission, action), scope="function")
