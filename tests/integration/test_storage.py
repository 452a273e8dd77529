"""The alarm log's storage (migration 0001): append-only for every role, day partitions."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from arc import audit, chain, db
from arc.integrity import verify
from tests.integration.conftest import Databases

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

BEIJING = timezone(timedelta(hours=8))
DAY = date(2026, 12, 2)
AT = datetime(2026, 12, 2, 9, 30, tzinfo=BEIJING)
RULE = "保安服务管理条例 第二十五条"
APPEND_ONLY = ("signal_log", "quarantine", "audit_log", "chain_digests")


def signal_row(*, shard: int = 0, seq: int = 1, at: datetime = AT) -> dict[str, Any]:
    return {
        "shard": shard,
        "chain_seq": seq,
        "signal_id": uuid.uuid4(),
        "received_at": at,
        "account": "1234",
        "protocol": "SIA-DCS",
        "transport": "tcp",
        "peer": "192.0.2.7:40000",
        "message_id": "SIA-DCS",
        "sequence": f"{seq:04d}",
        "receiver_no": None,
        "line_no": "L1",
        "encrypted": False,
        "qualifier": "E",
        "code": "BA",
        "cid_event": None,
        "event_class": "alarm",
        "zone": "001",
        "user_no": None,
        "partition_no": "1",
        "event_text": "Burglary alarm",
        "device_time": at - timedelta(seconds=2),
        "drift_seconds": 2.0,
        "drift_flagged": False,
        "xdata": [["M", "00:1A"]],
        "raw": b'\n9C1F0036"SIA-DCS"0001L1#1234[#1234|Nri1/BA001]\r',
        "dedup_key": hashlib.sha256(f"{shard}/{seq}".encode()).digest(),
        "kafka_offset": seq - 1,
    }


def quarantine_row(*, seq: int = 1, at: datetime = AT) -> dict[str, Any]:
    return {
        "shard": 0,
        "chain_seq": seq,
        "quarantine_id": uuid.uuid4(),
        "received_at": at,
        "transport": "udp",
        "peer": "198.51.100.1:9000",
        "protocol": None,
        "account": None,
        "response": "NAK",
        "reason": "CRC mismatch",
        "raw": b"\n0000garbage\r",
        "kafka_offset": seq - 1,
    }


async def insert(
    conn: asyncpg.Connection[asyncpg.Record],
    table: str,
    row: dict[str, Any],
    prev_hash: bytes = chain.GENESIS,
) -> bytes:
    """Insert one linked row (its day partition made first); return its hash."""
    columns = chain.COLUMNS[table]
    digest = chain.link(prev_hash, columns, row)
    values = [chain.json_text(row[c]) if c == "xdata" else row[c] for c in columns]
    names = ", ".join((*columns, "prev_hash", "hash"))
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 3))
    async with conn.transaction():
        await conn.execute("SELECT arc_ensure_day_partition($1, $2)", table, DAY)
        await conn.execute(
            f"INSERT INTO {table} ({names}) VALUES ({params})",  # noqa: S608
            *values,
            prev_hash,
            digest,
        )
    return digest


async def fill(dbs: Databases) -> None:
    """One row in each append-only table, written by arc_app."""
    await insert(dbs.app, "signal_log", signal_row())
    await insert(dbs.app, "quarantine", quarantine_row())
    async with dbs.app.transaction():
        await audit.record(
            conn=dbs.app, actor="test", action="account.add", subject="account:1234", details={}
        )
    await dbs.app.execute(
        "INSERT INTO chain_digests VALUES ($1, 'signal_log', 0, 1, $2, now(), $3, $4)",
        DAY,
        bytes(32),
        bytes(32),
        bytes(64),
    )


@pytest.mark.asyncio
async def test_arc_app_appends_and_reads(dbs: Databases) -> None:
    row = signal_row()
    digest = await insert(dbs.app, "signal_log", row)
    stored = await dbs.app.fetchrow(
        "SELECT * FROM signal_log WHERE signal_id = $1", row["signal_id"]
    )
    assert stored is not None
    assert stored["hash"] == digest == chain.link(chain.GENESIS, chain.SIGNAL_COLUMNS, stored)
    # It lands in its Beijing day's partition.
    where = await dbs.owner.fetchval(
        "SELECT tableoid::regclass::text FROM signal_log WHERE signal_id = $1", row["signal_id"]
    )
    assert where == "signal_log_20261202"
    await insert(dbs.app, "quarantine", quarantine_row())
    await dbs.app.execute(
        "INSERT INTO logwriter_state (topic, shard, next_offset, chain_seq, chain_hash)"
        " VALUES ('arc.signals', 0, 1, 1, $1)",
        digest,
    )
    await dbs.app.execute("UPDATE logwriter_state SET next_offset = 2")
    assert await dbs.app.fetchval("SELECT next_offset FROM logwriter_state") == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("table", APPEND_ONLY)
async def test_changes_are_refused_for_the_owner_by_the_rule(dbs: Databases, table: str) -> None:
    await fill(dbs)
    for statement, op in (
        (f"UPDATE {table} SET shard = shard", "UPDATE"),  # noqa: S608
        (f"DELETE FROM {table}", "DELETE"),  # noqa: S608
        (f"TRUNCATE {table}", "TRUNCATE"),
    ):
        with pytest.raises(asyncpg.RestrictViolationError) as caught:
            await dbs.owner.execute(statement)
        assert caught.value.message == f"{table} is append-only ({RULE}): {op} refused"
    assert await dbs.owner.fetchval(f"SELECT count(*) FROM {table}") == 1  # noqa: S608


@pytest.mark.asyncio
@pytest.mark.parametrize("table", ["signal_log", "quarantine"])
async def test_a_partition_refuses_changes_itself(dbs: Databases, table: str) -> None:
    await fill(dbs)
    partition = f"{table}_20261202"
    for statement, op in (
        (f"UPDATE {partition} SET shard = shard", "UPDATE"),  # noqa: S608
        (f"DELETE FROM {partition}", "DELETE"),  # noqa: S608
        (f"TRUNCATE {partition}", "TRUNCATE"),
    ):
        with pytest.raises(asyncpg.RestrictViolationError) as caught:
            await dbs.owner.execute(statement)
        # Named by its log, and the partition in the detail.
        assert caught.value.message == f"{table} is append-only ({RULE}): {op} refused"
        assert partition in (caught.value.detail or "")
        # arc_app has no privilege on the partition at all.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await dbs.app.execute(statement)
    assert await dbs.owner.fetchval(f"SELECT count(*) FROM {partition}") == 1  # noqa: S608


@pytest.mark.asyncio
@pytest.mark.parametrize("table", APPEND_ONLY)
async def test_arc_app_may_not_change_or_restructure(dbs: Databases, table: str) -> None:
    await fill(dbs)
    for statement in (
        f"UPDATE {table} SET shard = shard",  # noqa: S608
        f"DELETE FROM {table}",  # noqa: S608
        f"TRUNCATE {table}",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table} DISABLE TRIGGER USER",
        f"ALTER TABLE {table} ADD COLUMN note text",
        f"ALTER TABLE {table} RENAME TO {table}_old",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await dbs.app.execute(statement)
    if table in ("signal_log", "quarantine"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await dbs.app.execute(f"ALTER TABLE {table} DETACH PARTITION {table}_20261202")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await dbs.app.execute(f"DROP TABLE {table}_20261202")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await dbs.app.execute("CREATE TABLE public.mine (x int)")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await dbs.app.execute("DELETE FROM logwriter_state")
    assert await dbs.owner.fetchval(f"SELECT count(*) FROM {table}") == 1  # noqa: S608


@pytest.mark.asyncio
async def test_a_row_without_its_day_partition_fails_loudly(dbs: Databases) -> None:
    row = signal_row(at=datetime(2027, 1, 5, 12, tzinfo=UTC))
    values = [chain.json_text(row[c]) if c == "xdata" else row[c] for c in chain.SIGNAL_COLUMNS]
    names = ", ".join((*chain.SIGNAL_COLUMNS, "prev_hash", "hash"))
    params = ", ".join(f"${i}" for i in range(1, len(chain.SIGNAL_COLUMNS) + 3))
    with pytest.raises(asyncpg.CheckViolationError, match="no partition"):
        await dbs.app.execute(
            f"INSERT INTO signal_log ({names}) VALUES ({params})",  # noqa: S608
            *values,
            chain.GENESIS,
            chain.GENESIS,
        )


@pytest.mark.asyncio
async def test_day_partitions_follow_beijing_midnight(dbs: Databases) -> None:
    await dbs.app.execute("SELECT arc_ensure_day_partition('signal_log', $1)", DAY)
    bounds = await dbs.owner.fetchval(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'signal_log_20261202'"
    )
    assert bounds == "FOR VALUES FROM ('2026-12-01 16:00:00+00') TO ('2026-12-02 16:00:00+00')"
    await dbs.app.execute("SELECT arc_ensure_day_partition('signal_log', $1)", DAY - timedelta(1))
    midnight = datetime(2026, 12, 2, tzinfo=BEIJING)
    for at, partition in (
        (midnight, "signal_log_20261202"),
        (midnight - timedelta(microseconds=1), "signal_log_20261201"),
        (midnight + timedelta(hours=23, minutes=59, seconds=59), "signal_log_20261202"),
    ):
        row = signal_row(at=at)
        await insert(dbs.app, "signal_log", row)
        assert partition == await dbs.owner.fetchval(
            "SELECT tableoid::regclass::text FROM signal_log WHERE signal_id = $1",
            row["signal_id"],
        )
    # The caller's time zone and date style change nothing.
    await dbs.app.execute("SET TimeZone = 'America/New_York'; SET DateStyle = 'SQL, DMY'")
    await dbs.app.execute("SELECT arc_ensure_day_partition('quarantine', $1)", DAY)
    bounds = await dbs.owner.fetchval(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'quarantine_20261202'"
    )
    assert bounds == "FOR VALUES FROM ('2026-12-01 16:00:00+00') TO ('2026-12-02 16:00:00+00')"


@pytest.mark.asyncio
async def test_ensure_day_partition_is_idempotent_and_safe_concurrently(
    dbs: Databases,
) -> None:
    conns = [await asyncpg.connect(dbs.app_dsn, timeout=10) for _ in range(6)]
    try:
        for _ in range(2):
            # Several days at once, each asked for by every connection.
            await asyncio.gather(
                *(_ensure_days(c, [DAY + timedelta(d) for d in range(4)]) for c in conns)
            )
    finally:
        for c in conns:
            await c.close()
    names = await dbs.owner.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'signal_log'::regclass AND c.relkind = 'r' ORDER BY 1"
    )
    assert [r["relname"] for r in names] == [f"signal_log_2026120{d}" for d in range(2, 6)]
    # Each has its own TRUNCATE guard, once.
    guards = await dbs.owner.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'quarantine_2026120%_no_truncate'"
    )
    assert guards == 4


async def _ensure_days(conn: asyncpg.Connection[asyncpg.Record], days: list[date]) -> None:
    for day in days:
        for table in ("signal_log", "quarantine"):
            await conn.execute("SELECT arc_ensure_day_partition($1, $2)", table, day)


@pytest.mark.asyncio
async def test_ensure_day_partition_takes_only_the_logs(dbs: Databases) -> None:
    for parent in ("audit_log", "logwriter_state", "pg_class"):
        with pytest.raises(asyncpg.InvalidParameterValueError, match="not a day-partitioned log"):
            await dbs.app.execute("SELECT arc_ensure_day_partition($1, $2)", parent, DAY)
    # Only arc_app (and the owner) may call it.
    assert not await dbs.owner.fetchval(
        "SELECT has_function_privilege('public', 'arc_ensure_day_partition(regclass, date)',"
        " 'EXECUTE')"
    )


@pytest.mark.asyncio
async def test_the_migration_can_run_on_many_databases_of_one_cluster(
    postgres_url: str,
) -> None:
    """The role is cluster-wide: a second and third database migrate as the first did."""
    admin = await asyncpg.connect(postgres_url, timeout=10)
    names = [f"arc_test_role_{uuid.uuid4().hex[:8]}" for _ in range(3)]
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
        conns = [
            await asyncpg.connect(postgres_url.rsplit("/", 1)[0] + f"/{name}", timeout=10)
            for name in names
        ]
        try:
            await asyncio.gather(*(db.migrate(conn=c) for c in conns))
            for c in conns:
                assert await c.fetchval(
                    "SELECT has_table_privilege('arc_app', 'signal_log', 'INSERT')"
                )
        finally:
            for c in conns:
                await c.close()
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.asyncio
async def test_concurrent_audit_records_form_one_chain(dbs: Databases) -> None:
    conns = [await asyncpg.connect(dbs.app_dsn, timeout=10) for _ in range(5)]

    async def record(conn: asyncpg.Connection[asyncpg.Record], n: int) -> list[uuid.UUID]:
        ids = []
        for i in range(n):
            async with conn.transaction():
                ids.append(
                    await audit.record(
                        conn=conn,
                        actor=f"admin{i}",
                        action="account.add",
                        subject=f"account:{i:04d}",
                        details={"name": f"Shop {i}", "link_test_seconds": 3600, "ratio": 0.5},
                    )
                )
        return ids

    try:
        ids = [i for batch in await asyncio.gather(*(record(c, 4) for c in conns)) for i in batch]
    finally:
        for c in conns:
            await c.close()
    rows = await dbs.owner.fetch("SELECT chain_seq, audit_id, at FROM audit_log ORDER BY chain_seq")
    assert [r["chain_seq"] for r in rows] == list(range(1, 21))
    assert {r["audit_id"] for r in rows} == set(ids)
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    report = await verify(conn=dbs.owner)
    assert report.intact, report.human()
    assert [(c.table, c.rows) for c in report.chains] == [("audit_log", 20)]


@pytest.mark.asyncio
async def test_an_audit_row_rolls_back_with_its_change(dbs: Databases) -> None:
    with pytest.raises(RuntimeError):
        async with dbs.app.transaction():
            await audit.record(
                conn=dbs.app, actor="a", action="account.add", subject="account:1", details={}
            )
            raise RuntimeError("the change failed")
    assert await dbs.owner.fetchval("SELECT count(*) FROM audit_log") == 0
    # Outside any transaction of the caller's, it still writes (in one of its own).
    await audit.record(conn=dbs.app, actor="a", action="x", subject="y", details={"k": [1, 2]})
    row = await dbs.owner.fetchrow("SELECT * FROM audit_log")
    assert row is not None and row["chain_seq"] == 1 and row["prev_hash"] == chain.GENESIS
    assert chain.link(chain.GENESIS, chain.AUDIT_COLUMNS, row) == row["hash"]
