"""Console sessions: a secret cookie token, its SHA-256 in ``sessions``, and a CSRF token.

Theory of operation. ``create_session`` returns a random token (256 bits) for
the cookie; the database keeps only its SHA-256, so a copy of the table opens
no session. A session ends at the first of:

- ``expires_at``: the absolute lifetime given at login (``ttl``, 12 h by
  default: one duty shift), however busy the session is;
- the idle timeout: ``idle`` (30 min by default) without a request. It
  slides: each ``load_session`` moves ``last_seen_at`` (written at most once a
  minute, ``_TOUCH_EVERY``, so that a page polling every second does not
  write every second; the idle end is therefore exact to within that minute);
- ``end_session`` (logout), a password change or the user being disabled:
  ``revoked_at`` is set, and a trigger (migration 0008) refuses to clear it,
  so a token used after logout never loads again, whoever replays it.

The CSRF token is derived from the cookie token, HMAC-SHA256(token,
"arc/csrf/v1"): the page gets it in its HTML, a cross-site attacker can
neither read it nor compute it without the cookie, and nothing more is stored.
Forms and fetches send it back in a header or field; ``csrf_ok`` compares in
constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from arc.auth.models import Role, User
from arc.db import Connection

DEFAULT_TTL = timedelta(hours=12)
IDLE_TIMEOUT = timedelta(minutes=30)
_TOUCH_EVERY = timedelta(minutes=1)
_CSRF_LABEL = b"arc/csrf/v1"
TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class Session:
    """A live session, as ``load_session`` finds it."""

    session_id: uuid.UUID
    user: User
    csrf_token: str
    created_at: datetime
    expires_at: datetime


def token_hash(token: str) -> bytes:
    """What the database stores of a cookie token."""
    return hashlib.sha256(token.encode()).digest()


def csrf_token_for(token: str) -> str:
    """The CSRF token that belongs to a cookie token."""
    mac = hmac.new(token.encode(), _CSRF_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_ok(session: Session, presented: str | None) -> bool:
    """Whether ``presented`` is the session's CSRF token (constant-time comparison)."""
    if not presented:
        return False
    return hmac.compare_digest(session.csrf_token.encode(), presented.encode())


def user_from_row(row: asyncpg.Record) -> User:
    """A ``User`` from a row of ``users`` (or a join that has its columns)."""
    return User(
        user_id=row["user_id"],
        username=row["username"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        staff_id=row["staff_id"],
        totp_enabled=row["totp_enabled"],
        disabled=row["disabled"],
    )


async def create_session(
    *,
    conn: Connection,
    user: User,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
    idle: timedelta = IDLE_TIMEOUT,
    peer: str | None = None,
) -> tuple[str, Session]:
    """Start a session for ``user``; return the cookie token (shown once) and the session."""
    if user.disabled:
        raise ValueError(f"user {user.username} is disabled: no session")
    if ttl <= timedelta(0) or idle <= timedelta(0):
        raise ValueError("a session needs a positive lifetime and idle timeout")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session_id = uuid.uuid4()
    expires_at = now + ttl
    await conn.execute(
        "INSERT INTO sessions (session_id, token_hash, user_id, created_at, expires_at,"
        " idle_seconds, last_seen_at, peer) VALUES ($1, $2, $3, $4, $5, $6, $4, $7)",
        session_id,
        token_hash(token),
        user.user_id,
        now,
        expires_at,
        max(1, int(idle.total_seconds())),
        peer,
    )
    return token, Session(session_id, user, csrf_token_for(token), now, expires_at)


async def load_session(*, conn: Connection, token: str, now: datetime) -> Session | None:
    """The live session of a cookie token; None if unknown, expired, idle, ended or disabled."""
    if not token or len(token) > 256:
        return None
    row = await conn.fetchrow(
        "SELECT s.session_id, s.created_at, s.expires_at, s.idle_seconds, s.last_seen_at,"
        " s.revoked_at, u.user_id, u.username, u.display_name, u.role, u.staff_id,"
        " u.totp_enabled, u.disabled"
        " FROM sessions s JOIN users u USING (user_id) WHERE s.token_hash = $1",
        token_hash(token),
    )
    if row is None or row["revoked_at"] is not None or row["disabled"]:
        return None
    if now >= row["expires_at"]:
        return None
    if now >= row["last_seen_at"] + timedelta(seconds=row["idle_seconds"]):
        return None
    if now - row["last_seen_at"] >= _TOUCH_EVERY:
        # Guarded in SQL too: a logout committed meanwhile is not undone.
        await conn.execute(
            "UPDATE sessions SET last_seen_at = $2 WHERE session_id = $1 AND revoked_at IS NULL",
            row["session_id"],
            now,
        )
    return Session(
        row["session_id"],
        user_from_row(row),
        csrf_token_for(token),
        row["created_at"],
        row["expires_at"],
    )


async def end_session(*, conn: Connection, token: str, now: datetime) -> None:
    """End the session of ``token`` for good (logout); an unknown token is no error."""
    await conn.execute(
        "UPDATE sessions SET revoked_at = $2, revoked_reason = 'logout'"
        " WHERE token_hash = $1 AND revoked_at IS NULL",
        token_hash(token),
        now,
    )


async def end_user_sessions(
    *, conn: Connection, user_id: uuid.UUID, now: datetime, reason: str
) -> int:
    """End every live session of a user (password changed, disabled); return how many."""
    result = await conn.execute(
        "UPDATE sessions SET revoked_at = $2, revoked_reason = $3"
        " WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
        now,
        reason,
    )
    return int(result.split()[-1])
