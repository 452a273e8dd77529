"""Users: adding, changing, disabling, TOTP, and logging in with the rate limit.

Every change to a user is written with an ``audit_log`` row in the same
transaction (``arc.audit.record``); the details name what changed, never the
password, its hash or a TOTP secret.

Logging in (``authenticate``). A wrong password and an unknown username get
the same answer after the same work: an unknown name is checked against a
dummy hash made with the same parameters, so neither the message nor the
time tells which names exist. Failed attempts are rows of
``login_failures`` (committed even though the login is refused: call
``authenticate`` outside a transaction, which it checks), counted per
username and per client address (``RateLimit``): 5 failures of a username
within 15 minutes lock it for 15 minutes, 20 from one address lock that
address (higher, because a whole shift may sit behind one office address).
A successful login clears the username's count, not the address's: one valid
account must not reset an attacker's budget for the others. Attempts made
while locked are recorded but not counted, so trying on does not keep a user
locked out for ever.
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from argon2 import PasswordHasher

from arc import audit
from arc.auth import passwords, totp
from arc.auth.models import AuthError, Role, User
from arc.auth.sessions import end_user_sessions, user_from_row
from arc.db import Connection
from arc.model import BEIJING
from arc.secrets import SecretBox, SecretError

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,62}")
_USER_COLUMNS = "user_id, username, display_name, role, staff_id, totp_enabled, disabled"
_NO_PEER = "-"


class UserError(AuthError):
    """A change to a user that is refused; ``rule`` names why."""


class UserExists(UserError):
    """The username is taken."""


class UserNotFound(UserError):
    """No user by that name or id."""


class LoginRefused(AuthError):
    """A login that does not succeed; ``rule``: credentials, locked, disabled, totp..."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """How many failed logins lock a username or an address, and for how long."""

    per_username: int = 5
    per_peer: int = 20
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


DEFAULT_RATE_LIMIT = RateLimit()


def normal_username(username: str) -> str:
    """The stored form of a username: stripped, lower case."""
    return username.strip().lower()


def check_username(username: str) -> str:
    """Return the stored form of ``username``; raise ``UserError`` if it is not a valid one."""
    name = normal_username(username)
    if not _USERNAME.fullmatch(name):
        raise UserError(
            "username",
            f"用户名无效 username {username!r}: 2-63 characters of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit",
        )
    return name


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


async def _hash(password: str, hasher: PasswordHasher) -> str:
    # argon2 takes tens of milliseconds of CPU and 64 MiB: not on the event loop.
    return await asyncio.to_thread(passwords.hash_password, password, hasher=hasher)


async def _verify(stored: str, password: str) -> bool:
    return await asyncio.to_thread(passwords.verify_password, stored, password)


@functools.cache
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    """Hash a random password with these parameters: what unknown usernames are checked against."""
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
    return hasher.hash(secrets.token_urlsafe(16))


async def _staff_check(conn: Connection, staff_id: uuid.UUID | None, role: Role) -> None:
    if staff_id is None:
        return
    row = await conn.fetchrow("SELECT category FROM staff WHERE staff_id = $1", staff_id)
    if row is None:
        raise UserError("staff", f"无此员工 no staff member {staff_id} (arc staff list)")
    if role is Role.GUARD and row["category"] != "patrol_response":
        raise UserError(
            "staff",
            f"巡逻保安员须关联现场处置巡逻人员 a guard's staff row must be patrol_response, "
            f"{staff_id} is {row['category']}",
        )


async def add_user(
    *,
    conn: Connection,
    username: str,
    display_name: str,
    role: Role | str,
    password: str,
    actor: str,
    staff_id: uuid.UUID | None = None,
    hasher: PasswordHasher = passwords.DEFAULT_HASHER,
    now: datetime | None = None,
) -> User:
    """Add a user with a password that meets the policy; audited."""
    name = check_username(username)
    try:
        role = Role(role)
    except ValueError:
        raise UserError(
            "role", f"无此角色 no role {role!r}: one of {', '.join(r.value for r in Role)}"
        ) from None
    shown = display_name.strip() or name
    passwords.check_policy(password, username=name)
    password_hash = await _hash(password, hasher)
    at = _now(now)
    user_id = uuid.uuid4()
    async with conn.transaction():
        await _staff_check(conn, staff_id, role)
        try:
            row = await conn.fetchrow(
                "INSERT INTO users (user_id, username, display_name, role, password_hash,"  # noqa: S608
                " staff_id, password_changed_at, created_at, updated_at)"
                f" VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7) RETURNING {_USER_COLUMNS}",
                user_id,
                name,
                shown,
                role.value,
                password_hash,
                staff_id,
                at,
            )
        except asyncpg.UniqueViolationError:
            raise UserExists("username", f"用户已存在 user {name} exists already") from None
        assert row is not None  # noqa: S101 - INSERT ... RETURNING returns the row
        await audit.record(
            conn=conn,
            actor=actor,
            action="user.add",
            subject=f"user:{name}",
            details={
                "user_id": str(user_id),
                "role": role.value,
                "display_name": shown,
                "staff_id": str(staff_id) if staff_id else None,
            },
        )
    return user_from_row(row)


async def list_users(*, conn: Connection) -> list[User]:
    """Every user, by username."""
    rows = await conn.fetch(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username")  # noqa: S608
    return [user_from_row(r) for r in rows]


async def get_user(*, conn: Connection, user_id: uuid.UUID) -> User | None:
    """The user with this id, if any."""
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = $1",  # noqa: S608 - fixed columns
        user_id,
    )
    return user_from_row(row) if row is not None else None


async def get_user_by_name(*, conn: Connection, username: str) -> User | None:
    """The user with this username (any case), if any."""
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM users WHERE username = $1",  # noqa: S608 - fixed columns
        normal_username(username),
    )
    return user_from_row(row) if row is not None else None


async def _locked_user(conn: Connection, user_id: uuid.UUID) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS}, totp_secret FROM users WHERE user_id = $1 FOR UPDATE",  # noqa: S608
        user_id,
    )
    if row is None:
        raise UserNotFound("user", f"无此用户 no user {user_id}")
    return row


async def set_password(
    *,
    conn: Connection,
    user_id: uuid.UUID,
    password: str,
    actor: str,
    hasher: PasswordHasher = passwords.DEFAULT_HASHER,
    now: datetime | None = None,
) -> None:
    """Give a user a new password and end their sessions; audited."""
    at = _now(now)
    async with conn.transaction():
        row = await _locked_user(conn, user_id)
        passwords.check_policy(password, username=row["username"])
        password_hash = await _hash(password, hasher)
        await conn.execute(
            "UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3"
            " WHERE user_id = $1",
            user_id,
            password_hash,
            at,
        )
        ended = await end_user_sessions(
            conn=conn, user_id=user_id, now=at, reason="password changed"
        )
        await audit.record(
            conn=conn,
            actor=actor,
            action="user.password",
            subject=f"user:{row['username']}",
            details={"user_id": str(user_id), "sessions_ended": ended},
        )


async def _set_disabled(
    conn: Connection, user_id: uuid.UUID, actor: str, disabled: bool, now: datetime | None
) -> User:
    at = _now(now)
    async with conn.transaction():
        row = await _locked_user(conn, user_id)
        updated = await conn.fetchrow(
            f"UPDATE users SET disabled = $2, updated_at = $3 WHERE user_id = $1"  # noqa: S608
            f" RETURNING {_USER_COLUMNS}",
            user_id,
            disabled,
            at,
        )
        assert updated is not None  # noqa: S101 - the row is locked
        details: dict[str, object] = {"user_id": str(user_id)}
        if disabled:
            details["sessions_ended"] = await end_user_sessions(
                conn=conn, user_id=user_id, now=at, reason="user disabled"
            )
        await audit.record(
            conn=conn,
            actor=actor,
            action="user.disable" if disabled else "user.enable",
            subject=f"user:{row['username']}",
            details=details,
        )
    return user_from_row(updated)


async def disable_user(
    *, conn: Connection, user_id: uuid.UUID, actor: str, now: datetime | None = None
) -> User:
    """Stop a user from logging in and end their sessions at once; audited."""
    return await _set_disabled(conn, user_id, actor, True, now)


async def enable_user(
    *, conn: Connection, user_id: uuid.UUID, actor: str, now: datetime | None = None
) -> User:
    """Let a disabled user log in again; audited."""
    return await _set_disabled(conn, user_id, actor, False, now)


# --- TOTP -------------------------------------------------------------------


async def enroll_totp(*, conn: Connection, user_id: uuid.UUID, actor: str, box: SecretBox) -> str:
    """Give a user a new TOTP secret; return its otpauth:// URI (shown once); audited.

    The secret counts only once ``confirm_totp`` has seen a code from it;
    until then the user logs in without one (and a previous secret is gone).
    """
    secret = totp.new_secret()
    async with conn.transaction():
        row = await _locked_user(conn, user_id)
        await conn.execute(
            "UPDATE users SET totp_secret = $2, totp_enabled = false, totp_last_step = 0,"
            " updated_at = now() WHERE user_id = $1",
            user_id,
            box.seal(secret.encode(), context=totp.context(user_id)),
        )
        await audit.record(
            conn=conn,
            actor=actor,
            action="user.totp_enroll",
            subject=f"user:{row['username']}",
            details={"user_id": str(user_id)},
        )
    return totp.provisioning_uri(secret, username=row["username"])


def _open_secret(box: SecretBox, row: asyncpg.Record) -> str:
    try:
        return box.open(bytes(row["totp_secret"]), context=totp.context(row["user_id"])).decode()
    except SecretError as error:
        raise UserError(
            "totp", f"TOTP 密钥无法打开 the TOTP secret does not open: {error}"
        ) from None


async def confirm_totp(
    *,
    conn: Connection,
    user_id: uuid.UUID,
    code: str,
    actor: str,
    box: SecretBox,
    now: datetime | None = None,
) -> None:
    """Turn TOTP on for a user once ``code`` shows their authenticator has the secret; audited."""
    at = _now(now)
    async with conn.transaction():
        row = await _locked_user(conn, user_id)
        if row["totp_secret"] is None:
            raise UserError(
                "totp", f"{row['username']} 未登记 TOTP has no TOTP secret: enroll first"
            )
        step = totp.matching_step(_open_secret(box, row), code, now=at, after=0)
        if step is None:
            raise UserError(
                "totp", "动态码错误 the code does not match (is the phone's clock right?)"
            )
        await conn.execute(
            "UPDATE users SET totp_enabled = true, totp_last_step = $2, updated_at = $3"
            " WHERE user_id = $1",
            user_id,
            step,
            at,
        )
        await audit.record(
            conn=conn,
            actor=actor,
            action="user.totp_confirm",
            subject=f"user:{row['username']}",
            details={"user_id": str(user_id)},
        )


async def remove_totp(*, conn: Connection, user_id: uuid.UUID, actor: str) -> None:
    """Turn TOTP off for a user (a lost phone) and forget the secret; audited."""
    async with conn.transaction():
        row = await _locked_user(conn, user_id)
        await conn.execute(
            "UPDATE users SET totp_secret = NULL, totp_enabled = false, totp_last_step = 0,"
            " updated_at = now() WHERE user_id = $1",
            user_id,
        )
        await audit.record(
            conn=conn,
            actor=actor,
            action="user.totp_remove",
            subject=f"user:{row['username']}",
            details={"user_id": str(user_id)},
        )


# --- logging in ---------------------------------------------------------------


def locked_until(
    failures: Sequence[datetime],
    now: datetime,
    *,
    limit: int,
    window: timedelta,
    lockout: timedelta,
) -> datetime | None:
    """When a lock ends if ``failures`` (counted ones) lock now: ``limit`` within ``window``."""
    ordered = sorted(failures)
    end: datetime | None = None
    for i in range(limit - 1, len(ordered)):
        if ordered[i] - ordered[i - limit + 1] < window:
            candidate = ordered[i] + lockout
            if candidate > now and (end is None or candidate > end):
                end = candidate
    return end


async def _lock_end(
    conn: Connection, username: str, peer: str, now: datetime, limit: RateLimit
) -> datetime | None:
    since = now - limit.window - limit.lockout
    by_name = await conn.fetch(
        "SELECT f.at FROM login_failures f WHERE f.username = $1 AND f.at > $2 AND f.at <= $3"
        " AND f.reason <> 'locked' AND f.at > coalesce("
        "  (SELECT u.last_login_at FROM users u WHERE u.username = $1), '-infinity')",
        username,
        since,
        now,
    )
    ends = [
        locked_until(
            [r["at"] for r in by_name],
            now,
            limit=limit.per_username,
            window=limit.window,
            lockout=limit.lockout,
        )
    ]
    if peer != _NO_PEER:
        by_peer = await conn.fetch(
            "SELECT at FROM login_failures WHERE peer = $1 AND at > $2 AND at <= $3"
            " AND reason <> 'locked'",
            peer,
            since,
            now,
        )
        ends.append(
            locked_until(
                [r["at"] for r in by_peer],
                now,
                limit=limit.per_peer,
                window=limit.window,
                lockout=limit.lockout,
            )
        )
    found = [e for e in ends if e is not None]
    return max(found) if found else None


async def _fail(conn: Connection, username: str, peer: str, now: datetime, reason: str) -> None:
    await conn.execute(
        "INSERT INTO login_failures (at, username, peer, reason) VALUES ($1, $2, $3, $4)",
        now,
        username,
        peer,
        reason,
    )


_BAD_CREDENTIALS = "用户名或密码错误 wrong username or password"


async def authenticate(
    *,
    conn: Connection,
    username: str,
    password: str,
    totp_code: str | None,
    peer: str | None,
    now: datetime,
    box: SecretBox | None = None,
    rate_limit: RateLimit = DEFAULT_RATE_LIMIT,
    hasher: PasswordHasher = passwords.DEFAULT_HASHER,
) -> User:
    """Check a login; return the user, or raise ``LoginRefused`` naming the rule.

    ``box`` (``totp.totp_box(settings.master_key)``) opens TOTP secrets: without
    it a user with TOTP is refused, never let in without a code. ``hasher``
    gives the parameters of the dummy hash unknown usernames are checked
    against: the ones stored hashes are made with.
    """
    if conn.is_in_transaction():
        raise RuntimeError(
            "authenticate records failed logins: call it outside a transaction, whose "
            "rollback on refusal would erase them (and with them the rate limit)"
        )
    name = normal_username(username)[:64]
    address = (peer or _NO_PEER)[:128]
    end = await _lock_end(conn, name, address, now, rate_limit)
    if end is not None:
        await _fail(conn, name, address, now, "locked")
        until = end.astimezone(BEIJING).strftime("%H:%M:%S")
        raise LoginRefused(
            "locked",
            f"登录失败次数过多，请于 {until} (北京时间) 后再试 too many failed logins: "
            f"try again after {until} Beijing time",
        )
    # Made (once per process) before the lookup, so that whoever comes first pays for it.
    dummy = await asyncio.to_thread(
        _dummy_hash, hasher.time_cost, hasher.memory_cost, hasher.parallelism
    )
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS}, password_hash, totp_secret, totp_last_step"  # noqa: S608
        " FROM users WHERE username = $1",
        name,
    )
    if row is None:
        await _verify(dummy, password)
        await _fail(conn, name, address, now, "password")
        raise LoginRefused("credentials", _BAD_CREDENTIALS)
    if not await _verify(row["password_hash"], password):
        await _fail(conn, name, address, now, "password")
        raise LoginRefused("credentials", _BAD_CREDENTIALS)
    user = user_from_row(row)
    if user.disabled:
        raise LoginRefused("disabled", f"用户已停用 user {name} is disabled")
    step: int | None = None
    if user.totp_enabled:
        if not totp_code:
            raise LoginRefused("totp_required", "请输入动态码 enter the code of your authenticator")
        if box is None:
            raise LoginRefused(
                "totp", "服务器未配置动态码校验 the server cannot check codes (no TOTP key)"
            )
        try:
            secret = _open_secret(box, row)
        except UserError as error:
            raise LoginRefused("totp", error.message) from None
        step = totp.matching_step(secret, totp_code, now=now, after=row["totp_last_step"])
        if step is None:
            await _fail(conn, name, address, now, "totp")
            raise LoginRefused("totp", "动态码错误或已用过 wrong or already used code")
    # The step guard makes a code's second use lose even against a concurrent login.
    result = await conn.execute(
        "UPDATE users SET last_login_at = $2, totp_last_step = greatest(totp_last_step, $3)"
        " WHERE user_id = $1 AND ($3 = 0 OR totp_last_step < $3)",
        user.user_id,
        now,
        step or 0,
    )
    if result.endswith(" 0"):
        await _fail(conn, name, address, now, "totp")
        raise LoginRefused("totp", "动态码错误或已用过 wrong or already used code")
    return user
