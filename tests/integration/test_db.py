"""Migrations runner against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import asyncpg
import pytest

from arc import db

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


BASE = {
    "0001_create.sql": "CREATE TABLE t (id integer PRIMARY KEY, note text NOT NULL);",
    "0002_seed.sql": "INSERT INTO t VALUES (1, 'first'); INSERT INTO t VALUES (2, 'second');",
}


@pytest.mark.asyncio
async def test_migrations_apply_once_and_are_idempotent(database_url: str, tmp_path: Path) -> None:
    directory = write(tmp_path / "m", BASE)
    pool = await db.create_pool(database_url, max_size=2)
    try:
        async with pool.acquire() as conn:
            applied = await db.migrate(conn=conn, directory=directory)
            assert [m.filename for m in applied] == ["0001_create.sql", "0002_seed.sql"]
            assert await db.migrate(conn=conn, directory=directory) == []
            assert await conn.fetchval("SELECT count(*) FROM t") == 2
            rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
            assert [(r["version"], r["name"]) for r in rows] == [(1, "create"), (2, "seed")]
            assert [r["checksum"] for r in rows] == [m.checksum for m in applied]

            # A later file is applied on the next run, alone.
            write(directory, {"0003_more.sql": "INSERT INTO t VALUES (3, 'third');"})
            assert [m.version for m in await db.migrate(conn=conn, directory=directory)] == [3]
            assert await conn.fetchval("SELECT count(*) FROM t") == 3
    finally:
        await pool.close()


@pytest.mark.asyncio
async def test_concurrent_runners_apply_each_migration_once(
    database_url: str, tmp_path: Path
) -> None:
    directory = write(tmp_path / "m", BASE)
    conns = [await asyncpg.connect(database_url, timeout=10) for _ in range(3)]
    try:
        results = await asyncio.gather(*(db.migrate(conn=c, directory=directory) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, 2]
        assert await conns[0].fetchval("SELECT count(*) FROM t") == 2
    finally:
        for c in conns:
            await c.close()


@pytest.mark.asyncio
async def test_a_failing_migration_leaves_no_trace(database_url: str, tmp_path: Path) -> None:
    directory = write(
        tmp_path / "m",
        {**BASE, "0003_broken.sql": "CREATE TABLE u (id integer); SELECT 1 / 0;"},
    )
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await db.migrate(conn=conn, directory=directory)
        # 0001 and 0002 committed in their own transactions; 0003 left nothing.
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == 2
        assert await conn.fetchval("SELECT to_regclass('u')") is None
        # The advisory lock was released: another runner is not blocked.
        (directory / "0003_broken.sql").write_text("CREATE TABLE u (id integer);")
        other = await asyncpg.connect(database_url, timeout=10)
        try:
            applied = await db.migrate(conn=other, directory=directory, lock_timeout=5)
            assert [m.version for m in applied] == [3]
        finally:
            await other.close()
    finally:
        await conn.close()


@pytest.mark.asyncio
async def test_changed_missing_or_out_of_order_files_are_refused(
    database_url: str, tmp_path: Path
) -> None:
    directory = write(tmp_path / "m", {**BASE, "0005_later.sql": "SELECT 1;"})
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        await db.migrate(conn=conn, directory=directory)

        (directory / "0002_seed.sql").write_text("INSERT INTO t VALUES (9, 'edited');")
        with pytest.raises(db.MigrationError, match="0002_seed.sql was changed"):
            await db.migrate(conn=conn, directory=directory)
        (directory / "0002_seed.sql").write_text(BASE["0002_seed.sql"])

        write(directory, {"0004_late.sql": "SELECT 1;"})
        with pytest.raises(db.MigrationError, match="0004_late.sql is numbered before"):
            await db.migrate(conn=conn, directory=directory)
        (directory / "0004_late.sql").unlink()

        (directory / "0005_later.sql").unlink()
        with pytest.raises(db.MigrationError, match="0005_later.sql is applied .* missing"):
            await db.migrate(conn=conn, directory=directory)
        assert await conn.fetchval("SELECT count(*) FROM t") == 2
    finally:
        await conn.close()


@pytest.mark.asyncio
async def test_the_repository_migrations_apply(database_url: str) -> None:
    pool = await db.create_pool(database_url, max_size=1)
    try:
        async with pool.acquire() as conn:
            first = await db.migrate(conn=conn)
            assert [m.version for m in first] == [m.version for m in db.load_migrations()]
            assert await db.migrate(conn=conn) == []
    finally:
        await pool.close()


@pytest.mark.asyncio
async def test_pool_to_a_server_that_never_answers_fails_within_its_timeout() -> None:
    # A listener that never accepts: the TCP handshake completes (backlog), then silence.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await db.create_pool(
                f"postgresql://nobody:x@127.0.0.1:{port}/nothing", connect_timeout=1
            )
        assert loop.time() - started < 3


def test_migration_files_must_be_well_named(tmp_path: Path) -> None:
    write(tmp_path / "a", {"1_short.sql": ""})
    with pytest.raises(db.MigrationError, match="NNNN_lower_case_name"):
        db.load_migrations(tmp_path / "a")
    write(tmp_path / "b", {"0001_one.sql": "", "0001_two.sql": ""})
    with pytest.raises(db.MigrationError, match="also used by"):
        db.load_migrations(tmp_path / "b")
    with pytest.raises(db.MigrationError, match="no migrations directory"):
        db.load_migrations(tmp_path / "missing")
