"""The log writer's batch statement finds duplicates by index, not by scanning the day.

A new day's partition has no planner statistics until autovacuum analyses
it. Migration 0003's duplicate check by dedup key was planned then as a hash
semi-join over a sequential scan of the partition: one scan per batch, so the
writer slowed as the day filled (the 50-panel benchmark spent most of
PostgreSQL's time there). Migration 0012 keeps it an index lookup per key.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from arc import bus, chain, db
from arc.logwriter.writer import Head, LogWriter, targets
from arc.model import SignalMessage, beijing_day, encode
from tests.integration.conftest import Databases

pytestmark = [pytest.mark.integration, pytest.mark.asyncio, pytest.mark.timeout(90)]

NOW = datetime.now(UTC)
ROWS_BEFORE = 3_000
BATCH = 100


@dataclass(frozen=True)
class _Record:
    """What the writer reads of a consumer record."""

    offset: int
    value: bytes


def signal_message(n: int) -> SignalMessage:
    at = NOW + timedelta(milliseconds=n)
    return {
        "signal_id": str(uuid.uuid4()),
        "received_at": at.isoformat(),
        "account": f"A{n % 50:04d}",
        "protocol": "dc09-sia",
        "transport": "tcp",
        "peer": "127.0.0.1:40000",
        "message_id": "SIA-DCS",
        "sequence": f"{n % 10_000:04d}",
        "receiver_no": "0",
        "line_no": None,
        "encrypted": False,
        "qualifier": "new",
        "code": "BA",
        "cid_event": None,
        "event_class": "burglary",
        "zone": "1",
        "user_no": None,
        "partition_no": None,
        "event_text": None,
        "device_time": at.isoformat(),
        "drift_seconds": 0.0,
        "drift_flagged": False,
        "xdata": [],
        "raw": "",
        "dedup_key": hashlib.sha256(b"%d" % n).hexdigest(),
    }


@pytest_asyncio.fixture
async def writer_and_owner(
    dbs: Databases,
) -> AsyncIterator[tuple[LogWriter, asyncpg.Connection[asyncpg.Record]]]:
    # One connection: its statistics are flushed on demand (pg_stat_force_next_flush).
    pool = await db.create_pool(dbs.app_dsn, min_size=1, max_size=1, session_reset=False)
    target = targets()[0]
    writer = LogWriter(pool=pool, consumer=None, targets=[target])  # type: ignore[arg-type]
    writer._heads[(target.topic, 0)] = Head(0, 0, chain.GENESIS)  # as resume() leaves it
    try:
        yield writer, dbs.owner
    finally:
        await pool.close()


async def _write(writer: LogWriter, first: int, count: int) -> None:
    records = [_Record(n, encode(signal_message(n))) for n in range(first, first + count)]
    batch: dict[bus.TopicPartition, Sequence[_Record]] = {
        bus.TopicPartition(bus.SIGNALS, 0): records
    }
    await writer.write(batch)  # type: ignore[arg-type]


async def _sequential_scans(
    writer: LogWriter, owner: asyncpg.Connection[asyncpg.Record], partition: str
) -> int:
    # The writer's backend reports its counters at its next transaction's end.
    async with writer._pool.acquire() as conn:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        await conn.execute("SELECT 1")
    await asyncio.sleep(0.05)
    await owner.execute("SELECT pg_stat_clear_snapshot()")
    scans = await owner.fetchval(
        "SELECT seq_scan FROM pg_stat_all_tables WHERE relid = $1::regclass", partition
    )
    return int(scans)


async def test_a_batch_looks_up_duplicates_by_index_in_an_unanalysed_day(
    writer_and_owner: tuple[LogWriter, asyncpg.Connection[asyncpg.Record]],
) -> None:
    writer, owner = writer_and_owner
    for first in range(0, ROWS_BEFORE, BATCH):
        await _write(writer, first, BATCH)
    partition = await owner.fetchval(
        "SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'signal_log'::regclass"
        " AND pg_get_expr(c.relpartbound, c.oid) LIKE '%' || $1 || '%'",
        beijing_day(NOW).isoformat(),
    )
    assert partition is not None
    # No statistics: what a new day's partition has before autovacuum reaches it.
    assert await owner.fetchval(
        "SELECT reltuples FROM pg_class WHERE oid = $1::regclass", partition
    ) in (-1, 0)
    before = await _sequential_scans(writer, owner, partition)
    for first in range(ROWS_BEFORE, ROWS_BEFORE + 10 * BATCH, BATCH):
        await _write(writer, first, BATCH)
    after = await _sequential_scans(writer, owner, partition)
    assert after == before, f"{after - before} sequential scans of {partition} in 10 batches"
    assert writer.rows_written == ROWS_BEFORE + 10 * BATCH
    assert writer.duplicates_skipped == 0
