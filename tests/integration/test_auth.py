"""arc.auth against a real PostgreSQL: users, logins and their rate limit, sessions, TOTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import asyncpg
import pytest
import pytest_asyncio
from argon2 import PasswordHasher

from arc import db
from arc.auth import service, sessions, totp
from arc.auth.models import Role, User
from arc.auth.passwords import WeakPassword
from arc.auth.service import LoginRefused, RateLimit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record]"
# Cheap parameters for tests only, passed explicitly: production keeps the defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
PASSWORD = "Correct horse 42"
BOX = totp.totp_box("test-master-key")


@pytest_asyncio.fixture
async def conn(database_url: str) -> AsyncIterator[Conn]:
    connection = await asyncpg.connect(database_url, timeout=10)
    await db.migrate(conn=connection)
    try:
        yield connection
    finally:
        await connection.close()


async def add(conn: Conn, name: str, role: Role = Role.OPERATOR) -> User:
    return await service.add_user(
        conn=conn,
        username=name,
        display_name=name.title(),
        role=role,
        password=PASSWORD,
        actor="test",
        hasher=FAST,
        now=NOW,
    )


async def login(
    conn: Conn,
    name: str,
    password: str = PASSWORD,
    *,
    at: datetime = NOW,
    peer: str | None = "192.0.2.1",
    code: str | None = None,
    limit: RateLimit = service.DEFAULT_RATE_LIMIT,
) -> User:
    return await service.authenticate(
        conn=conn,
        username=name,
        password=password,
        totp_code=code,
        peer=peer,
        now=at,
        box=BOX,
        rate_limit=limit,
        hasher=FAST,
    )


@pytest.mark.asyncio
async def test_users_are_added_listed_and_audited_without_secrets(conn: Conn) -> None:
    alice = await add(conn, "Alice")
    assert (alice.username, alice.role, alice.disabled, alice.totp_enabled) == (
        "alice",
        Role.OPERATOR,
        False,
        False,
    )
    assert await service.get_user(conn=conn, user_id=alice.user_id) == alice
    assert await service.get_user_by_name(conn=conn, username="ALICE") == alice
    assert [u.username for u in await service.list_users(conn=conn)] == ["alice"]
    with pytest.raises(service.UserExists):
        await add(conn, "alice")
    with pytest.raises(WeakPassword) as weak:
        await service.add_user(
            conn=conn,
            username="bob",
            display_name="",
            role="operator",
            password="short",
            actor="t",
            hasher=FAST,
        )
    assert weak.value.rule == "length"
    with pytest.raises(service.UserError) as bad_role:
        await service.add_user(
            conn=conn,
            username="bob",
            display_name="",
            role="root",
            password=PASSWORD,
            actor="t",
            hasher=FAST,
        )
    assert bad_role.value.rule == "role"
    stored = await conn.fetchval("SELECT password_hash FROM users")
    assert stored.startswith("$argon2id$")
    audit = await conn.fetch("SELECT action, details::text AS d FROM audit_log ORDER BY chain_seq")
    assert [r["action"] for r in audit] == ["user.add"]
    assert PASSWORD not in audit[0]["d"] and stored not in audit[0]["d"]


@pytest.mark.asyncio
async def test_wrong_password_and_unknown_user_look_the_same(conn: Conn) -> None:
    await add(conn, "alice")
    assert (await login(conn, "alice")).username == "alice"
    refusals = []
    for name, password in (("alice", "wrong password 1"), ("nobody", "wrong password 1")):
        started = time.monotonic()
        with pytest.raises(LoginRefused) as refused:
            await login(conn, name, password)
        refusals.append((refused.value.rule, str(refused.value), time.monotonic() - started))
    assert refusals[0][:2] == refusals[1][:2] == ("credentials", service._BAD_CREDENTIALS)
    # Both did one argon2 verification; with the cheap test hasher both are quick.
    assert all(seconds < 2.0 for _, _, seconds in refusals)
    reasons = await conn.fetch("SELECT username, reason FROM login_failures ORDER BY username")
    assert [(r["username"], r["reason"]) for r in reasons] == [
        ("alice", "password"),
        ("nobody", "password"),
    ]


@pytest.mark.asyncio
async def test_failed_logins_lock_the_username_then_expire(conn: Conn) -> None:
    await add(conn, "alice")
    started = time.monotonic()
    for i in range(5):
        with pytest.raises(LoginRefused) as refused:
            await login(conn, "alice", "not the password", at=NOW + timedelta(seconds=i))
        assert refused.value.rule == "credentials"
    # Locked now, even with the right password, for 15 minutes after the 5th failure.
    with pytest.raises(LoginRefused) as locked:
        await login(conn, "alice", at=NOW + timedelta(minutes=1))
    assert locked.value.rule == "locked"
    assert "09:15:04" in str(locked.value)  # Beijing time of the end
    # Trying on while locked does not extend the lock.
    for i in range(10):
        with pytest.raises(LoginRefused):
            await login(conn, "alice", at=NOW + timedelta(minutes=2, seconds=i))
    assert (await login(conn, "alice", at=NOW + timedelta(minutes=15, seconds=5))).username
    # A success clears the username's count.
    for i in range(4):
        with pytest.raises(LoginRefused):
            await login(conn, "alice", "nope nope nope", at=NOW + timedelta(minutes=16, seconds=i))
    assert await login(conn, "alice", at=NOW + timedelta(minutes=17))
    # Hard bound: 20 refusals and 3 logins, each one cheap argon2 run and a few queries.
    assert time.monotonic() - started < 10


@pytest.mark.asyncio
async def test_failed_logins_lock_the_address(conn: Conn) -> None:
    await add(conn, "alice")
    limit = RateLimit(per_username=100, per_peer=3)
    for i in range(3):
        with pytest.raises(LoginRefused):
            await login(conn, f"guess{i}", "x" * 12, peer="198.51.100.9", limit=limit)
    with pytest.raises(LoginRefused) as locked:
        await login(conn, "alice", peer="198.51.100.9", limit=limit)
    assert locked.value.rule == "locked"
    assert await login(conn, "alice", peer="192.0.2.1", limit=limit)


@pytest.mark.asyncio
async def test_authenticate_refuses_to_run_inside_a_transaction(conn: Conn) -> None:
    async with conn.transaction():
        with pytest.raises(RuntimeError, match="outside a transaction"):
            await login(conn, "alice")


@pytest.mark.asyncio
async def test_disabled_user_cannot_log_in_and_loses_sessions(conn: Conn) -> None:
    alice = await add(conn, "alice")
    token, _ = await sessions.create_session(conn=conn, user=alice, now=NOW)
    await service.disable_user(conn=conn, user_id=alice.user_id, actor="test", now=NOW)
    assert await sessions.load_session(conn=conn, token=token, now=NOW) is None
    with pytest.raises(LoginRefused) as refused:
        await login(conn, "alice")
    assert refused.value.rule == "disabled"
    await service.enable_user(conn=conn, user_id=alice.user_id, actor="test")
    assert await login(conn, "alice")
    # Re-enabled, the old session stays ended.
    assert await sessions.load_session(conn=conn, token=token, now=NOW) is None


@pytest.mark.asyncio
async def test_sessions_expire_idle_and_cannot_be_replayed_after_logout(conn: Conn) -> None:
    alice = await add(conn, "alice")
    token, session = await sessions.create_session(
        conn=conn, user=alice, now=NOW, ttl=timedelta(hours=1), idle=timedelta(minutes=30)
    )
    assert session.user == alice and session.expires_at == NOW + timedelta(hours=1)
    stored = await conn.fetchval("SELECT token_hash FROM sessions")
    assert stored == sessions.token_hash(token) and token.encode() not in stored
    loaded = await sessions.load_session(conn=conn, token=token, now=NOW + timedelta(minutes=20))
    assert loaded is not None and loaded.csrf_token == session.csrf_token
    assert sessions.csrf_ok(loaded, session.csrf_token)
    assert not sessions.csrf_ok(loaded, None) and not sessions.csrf_ok(loaded, "forged")
    # Sliding: 20 + 25 minutes is within 30 of the last use.
    assert await sessions.load_session(conn=conn, token=token, now=NOW + timedelta(minutes=45))
    # Idle: 32 minutes after the last use.
    assert (
        await sessions.load_session(conn=conn, token=token, now=NOW + timedelta(minutes=77)) is None
    )
    assert await sessions.load_session(conn=conn, token="", now=NOW) is None
    assert await sessions.load_session(conn=conn, token="unknown", now=NOW) is None

    token2, _ = await sessions.create_session(
        conn=conn, user=alice, now=NOW, ttl=timedelta(hours=1), idle=timedelta(minutes=30)
    )
    assert await sessions.load_session(conn=conn, token=token2, now=NOW + timedelta(minutes=29))
    assert (
        await sessions.load_session(conn=conn, token=token2, now=NOW + timedelta(minutes=62))
        is None
    )

    token3, _ = await sessions.create_session(conn=conn, user=alice, now=NOW)
    await sessions.end_session(conn=conn, token=token3, now=NOW + timedelta(minutes=1))
    assert (
        await sessions.load_session(conn=conn, token=token3, now=NOW + timedelta(minutes=2)) is None
    )
    # Not even the owner can revive it: the trigger refuses.
    with pytest.raises(asyncpg.RestrictViolationError):
        await conn.execute("UPDATE sessions SET revoked_at = NULL, revoked_reason = NULL")
    await sessions.end_session(conn=conn, token=token3, now=NOW)  # again: no error


@pytest.mark.asyncio
async def test_absolute_lifetime_ends_a_busy_session(conn: Conn) -> None:
    alice = await add(conn, "alice")
    token, _ = await sessions.create_session(conn=conn, user=alice, now=NOW, ttl=timedelta(hours=1))
    for minutes in range(10, 60, 10):
        assert await sessions.load_session(
            conn=conn, token=token, now=NOW + timedelta(minutes=minutes)
        )
    assert await sessions.load_session(conn=conn, token=token, now=NOW + timedelta(hours=1)) is None


@pytest.mark.asyncio
async def test_password_change_ends_sessions(conn: Conn) -> None:
    alice = await add(conn, "alice")
    token, _ = await sessions.create_session(conn=conn, user=alice, now=NOW)
    await service.set_password(
        conn=conn, user_id=alice.user_id, password="Another secret 7", actor="t", hasher=FAST
    )
    assert await sessions.load_session(conn=conn, token=token, now=NOW) is None
    with pytest.raises(LoginRefused):
        await login(conn, "alice")
    assert await login(conn, "alice", "Another secret 7")


@pytest.mark.asyncio
async def test_totp_enrol_confirm_login_and_no_code_reuse(conn: Conn) -> None:
    boss = await add(conn, "boss", Role.SUPERVISOR)
    uri = await service.enroll_totp(conn=conn, user_id=boss.user_id, actor="t", box=BOX)
    assert uri.startswith("otpauth://totp/") and "boss" in uri
    secret = uri.split("secret=")[1].split("&")[0]
    sealed = await conn.fetchval("SELECT totp_secret FROM users")
    assert secret.encode() not in sealed
    # Pending: login still works without a code until confirmed.
    assert not (await login(conn, "boss")).totp_enabled
    with pytest.raises(service.UserError):
        await service.confirm_totp(
            conn=conn, user_id=boss.user_id, code="000000", actor="t", box=BOX, now=NOW
        )
    await service.confirm_totp(
        conn=conn,
        user_id=boss.user_id,
        code=totp.code_at(secret, NOW),
        actor="t",
        box=BOX,
        now=NOW,
    )
    later = NOW + timedelta(minutes=5)
    with pytest.raises(LoginRefused) as required:
        await login(conn, "boss", at=later)
    assert required.value.rule == "totp_required"
    code = totp.code_at(secret, later)
    with pytest.raises(LoginRefused) as wrong:
        await login(conn, "boss", at=later, code=f"{(int(code) + 1) % 1_000_000:06d}")
    assert wrong.value.rule == "totp"
    assert (await login(conn, "boss", at=later, code=code)).totp_enabled
    with pytest.raises(LoginRefused) as replayed:
        await login(conn, "boss", at=later + timedelta(seconds=5), code=code)
    assert replayed.value.rule == "totp"
    # Without the box, refused rather than let in.
    with pytest.raises(LoginRefused):
        await service.authenticate(
            conn=conn,
            username="boss",
            password=PASSWORD,
            totp_code=totp.code_at(secret, later + timedelta(minutes=2)),
            peer=None,
            now=later + timedelta(minutes=2),
            hasher=FAST,
        )
    await service.remove_totp(conn=conn, user_id=boss.user_id, actor="t")
    assert not (await login(conn, "boss", at=later + timedelta(minutes=3))).totp_enabled
    actions = [r["action"] for r in await conn.fetch("SELECT action FROM audit_log")]
    assert actions == ["user.add", "user.totp_enroll", "user.totp_confirm", "user.totp_remove"]


@pytest.mark.asyncio
async def test_guard_links_to_a_patrol_staff_row(conn: Conn) -> None:
    with pytest.raises(service.UserError) as missing:
        await service.add_user(
            conn=conn,
            username="guard",
            display_name="",
            role=Role.GUARD,
            password=PASSWORD,
            actor="t",
            staff_id=uuid.uuid4(),
            hasher=FAST,
        )
    assert missing.value.rule == "staff"


@pytest.mark.asyncio
async def test_concurrent_logins_are_independent(conn: Conn, database_url: str) -> None:
    await add(conn, "alice")
    others = [await asyncpg.connect(database_url, timeout=10) for _ in range(3)]
    try:
        users = await asyncio.gather(*(login(c, "alice") for c in others))
    finally:
        for c in others:
            await c.close()
    assert {u.username for u in users} == {"alice"}


@pytest.mark.asyncio
async def test_demo_users_are_seeded_once_and_their_logins_kept(conn: Conn, tmp_path) -> None:
    from arc.auth.demo import seed_demo_users
    from arc.demo import demo_staff
    from arc.guards import service as staff_service

    for member in demo_staff()[:2]:  # two qualified patrol guards
        await staff_service.add_staff(conn=conn, staff=member, actor="test")
    first = await seed_demo_users(conn=conn, data_dir=tmp_path)
    path = tmp_path / "demo-logins.txt"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [line.split(" / ")[0] for line in first] == [
        f"demo: console login {name}"
        for name in ("operator", "supervisor", "admin", "auditor", "guard", "guard2")
    ]
    assert first[0].endswith("(zh: 值守员)")
    again = await seed_demo_users(conn=conn, data_dir=tmp_path)
    assert again == first
    users = {u.username: u for u in await service.list_users(conn=conn)}
    assert users["guard"].role is Role.GUARD and users["guard"].staff_id is not None
    # The demo beat's day and night guards: one of them is on shift at any hour.
    assert users["guard2"].staff_id not in (None, users["guard"].staff_id)
    password = first[0].split(" / ")[1].split(" ")[0]
    assert (
        await service.authenticate(
            conn=conn,
            username="operator",
            password=password,
            totp_code=None,
            peer=None,
            now=datetime.now(UTC),
        )
    ).role is Role.OPERATOR
    path.unlink()
    renewed = await seed_demo_users(conn=conn, data_dir=tmp_path)
    assert renewed != first and path.exists()
