"""Grants and the access audit against a real PostgreSQL: R5's workflow, chain, privileges."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import asyncpg
import orjson
import pytest
import pytest_asyncio
from argon2 import PasswordHasher

from arc import chain, db
from arc.auth import access, grants, service, sessions
from arc.auth.grants import GrantRefused, GrantStatus
from arc.auth.models import Permission, Role, User
from arc.integrity import verify
from arc.runtime import APP_ROLE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record]"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def conn(database_url: str) -> AsyncIterator[Conn]:
    connection = await asyncpg.connect(database_url, timeout=10)
    await db.migrate(conn=connection)
    try:
        yield connection
    finally:
        await connection.close()


async def add(conn: Conn, name: str, role: Role) -> User:
    return await service.add_user(
        conn=conn,
        username=name,
        display_name=name,
        role=role,
        password="Password for tests 1",
        actor="test",
        hasher=FAST,
    )


@pytest.mark.asyncio
async def test_grant_lifecycle_and_expiry_by_time(conn: Conn) -> None:
    op = await add(conn, "op", Role.OPERATOR)
    boss = await add(conn, "boss", Role.SUPERVISOR)
    admin = await add(conn, "admin", Role.ADMIN)
    admin2 = await add(conn, "admin2", Role.ADMIN)
    before = await grants.effective_permissions(conn=conn, user=op, now=NOW)
    assert Permission.RECORDS_EXPORT not in before

    grant = await grants.apply_grant(
        conn=conn,
        user_id=op.user_id,
        permission=Permission.RECORDS_EXPORT,
        scope="*",
        reason="公安机关调取 2026-12-01 记录",
        valid_days=2,
        actor=boss,
        now=NOW,
    )
    assert grant.status is GrantStatus.APPLIED and grant.applied_by == "boss"
    # Nobody approves for themselves or their own application; operators not at all.
    for who in (op, boss):
        with pytest.raises(GrantRefused):
            await grants.approve_grant(
                conn=conn, grant_id=grant.grant_id, actor=who, reason="ok", now=NOW
            )
    with pytest.raises(GrantRefused) as early:
        await grants.issue_grant(conn=conn, grant_id=grant.grant_id, actor=admin, now=NOW)
    assert early.value.rule == "state"
    await grants.approve_grant(
        conn=conn, grant_id=grant.grant_id, actor=admin, reason="调取函已核验", now=NOW
    )
    assert not await grants.allowed(
        conn=conn, user=op, permission=Permission.RECORDS_EXPORT, scope="*", now=NOW
    )
    issued = await grants.issue_grant(
        conn=conn, grant_id=grant.grant_id, actor=admin2, now=NOW + timedelta(hours=1)
    )
    assert issued.valid_until == NOW + timedelta(hours=1, days=2)
    during = await grants.effective_permissions(conn=conn, user=op, now=NOW + timedelta(days=1))
    assert during == before | {Permission.RECORDS_EXPORT}
    # Expired by time alone: no job, no state change.
    after = NOW + timedelta(days=2, hours=1)
    assert await grants.effective_permissions(conn=conn, user=op, now=after) == before
    assert (await grants.get_grant(conn=conn, grant_id=grant.grant_id)).state(after) == "expired"  # type: ignore[union-attr]
    with pytest.raises(GrantRefused) as expired:
        await grants.change_grant(
            conn=conn, grant_id=grant.grant_id, actor=admin, reason="more", valid_days=5, now=after
        )
    assert expired.value.rule == "expired"
    # Changed while in force: a narrower scope.
    changed = await grants.change_grant(
        conn=conn,
        grant_id=grant.grant_id,
        actor=admin,
        reason="只限账户 1234",
        scope="account:1234",
        now=NOW + timedelta(days=1),
    )
    assert changed.changes == 1
    at = NOW + timedelta(days=1, hours=1)
    assert Permission.RECORDS_EXPORT not in await grants.effective_permissions(
        conn=conn, user=op, now=at
    )
    assert await grants.allowed(
        conn=conn, user=op, permission=Permission.RECORDS_EXPORT, scope="account:1234", now=at
    )
    assert not await grants.allowed(
        conn=conn, user=op, permission=Permission.RECORDS_EXPORT, scope="account:5678", now=at
    )
    await grants.revoke_grant(
        conn=conn, grant_id=grant.grant_id, actor=op, reason="任务完成", now=at
    )
    assert not await grants.allowed(
        conn=conn, user=op, permission=Permission.RECORDS_EXPORT, scope="account:1234", now=at
    )
    with pytest.raises(GrantRefused):
        await grants.revoke_grant(
            conn=conn, grant_id=grant.grant_id, actor=admin, reason="again", now=at
        )
    steps = await conn.fetch(
        "SELECT actor, action FROM audit_log WHERE action LIKE 'grant.%' ORDER BY chain_seq"
    )
    assert [(r["actor"], r["action"]) for r in steps] == [
        ("boss", "grant.apply"),
        ("admin", "grant.approve"),
        ("admin2", "grant.issue"),
        ("admin", "grant.change"),
        ("op", "grant.revoke"),
    ]
    assert [g.grant_id for g in await grants.list_grants(conn=conn, user_id=op.user_id)] == [
        grant.grant_id
    ]


@pytest.mark.asyncio
async def test_grant_rules_refuse_escalation(conn: Conn) -> None:
    op = await add(conn, "op", Role.OPERATOR)
    op2 = await add(conn, "op2", Role.OPERATOR)
    admin = await add(conn, "admin", Role.ADMIN)
    apply = grants.apply_grant
    for permission, rule in (
        (Permission.GRANTS_APPROVE, "permission"),
        (Permission.USERS_MANAGE, "permission"),
        (Permission.QUEUE_READ, "redundant"),
        ("root", "permission"),
    ):
        with pytest.raises(GrantRefused) as refused:
            await apply(
                conn=conn,
                user_id=op.user_id,
                permission=permission,
                scope="*",
                reason="x",
                valid_days=1,
                actor=op,
            )
        assert refused.value.rule == rule
    with pytest.raises(GrantRefused) as other:
        await apply(
            conn=conn,
            user_id=op2.user_id,
            permission=Permission.RECORDS_EXPORT,
            scope="*",
            reason="x",
            valid_days=1,
            actor=op,
        )
    assert other.value.rule == "applicant"
    with pytest.raises(GrantRefused) as days:
        await apply(
            conn=conn,
            user_id=op.user_id,
            permission=Permission.RECORDS_EXPORT,
            scope="*",
            reason="x",
            valid_days=365,
            actor=op,
        )
    assert days.value.rule == "validity"
    own = await apply(
        conn=conn,
        user_id=admin.user_id,
        permission=Permission.QUEUE_READ,
        scope="*",
        reason="检查",
        valid_days=1,
        actor=admin,
    )
    with pytest.raises(GrantRefused) as separation:
        await grants.approve_grant(conn=conn, grant_id=own.grant_id, actor=admin, reason="ok")
    assert separation.value.rule == "separation"
    # A disabled approver is refused even with a User object from before.
    admin2 = await add(conn, "admin2", Role.ADMIN)
    await service.disable_user(conn=conn, user_id=admin2.user_id, actor="t")
    with pytest.raises(GrantRefused) as disabled:
        await grants.approve_grant(conn=conn, grant_id=own.grant_id, actor=admin2, reason="ok")
    assert disabled.value.rule == "disabled"
    rejected = await grants.reject_grant(
        conn=conn, grant_id=own.grant_id, actor=await add(conn, "a3", Role.ADMIN), reason="无需"
    )
    assert rejected.status is GrantStatus.REJECTED
    with pytest.raises(grants.GrantNotFound):
        await grants.issue_grant(conn=conn, grant_id=uuid.uuid4(), actor=admin)


async def read_incidents(conn: Conn, actor: str) -> uuid.UUID:
    async with conn.transaction():
        access_id = await access.record_access(
            conn=conn,
            actor=actor,
            role="operator",
            action="read",
            subject="queue",
            details={"filter": {"grade": [1, 2]}, "rows": 2},
            peer="192.0.2.7",
        )
        await conn.fetch("SELECT * FROM incidents")
    return access_id


@pytest.mark.asyncio
async def test_access_rows_are_chained_verified_and_tampering_found(conn: Conn) -> None:
    ids = [await read_incidents(conn, f"op{i}") for i in range(4)]
    rows = await conn.fetch("SELECT * FROM access_audit ORDER BY chain_seq")
    assert [r["access_id"] for r in rows] == ids
    assert [r["chain_seq"] for r in rows] == [1, 2, 3, 4]
    prev = chain.GENESIS
    for r in rows:
        assert bytes(r["prev_hash"]) == prev
        prev = chain.link(prev, chain.ACCESS_COLUMNS, r)
        assert bytes(r["hash"]) == prev
    head = await conn.fetchrow("SELECT chain_seq, chain_hash FROM access_audit_heads")
    assert (head["chain_seq"], bytes(head["chain_hash"])) == (4, prev)
    # A rollback of the read takes its row with it: no row for a read that did not happen.
    with pytest.raises(asyncpg.UndefinedTableError):
        async with conn.transaction():
            await access.record_access(
                conn=conn,
                actor="op9",
                role="operator",
                action="export",
                subject="x",
                details={},
                peer=None,
            )
            await conn.fetch("SELECT * FROM no_such_table")
    assert await conn.fetchval("SELECT count(*) FROM access_audit") == 4
    report = await verify(conn=conn)
    audit_chain = next(c for c in report.chains if c.table == "access_audit")
    assert audit_chain.intact and audit_chain.rows == 4

    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("UPDATE access_audit SET actor = 'nobody' WHERE chain_seq = 2")
    report = await verify(conn=conn)
    broken = next(c for c in report.chains if c.table == "access_audit")
    assert broken.first_break is not None
    assert (broken.first_break.chain_seq, broken.first_break.problem) == (
        2,
        "hash does not match its contents",
    )

    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("DELETE FROM access_audit WHERE chain_seq = 4")
    broken = next(c for c in (await verify(conn=conn)).chains if c.table == "access_audit")
    assert any("rows 4..4 are missing" in b.problem for b in broken.breaks)


@pytest.mark.asyncio
async def test_record_access_refuses_what_it_cannot_keep_safely(conn: Conn) -> None:
    with pytest.raises(access.AccessAuditError, match="transaction"):
        await access.record_access(
            conn=conn, actor="a", role="r", action="read", subject="s", details={}, peer=None
        )
    async with conn.transaction():
        for action, details in (
            ("delete", {}),
            ("read", {"password": "x"}),
            ("read", {"filter": {"session_token": "x"}}),
            ("read", {"key": "x"}),
        ):
            with pytest.raises(access.AccessAuditError):
                await access.record_access(
                    conn=conn,
                    actor="a",
                    role="r",
                    action=action,
                    subject="s",
                    details=details,
                    peer=None,
                )
    async with access.audited_read(
        conn=conn, actor="a", role="auditor", action="read", subject="s", details={}, peer=None
    ) as reader:
        assert await reader.fetchval("SELECT count(*) FROM access_audit") == 1


@pytest.mark.asyncio
async def test_arc_app_privileges_are_the_consoles_and_no_more(conn: Conn) -> None:
    op = await add(conn, "op", Role.OPERATOR)
    await read_incidents(conn, "op")
    await conn.execute(f"SET ROLE {APP_ROLE}")
    # What the console needs.
    assert [u.username for u in await service.list_users(conn=conn)] == ["op"]
    token, _ = await sessions.create_session(conn=conn, user=op, now=NOW)
    assert await sessions.load_session(conn=conn, token=token, now=NOW + timedelta(minutes=5))
    await sessions.end_session(conn=conn, token=token, now=NOW + timedelta(minutes=6))
    await read_incidents(conn, "op")
    assert await grants.list_grants(conn=conn) == []
    # Append-only for arc_app: no privilege, and the trigger behind it for every role.
    for sql in (
        "UPDATE access_audit SET actor = 'x'",
        "DELETE FROM access_audit",
        "TRUNCATE access_audit",
        "INSERT INTO users (user_id, username, display_name, role, password_hash,"
        " password_changed_at, created_at, updated_at)"
        " VALUES (gen_random_uuid(), 'evil', 'e', 'admin', '$argon2id$x', now(), now(), now())",
        "UPDATE users SET role = 'admin'",
        "UPDATE users SET password_hash = '$argon2id$x'",
        "UPDATE grants SET status = 'issued'",
        "INSERT INTO audit_log SELECT * FROM audit_log LIMIT 0",  # allowed: arc_app appends
    ):
        if sql.startswith("INSERT INTO audit_log"):
            await conn.execute(sql)
            continue
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(sql)
    await conn.execute("RESET ROLE")
    for sql in ("UPDATE access_audit SET actor = 'x'", "DELETE FROM access_audit"):
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await conn.execute(sql)
    with pytest.raises(asyncpg.RestrictViolationError):
        await conn.execute("TRUNCATE access_audit")
    partition = await conn.fetchval(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'access_audit'::regclass LIMIT 1"
    )
    with pytest.raises(asyncpg.RestrictViolationError):
        await conn.execute(f"TRUNCATE {partition}")


async def arc(database_url: str, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARC_")}
    env |= {"ARC_DATABASE_URL": database_url, "ARC_MASTER_KEY": "test-master-key"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arc.cli",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.asyncio
async def test_the_user_grant_and_access_audit_commands(database_url: str) -> None:
    secret = "Duty shift 2026!"
    code, out, err = await arc(
        database_url, "user", "add", "wang", "--role", "operator", "--name", "王值守",
        "--password-stdin", stdin=f"{secret}\n".encode(),
    )  # fmt: skip
    assert (code, out.strip()) == (0, "user wang added: operator (值守员)"), err
    code, _, err = await arc(
        database_url, "user", "add", "sun", "--role", "operator", "--password-stdin",
        stdin=b"short\n",
    )  # fmt: skip
    assert code == 1 and "password policy: length" in err
    code, out, err = await arc(database_url, "user", "list", "--json")
    assert code == 0 and secret not in out and "$argon2id$" not in out
    code, out, err = await arc(
        database_url, "grant", "apply", "--as", "wang", "--permission", "records.export",
        "--reason", "调取", "--days", "2", "--password-stdin", stdin=f"{secret}\n".encode(),
    )  # fmt: skip
    assert code == 0 and "applied for: wang records.export" in out, err
    grant_id = out.split()[1]
    code, _, err = await arc(
        database_url, "grant", "approve", grant_id, "--as", "wang", "--reason", "self",
        "--password-stdin", stdin=f"{secret}\n".encode(),
    )  # fmt: skip
    assert code == 1 and "REGULATION R5" in err
    code, out, _ = await arc(database_url, "access-audit", "--json")
    assert (code, out) == (0, "")
    code, out, _ = await arc(database_url, "access-audit", "--json")
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert [(r["subject"], r["details"]["rows"]) for r in rows] == [("access_audit", 0)]
    code, _, err = await arc(database_url, "user", "disable", "nobody")
    assert code == 1 and "no user" in err
