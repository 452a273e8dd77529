"""``arc verify`` and ``arc digest`` against a real PostgreSQL: chains, tampering, digests."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
import orjson
import pytest
import pytest_asyncio

from arc import audit, chain, db
from arc.config import Settings
from arc.integrity import check_digest, public_key_pem, sign_day, verify
from arc.integrity.digest import DigestError, key_path, load_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

BEIJING = timezone(timedelta(hours=8))
DAY = date(2026, 11, 20)  # over: a day is signed once it has ended
START = datetime(2026, 11, 20, 8, 0, tzinfo=BEIJING)
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record]"
TOPICS = {"signal_log": "arc.signals", "quarantine": "arc.quarantine"}


@pytest_asyncio.fixture
async def conn(database_url: str) -> AsyncIterator[Conn]:
    connection = await asyncpg.connect(database_url, timeout=10)
    await db.migrate(conn=connection)
    try:
        yield connection
    finally:
        await connection.close()


def signal_row(at: datetime, i: int) -> dict[str, Any]:
    return {
        "signal_id": uuid.uuid4(),
        "received_at": at,
        "account": f"{1000 + i % 50:04X}",
        "protocol": "ADM-CID",
        "transport": "tcp" if i % 3 else "udp",
        "peer": f"192.0.2.{i % 250}:4000",
        "message_id": "ADM-CID",
        "sequence": f"{i % 10000:04d}",
        "receiver_no": "R1" if i % 2 else None,
        "line_no": "L1",
        "encrypted": bool(i % 2),
        "qualifier": "E" if i % 5 else "R",
        "code": "130",
        "cid_event": "E130",
        "event_class": "burglary",
        "zone": f"{i % 100:03d}",
        "user_no": None,
        "partition_no": "01",
        "event_text": "Burglary 盗警",
        "device_time": at - timedelta(milliseconds=1500) if i % 4 else None,
        "drift_seconds": 1.5 if i % 4 else None,
        "drift_flagged": False,
        "xdata": [["M", f"00:1A:{i % 256:02X}"]] if i % 7 == 0 else [],
        "raw": f'\n6B2D0047"ADM-CID"{i % 10000:04d}L1#1234[#1234|1130 01 {i % 100:03d}]\r'.encode(),
        "dedup_key": hashlib.sha256(f"retransmission {i}".encode()).digest(),
    }


def quarantine_row(at: datetime, i: int) -> dict[str, Any]:
    return {
        "quarantine_id": uuid.uuid4(),
        "received_at": at,
        "transport": "udp",
        "peer": "198.51.100.1:9000",
        "protocol": None,
        "account": "99" if i % 2 else None,
        "response": "NAK",
        "reason": "CRC mismatch",
        "raw": b"\n0000garbage\r",
    }


async def append(
    conn: Conn,
    table: str,
    count: int,
    *,
    shard: int = 0,
    start: datetime = START,
    step: timedelta = timedelta(seconds=1),
) -> list[dict[str, Any]]:
    """Append ``count`` linked rows to a chain as the log writer does, head included."""
    topic = TOPICS[table]
    make = signal_row if table == "signal_log" else quarantine_row
    columns = (*chain.COLUMNS[table], "prev_hash", "hash")
    async with conn.transaction():
        head = await conn.fetchrow(
            "SELECT next_offset, chain_seq, chain_hash FROM logwriter_state"
            " WHERE topic = $1 AND shard = $2",
            topic,
            shard,
        )
        offset, seq, prev = (0, 0, chain.GENESIS) if head is None else tuple(head)
        rows = []
        days: set[date] = set()
        for i in range(count):
            at = start + step * i
            days.add(at.astimezone(BEIJING).date())
            seq += 1
            row = make(at, seq)
            row.update(shard=shard, chain_seq=seq, kafka_offset=offset, prev_hash=prev)
            row["hash"] = prev = chain.link(prev, chain.COLUMNS[table], row)
            offset += 1
            rows.append(row)
        for day in sorted(days):
            await conn.execute("SELECT arc_ensure_day_partition($1, $2)", table, day)
        await conn.copy_records_to_table(
            table,
            records=[
                tuple(chain.json_text(r[c]) if c == "xdata" else r[c] for c in columns)
                for r in rows
            ],
            columns=list(columns),
        )
        await conn.execute(
            "INSERT INTO logwriter_state (topic, shard, next_offset, chain_seq, chain_hash)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (topic, shard) DO UPDATE SET"
            " next_offset = excluded.next_offset, chain_seq = excluded.chain_seq,"
            " chain_hash = excluded.chain_hash, updated_at = now()",
            topic,
            shard,
            offset,
            seq,
            prev,
        )
    return rows


async def tamper(conn: Conn, sql: str, *args: object) -> None:
    """Run ``sql`` as a superuser who switched the append-only triggers off."""
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


async def write_all(conn: Conn) -> dict[str, list[dict[str, Any]]]:
    signals = await append(conn, "signal_log", 20, shard=0)
    await append(conn, "signal_log", 7, shard=1)
    quarantined = await append(conn, "quarantine", 5)
    for i in range(3):
        await audit.record(
            conn=conn, actor="op", action="account.add", subject=f"a:{i}", details={}
        )
    return {"signal_log": signals, "quarantine": quarantined}


def chain_of(report: Any, table: str, shard: int = 0) -> Any:
    return next(c for c in report.chains if c.table == table and c.shard == shard)


@pytest.mark.asyncio
async def test_an_untouched_log_verifies(conn: Conn) -> None:
    await write_all(conn)
    report = await verify(conn=conn)
    assert report.intact, report.human()
    assert [(c.table, c.shard, c.rows, c.last_seq) for c in report.chains] == [
        ("signal_log", 0, 20, 20),
        ("signal_log", 1, 7, 7),
        ("quarantine", 0, 5, 5),
        ("audit_log", 0, 3, 3),
    ]
    assert report.rows == 35
    assert report.summary()["intact"] is True
    assert report.human().startswith("intact: 4 chains, 35 rows")


@pytest.mark.asyncio
async def test_an_empty_log_verifies(conn: Conn) -> None:
    report = await verify(conn=conn)
    assert report.intact and report.chains == []


@pytest.mark.asyncio
async def test_a_topic_prefix_is_understood(conn: Conn) -> None:
    await append(conn, "signal_log", 3)
    await conn.execute("UPDATE logwriter_state SET topic = 'site1.' || topic")
    assert (await verify(conn=conn)).intact
    await conn.execute("UPDATE logwriter_state SET topic = 'arc.signalsX'")
    first = chain_of(await verify(conn=conn), "signal_log").first_break
    assert first.problem.startswith("logwriter_state has no head for this shard")


@pytest.mark.asyncio
async def test_a_changed_column_is_reported_at_its_row(conn: Conn) -> None:
    rows = (await write_all(conn))["signal_log"]
    await tamper(conn, "UPDATE signal_log SET zone = '999' WHERE shard = 0 AND chain_seq = 7")
    report = await verify(conn=conn)
    assert not report.intact
    broken = chain_of(report, "signal_log")
    first = broken.first_break
    assert (first.chain_seq, first.row_id, first.at) == (
        7,
        str(rows[6]["signal_id"]),
        rows[6]["received_at"],
    )
    assert first.problem == "hash does not match its contents"
    assert broken.break_count == 1  # the next row still links to the stored hash
    assert broken.rows == 20
    # The other chains are untouched.
    assert [c.intact for c in report.chains] == [False, True, True, True]
    assert "signal_log shard 0 chain_seq 7" in report.human()


@pytest.mark.asyncio
async def test_a_rehashed_row_breaks_the_next_link(conn: Conn) -> None:
    rows = (await write_all(conn))["signal_log"]
    forged = dict(rows[9], event_text="Test")
    forged_hash = chain.link(forged["prev_hash"], chain.SIGNAL_COLUMNS, forged)
    await tamper(
        conn,
        "UPDATE signal_log SET event_text = 'Test', hash = $1 WHERE shard = 0 AND chain_seq = 10",
        forged_hash,
    )
    first = chain_of(await verify(conn=conn), "signal_log").first_break
    assert first.chain_seq == 11
    assert first.problem == "prev_hash does not match row 10"


@pytest.mark.asyncio
async def test_a_deleted_row_is_reported_as_missing(conn: Conn) -> None:
    rows = (await write_all(conn))["signal_log"]
    # The other way to switch the triggers off: as the owner, for the table.
    await conn.execute("ALTER TABLE signal_log DISABLE TRIGGER USER")
    await conn.execute("DELETE FROM signal_log WHERE shard = 0 AND chain_seq IN (12, 13)")
    await conn.execute("ALTER TABLE signal_log ENABLE TRIGGER USER")
    broken = chain_of(await verify(conn=conn), "signal_log")
    assert broken.first_break.chain_seq == 14
    assert broken.first_break.row_id == str(rows[13]["signal_id"])
    assert broken.first_break.problem == "rows 12..13 are missing"
    assert broken.rows == 18


@pytest.mark.asyncio
async def test_removed_rows_at_the_end_contradict_the_writer_head(conn: Conn) -> None:
    await write_all(conn)
    await tamper(conn, "DELETE FROM signal_log WHERE shard = 1 AND chain_seq >= 6")
    broken = chain_of(await verify(conn=conn), "signal_log", 1)
    assert broken.first_break.problem.startswith("rows 6..7 are missing: logwriter_state")


@pytest.mark.asyncio
async def test_a_removed_first_row_and_a_forged_start(conn: Conn) -> None:
    await write_all(conn)
    await tamper(conn, "DELETE FROM quarantine WHERE chain_seq = 1")
    first = chain_of(await verify(conn=conn), "quarantine").first_break
    assert (first.chain_seq, first.problem) == (2, "rows 1..1 are missing")


@pytest.mark.asyncio
async def test_a_swapped_pair_is_reported_at_the_first_of_them(conn: Conn) -> None:
    rows = (await write_all(conn))["signal_log"]
    await tamper(
        conn,
        "UPDATE signal_log SET chain_seq = CASE chain_seq WHEN 5 THEN 6 ELSE 5 END"
        " WHERE shard = 0 AND chain_seq IN (5, 6)",
    )
    broken = chain_of(await verify(conn=conn), "signal_log")
    first = broken.first_break
    assert first.chain_seq == 5
    assert first.row_id == str(rows[5]["signal_id"])  # the old row 6 now stands at 5
    assert "prev_hash does not match row 4" in first.problem
    assert "hash does not match its contents" in first.problem


@pytest.mark.asyncio
async def test_a_row_moved_to_another_shard_is_found(conn: Conn) -> None:
    await write_all(conn)
    await tamper(
        conn, "UPDATE signal_log SET shard = 1, chain_seq = 8 WHERE shard = 0 AND chain_seq = 20"
    )
    report = await verify(conn=conn)
    assert chain_of(report, "signal_log", 1).first_break.chain_seq == 8
    assert chain_of(report, "signal_log", 1).first_break.problem == (
        "prev_hash does not match row 7; hash does not match its contents"
    )
    assert "rows 20..20 are missing" in chain_of(report, "signal_log", 0).first_break.problem


@pytest.mark.asyncio
async def test_audit_log_tampering_is_found(conn: Conn) -> None:
    await write_all(conn)
    await tamper(conn, "UPDATE audit_log SET actor = 'someone else' WHERE chain_seq = 2")
    first = chain_of(await verify(conn=conn), "audit_log").first_break
    assert (first.chain_seq, first.problem) == (2, "hash does not match its contents")


@pytest.mark.asyncio
async def test_rows_not_written_by_the_writer_are_found(conn: Conn) -> None:
    """A forged row appended, correctly linked, still contradicts logwriter_state."""
    rows = await append(conn, "signal_log", 3)
    forged = signal_row(START + timedelta(minutes=5), 4)
    forged.update(shard=0, chain_seq=4, kafka_offset=3, prev_hash=rows[-1]["hash"])
    forged["hash"] = chain.link(forged["prev_hash"], chain.SIGNAL_COLUMNS, forged)
    columns = (*chain.SIGNAL_COLUMNS, "prev_hash", "hash")
    await conn.copy_records_to_table(
        "signal_log",
        records=[tuple(chain.json_text(forged[c]) if c == "xdata" else forged[c] for c in columns)],
        columns=list(columns),
    )
    first = chain_of(await verify(conn=conn), "signal_log").first_break
    assert first.problem == (
        "rows 4..4 were not written by the log writer (logwriter_state's head is row 3)"
    )


@pytest.mark.asyncio
async def test_awkward_values_hash_alike_after_a_round_trip(conn: Conn) -> None:
    """What the writer hashed is what the verifier reads back, edge values included."""
    base = signal_row(START, 1)
    variants: list[dict[str, Any]] = [
        {"drift_seconds": -0.0},
        {"drift_seconds": float("nan")},
        {"drift_seconds": float("-inf")},
        {"drift_seconds": 5e-324},
        {"drift_seconds": 1.7976931348623157e308},
        {"drift_seconds": 3},  # an int for a double precision column
        {"event_text": "", "peer": None, "zone": "\t\n\u2028\\\"'é😀\x7f"},
        {"raw": b"", "dedup_key": None},
        {"raw": bytes(range(256))},
        {"xdata": [("名称", "值 \u0001"), ("", "")]},
        {"received_at": datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=BEIJING)},
        {
            "device_time": datetime(
                1999, 12, 31, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=-9))
            )
        },
        {"device_time": datetime(2026, 11, 20, 0, 0, tzinfo=UTC)},
    ]
    columns = (*chain.SIGNAL_COLUMNS, "prev_hash", "hash")
    await conn.execute("SELECT arc_ensure_day_partition('signal_log', $1)", DAY)
    expected = {}
    for seq, change in enumerate(variants, start=1):
        row = dict(base, signal_id=uuid.uuid4(), shard=0, chain_seq=seq, kafka_offset=seq)
        row.update(change)
        row["prev_hash"] = chain.GENESIS
        row["hash"] = chain.link(chain.GENESIS, chain.SIGNAL_COLUMNS, row)
        expected[row["signal_id"]] = row["hash"]
        await conn.copy_records_to_table(
            "signal_log",
            records=[tuple(chain.json_text(row[c]) if c == "xdata" else row[c] for c in columns)],
            columns=list(columns),
        )
    for stored in await conn.fetch("SELECT * FROM signal_log"):
        assert (
            chain.link(chain.GENESIS, chain.SIGNAL_COLUMNS, stored) == expected[stored["signal_id"]]
        ), dict(stored)
    # audit_log details: numbers as jsonb keeps them.
    details = {"f": 0.1, "one": 1.0, "big": 1e20, "neg": -0.0, "int": 2**63, "nested": [[1.5]]}
    await audit.record(conn=conn, actor="a", action="b", subject="c", details=details)
    stored = await conn.fetchrow("SELECT * FROM audit_log")
    assert stored is not None
    assert chain.link(chain.GENESIS, chain.AUDIT_COLUMNS, stored) == stored["hash"]


# --- digests ---------------------------------------------------------------


def settings_for(tmp_path: Path, master_key: str = "test master key " * 3) -> Settings:
    return Settings(data_dir=tmp_path / "data", master_key=master_key)


@pytest.mark.asyncio
async def test_digests_sign_verify_and_survive_a_restart(conn: Conn, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    await append(conn, "signal_log", 10, start=START)
    # Rows of the next Beijing day are not in the day's head.
    await append(conn, "signal_log", 3, start=datetime(2026, 11, 21, 0, 0, 1, tzinfo=BEIJING))
    await append(conn, "quarantine", 2)
    await audit.record(conn=conn, actor="op", action="x", subject="y", details={"n": 1})
    # audit_log rows carry the time they were written (today): not in DAY's heads.
    digests = await sign_day(conn=conn, settings=settings, day=DAY)
    assert [(d.table, d.shard, d.chain_seq) for d in digests] == [
        ("signal_log", 0, 10),
        ("quarantine", 0, 2),
    ]
    path = key_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()

    pem = public_key_pem(settings)
    for d in digests:
        as_json = orjson.dumps(d.to_json())
        assert check_digest(as_json, pem)
        forged = dict(d.to_json(), chain_seq=d.chain_seq + 1)
        assert not check_digest(forged, pem)
        assert not check_digest(dict(d.to_json(), head_hash="00" * 32), pem)
    other = Settings(data_dir=tmp_path / "other", master_key="another key " * 3)
    assert not check_digest(digests[0].to_json(), public_key_pem(other))

    # A new process: the key is loaded from its file, the day is not signed again.
    again = await sign_day(conn=conn, settings=settings_for(tmp_path), day=DAY)
    assert again == digests
    assert public_key_pem(settings_for(tmp_path)) == pem
    assert await conn.fetchval("SELECT count(*) FROM chain_digests") == 2
    # The next day has its own heads.
    later = await sign_day(conn=conn, settings=settings, day=DAY + timedelta(days=1))
    assert ("signal_log", 0, 13) in [(d.table, d.shard, d.chain_seq) for d in later]

    report = await verify(conn=conn, trusted_keys={digests[0].public_key})
    assert report.intact, report.human()
    assert sum(c.digests_checked for c in report.chains) == 2 + len(later)

    with pytest.raises(DigestError, match="ARC_MASTER_KEY"):
        load_key(settings_for(tmp_path, master_key="the wrong key " * 3))


@pytest.mark.asyncio
async def test_a_rewritten_digested_chain_is_found(conn: Conn, tmp_path: Path) -> None:
    """Rewriting rows and every hash after them fools the links, not the digest."""
    settings = settings_for(tmp_path)
    rows = await append(conn, "signal_log", 6)
    await sign_day(conn=conn, settings=settings, day=DAY)
    prev = rows[3]["prev_hash"]
    for row in rows[3:]:
        row = dict(row, prev_hash=prev, event_text="nothing happened")
        row["hash"] = prev = chain.link(prev, chain.SIGNAL_COLUMNS, row)
        await tamper(
            conn,
            "UPDATE signal_log SET event_text = $1, prev_hash = $2, hash = $3"
            " WHERE shard = 0 AND chain_seq = $4",
            row["event_text"],
            row["prev_hash"],
            row["hash"],
            row["chain_seq"],
        )
    await tamper(conn, "UPDATE logwriter_state SET chain_hash = $1", prev)
    broken = chain_of(await verify(conn=conn), "signal_log")
    assert broken.break_count == 1
    assert broken.first_break.chain_seq == 6
    assert broken.first_break.problem == (
        f"digest of {DAY} signed for hash {rows[5]['hash'].hex()}, row now hashes {prev.hex()}"
    )


@pytest.mark.asyncio
async def test_a_forged_or_foreign_digest_is_found(conn: Conn, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    await append(conn, "signal_log", 4)
    [digest] = await sign_day(conn=conn, settings=settings, day=DAY)
    report = await verify(conn=conn, trusted_keys={bytes(32)})
    assert "not the centre's" in chain_of(report, "signal_log").first_break.problem
    await tamper(conn, "UPDATE chain_digests SET chain_seq = 3")
    first = chain_of(await verify(conn=conn), "signal_log").first_break
    assert first.problem == f"digest of {DAY}: signature does not hold for its public key"
    assert digest.chain_seq == 4


@pytest.mark.asyncio
async def test_a_digested_row_that_is_gone_is_found(conn: Conn, tmp_path: Path) -> None:
    await append(conn, "quarantine", 3)
    await sign_day(conn=conn, settings=settings_for(tmp_path), day=DAY)
    await tamper(conn, "DELETE FROM quarantine")
    await tamper(conn, "DELETE FROM logwriter_state")
    broken = chain_of(await verify(conn=conn), "quarantine")
    assert broken.rows == 0
    assert broken.first_break.problem.startswith(f"digest of {DAY} signed row 3 (hash ")


@pytest.mark.asyncio
async def test_a_day_that_has_not_ended_is_not_signed(conn: Conn, tmp_path: Path) -> None:
    today = datetime.now(BEIJING).date()
    with pytest.raises(DigestError, match="has not ended"):
        await sign_day(conn=conn, settings=settings_for(tmp_path), day=today)
    assert not key_path(settings_for(tmp_path)).exists()


# --- the commands ----------------------------------------------------------


def run_arc(database_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARC_")}
    env.update(
        ARC_DATABASE_URL=database_url,
        ARC_DATA_DIR=str(tmp_path / "data"),
        ARC_MASTER_KEY="test master key " * 3,
    )
    return subprocess.run(
        [sys.executable, "-m", "arc.cli", *args],
        env=env,
        capture_output=True,
        timeout=50,
        check=False,
    )


@pytest.mark.asyncio
async def test_arc_verify_and_arc_digest_commands(
    conn: Conn, database_url: str, tmp_path: Path
) -> None:
    await write_all(conn)
    done = run_arc(database_url, tmp_path, "digest", "--day", DAY.isoformat())
    assert done.returncode == 0, done.stderr
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [(d["table"], d["shard"]) for d in lines] == [
        ("signal_log", 0),
        ("signal_log", 1),
        ("quarantine", 0),
    ]
    pem = run_arc(database_url, tmp_path, "digest", "--public-key")
    assert pem.returncode == 0 and pem.stdout.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert all(check_digest(d, pem.stdout) for d in lines)

    done = run_arc(database_url, tmp_path, "verify")
    assert done.returncode == 0, done.stderr
    *chains, summary = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert len(chains) == 4 and all(c["intact"] for c in chains)
    assert summary["summary"] and summary["intact"] and summary["rows"] == 35
    assert summary["digests_checked"] == 3
    assert b"intact" in done.stderr

    await tamper(conn, "UPDATE quarantine SET reason = 'ok' WHERE chain_seq = 2")
    done = run_arc(database_url, tmp_path, "verify")
    assert done.returncode == 1, done.stderr
    *chains, summary = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert not summary["intact"] and summary["broken_chains"] == 1
    broken = next(c for c in chains if not c["intact"])
    assert broken["first_break"]["table"] == "quarantine"
    assert broken["first_break"]["chain_seq"] == 2
    assert broken["first_break"]["problem"] == "hash does not match its contents"
    assert b"BROKEN" in done.stderr and b"quarantine shard 0 chain_seq 2" in done.stderr

    bad = run_arc(database_url, tmp_path, "digest", "--day", "2026-13-01")
    assert bad.returncode == 2 and b"not a day" in bad.stderr


# --- speed -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.asyncio
async def test_verify_speed_on_200k_rows(conn: Conn, capsys: pytest.CaptureFixture[str]) -> None:
    total, batch = 200_000, 20_000
    step = timedelta(seconds=1)
    for n in range(total // batch):
        # Over two Beijing days, so that the walk crosses partitions.
        await append(conn, "signal_log", batch, start=START + step * batch * n, step=step)
    await conn.execute("ANALYZE signal_log")
    started = time.monotonic()
    report = await verify(conn=conn)
    elapsed = time.monotonic() - started
    assert report.intact, report.human()
    assert report.rows == total
    with capsys.disabled():
        print(f"\nverify: {total} rows in {elapsed:.2f} s = {total / elapsed:,.0f} rows/s")
    assert elapsed < 120
