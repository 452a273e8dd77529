"""The log writer: Kafka → ``signal_log`` and ``quarantine``, exactly once, hash-chained.

Theory of operation (ARCHITECTURE.md §2 and §4):

- Each Kafka partition is one *shard*: one hash chain in its table. The
  shard's Kafka offset and its chain head (``chain_seq``, ``chain_hash``) live
  in ``logwriter_state`` and change in the same transaction as the rows, so a
  crash at any point leaves the two in step: on restart (or on partition
  assignment) the writer seeks to the stored offset and continues the chain.
- A batch from ``getmany`` is one transaction: COPY of the new rows, the new
  states, and ``NOTIFY arc_durable`` with the signal ids, which PostgreSQL
  delivers only at commit. Receivers acknowledge devices on that notice.
- Duplicates change nothing. A signal produced twice (a producer retry) has
  the same ``signal_id``; a panel's retransmission of a message we did ACK
  too late has the same ``dedup_key``. Both are looked up in the recent
  partitions and skipped, and still announced durable: the first copy is.
  One writer owns a partition, and an account always maps to the same
  partition, so that check-then-insert has no competitor.
- The embedded broker keeps its log in memory: after it restarts, the stored
  offset lies beyond the new log's end. The writer then reads the new log
  from its start, and the unique ids keep the table free of duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from arc import bus, chain, db
from arc.db import DURABLE_CHANNEL
from arc.model import beijing_day, quarantine_row, signal_row

logger = logging.getLogger(__name__)

# Retransmissions come within the panel's ACK timeout and retry count (well
# under a minute); ten minutes of the log is searched for them.
REPLAY_WINDOW = timedelta(minutes=10)
_NOTIFY_IDS = 200  # 36-character ids per NOTIFY: the payload limit is 8,000 bytes

# The shards' new offsets and chain heads, and the notices of what is now
# durable, in one statement (a data-modifying CTE runs unreferenced).
_SAVE_STATES_AND_NOTIFY = """
WITH saved AS (
    INSERT INTO logwriter_state (topic, shard, next_offset, chain_seq, chain_hash)
    SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::bigint[], $5::bytea[])
    ON CONFLICT (topic, shard) DO UPDATE SET
        next_offset = excluded.next_offset,
        chain_seq = excluded.chain_seq,
        chain_hash = excluded.chain_hash,
        updated_at = now()
)
SELECT pg_notify($6, notice) FROM unnest($7::text[]) AS notice
"""

# migrations/0003_signal_batch.sql: states, notices, replay window, then the
# columns of signal_log in table order, each as an array.
_APPEND_SIGNALS = "SELECT arc_append_signals({})".format(
    ", ".join(f"${n}" for n in range(1, 8 + len(chain.SIGNAL_COLUMNS) + 2))
)

# Rows read off the bus, by topic: each partition's records and their rows.
_Pending = dict[str, list[tuple[bus.TopicPartition, Sequence[bus.Record], list[dict[str, Any]]]]]


@dataclass(frozen=True)
class Target:
    """A topic and the append-only table it is written to."""

    topic: str
    table: str
    id_column: str
    hashed: tuple[str, ...]
    to_row: Callable[[bytes], dict[str, Any]]
    announce: bool  # NOTIFY the ids: receivers wait for signals, not quarantine

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column COPY fills."""
        return (*self.hashed, "prev_hash", "hash")

    @property
    def seen_by_id_query(self) -> str:
        """The rows of ids $1 stored between $2 and $3 (a producer's retries)."""
        key = "dedup_key" if "dedup_key" in self.hashed else "NULL::bytea"
        return (
            f"SELECT {self.id_column} AS id, {key} AS dedup_key FROM {self.table}"  # noqa: S608 - our names
            f" WHERE {self.id_column} = ANY($1::uuid[]) AND received_at BETWEEN $2 AND $3"
        )

    @property
    def seen_query(self) -> str:
        """Those, and the rows of dedup keys $4 stored since $5 (a panel's retransmissions).

        A lateral lookup per key uses the index whatever the planner's
        statistics: a new day's partition has none, and ``= ANY($4)`` would
        scan it whole.
        """
        return (
            f"{self.seen_by_id_query} UNION ALL SELECT s.id, s.dedup_key"  # noqa: S608 - our names
            f" FROM unnest($4::bytea[]) AS k(key) CROSS JOIN LATERAL"
            f" (SELECT {self.id_column} AS id, dedup_key FROM {self.table}"
            " WHERE dedup_key = k.key AND received_at >= $5 LIMIT 1) AS s"
        )


def targets(
    signals_topic: str = bus.SIGNALS, quarantine_topic: str = bus.QUARANTINE
) -> list[Target]:
    """The two topics the log writer consumes and where each goes."""
    return [
        Target(signals_topic, "signal_log", "signal_id", chain.SIGNAL_COLUMNS, signal_row, True),
        Target(
            quarantine_topic,
            "quarantine",
            "quarantine_id",
            chain.QUARANTINE_COLUMNS,
            quarantine_row,
            False,
        ),
    ]


@dataclass
class Head:
    """Where a shard stands: the next Kafka offset and its chain's last link."""

    next_offset: int
    chain_seq: int
    chain_hash: bytes


class LogWriter:
    """Consume the targets' topics and write them; one instance per consumer."""

    def __init__(
        self,
        *,
        pool: db.Pool,
        consumer: bus.Consumer,
        targets: Sequence[Target],
        on_start_over: Callable[[], None] = lambda: None,
    ) -> None:
        self._pool = pool
        self._consumer = consumer
        self._targets = {t.topic: t for t in targets}
        self._heads: dict[tuple[str, int], Head] = {}
        self._days: set[tuple[str, date]] = set()
        # Partitions whose last batch failed: sought back before anything else is read.
        self._unsure: set[bus.TopicPartition] = set()
        self.rows_written = 0
        self.duplicates_skipped = 0
        # Set once partitions are assigned and sought: from then on it writes.
        self.assigned = asyncio.Event()
        # Set when the broker's log was replaced by an empty one (see start_over).
        self.log_replaced = asyncio.Event()
        self._on_start_over = on_start_over

    # -- partition assignment ------------------------------------------------------

    def listener(self) -> bus.ConsumerRebalanceListener:
        """The rebalance listener that seeks each assigned partition to its stored offset."""
        writer = self

        class _Listener(bus.ConsumerRebalanceListener):  # type: ignore[misc]  # untyped base
            async def on_partitions_revoked(self, revoked: Iterable[bus.TopicPartition]) -> None:
                for tp in revoked:
                    writer._heads.pop((tp.topic, tp.partition), None)

            async def on_partitions_assigned(self, assigned: Iterable[bus.TopicPartition]) -> None:
                await writer.resume(list(assigned))

        return _Listener()

    async def resume(self, partitions: Sequence[bus.TopicPartition]) -> None:
        """Load the stored heads of ``partitions`` and seek the consumer to them."""
        if not partitions:
            return
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT topic, shard, next_offset, chain_seq, chain_hash FROM logwriter_state"
                " WHERE topic = ANY($1::text[])",
                sorted({tp.topic for tp in partitions}),
            )
        stored = {
            (r["topic"], r["shard"]): Head(r["next_offset"], r["chain_seq"], r["chain_hash"])
            for r in rows
        }
        ends = await self._consumer.end_offsets(list(partitions))
        starts = await self._consumer.beginning_offsets(list(partitions))
        for tp in partitions:
            head = stored.get((tp.topic, tp.partition), Head(0, 0, chain.GENESIS))
            offset = head.next_offset
            if offset > ends[tp]:
                logger.warning(
                    "%s[%d]: the broker's log ends at %d but %d was stored: the broker lost "
                    "its log (restarted?); reading the new log from its start",
                    tp.topic,
                    tp.partition,
                    ends[tp],
                    offset,
                )
                offset = starts[tp]
            elif offset < starts[tp]:
                logger.error(
                    "%s[%d]: offsets %d..%d were removed from the broker before they were "
                    "written; continuing at %d",
                    tp.topic,
                    tp.partition,
                    offset,
                    starts[tp] - 1,
                    starts[tp],
                )
                offset = starts[tp]
            head.next_offset = offset
            self._heads[(tp.topic, tp.partition)] = head
            self._consumer.seek(tp, offset)
        self.assigned.set()

    # -- writing ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, max_records: int = 5_000) -> None:
        """Write batches until ``stop`` is set."""
        while not stop.is_set():
            if self.log_replaced.is_set():  # here no batch is half written
                self.log_replaced.clear()
                self.start_over()
            if self._unsure:
                await self.resume(list(self._unsure & self._consumer.assignment()))
                self._unsure.clear()
            # A short wait when idle: a replaced log (log_replaced) is seen within it,
            # and arc up holds the receivers until then.
            batches = await self._consumer.getmany(timeout_ms=20, max_records=max_records)
            if batches:
                await self.write(batches)

    def start_over(self) -> None:
        """Read every partition from offset 0: ``arc up`` replaced the broker's log.

        It does so only once every offset of the old log was stored, and sets
        the stored offsets to 0 itself (arc.embedded.rotation); the chains go on.
        """
        for tp in self._consumer.assignment():
            head = self._heads.get((tp.topic, tp.partition))
            if head is not None:
                head.next_offset = 0
            self._consumer.seek(tp, 0)
        self._on_start_over()

    async def write(self, batches: Mapping[bus.TopicPartition, Sequence[bus.Record]]) -> None:
        """Store one ``getmany`` result in one transaction; on failure, seek back."""
        try:
            await self._write(batches)
        except BaseException:
            # Nothing of the batch is stored: it is read again from the stored
            # offsets, which ``run`` seeks to before it reads anything else.
            self._unsure.update(batches)
            raise

    async def _write(self, batches: Mapping[bus.TopicPartition, Sequence[bus.Record]]) -> None:
        pending: _Pending = {}
        for tp, records in batches.items():
            if records and (tp.topic, tp.partition) in self._heads:  # else: revoked meanwhile
                rows = [self._targets[tp.topic].to_row(r.value or b"") for r in records]
                pending.setdefault(tp.topic, []).append((tp, records, rows))
        if not pending:
            return
        async with self._pool.acquire() as conn:
            if not await self._append_signals(conn, pending):
                await self._write_general(conn, pending)

    def _link(
        self, pending: _Pending, fresh: Mapping[str, set[int]] | None
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[tuple[str, int], Head], list[str], int]:
        """Link the rows (all of them, or those ``fresh`` names) into their shards' chains.

        Returns the rows to store by topic, the new heads, the ids to announce
        durable (duplicates included: their first copy is) and how many were skipped.
        """
        stored: dict[str, list[dict[str, Any]]] = {}
        heads: dict[tuple[str, int], Head] = {}
        announced: list[str] = []
        skipped = 0
        for topic, parts in pending.items():
            target = self._targets[topic]
            keep = None if fresh is None else fresh[topic]
            out = stored.setdefault(topic, [])
            for tp, records, rows in parts:
                current = self._heads[(tp.topic, tp.partition)]
                head = Head(records[-1].offset + 1, current.chain_seq, current.chain_hash)
                for record, row in zip(records, rows, strict=True):
                    if target.announce:
                        announced.append(str(row[target.id_column]))
                    if keep is not None and id(row) not in keep:
                        skipped += 1
                        continue
                    head.chain_seq += 1
                    row["shard"] = tp.partition
                    row["chain_seq"] = head.chain_seq
                    row["kafka_offset"] = record.offset
                    row["prev_hash"] = head.chain_hash
                    row["hash"] = head.chain_hash = chain.link(head.chain_hash, target.hashed, row)
                    out.append(row)
                heads[(tp.topic, tp.partition)] = head
        return stored, heads, announced, skipped

    async def _append_signals(self, conn: db.Connection, pending: _Pending) -> bool:
        """The usual batch, signals only and none stored yet, in one statement.

        False when it does not apply or a row turned out to be stored already
        (then nothing was written): the general path handles the batch.
        """
        if len(pending) != 1:
            return False
        (topic,) = pending
        target = self._targets[topic]
        if target.table != "signal_log":
            return False
        rows = [row for *_, part_rows in pending[topic] for row in part_rows]
        keys = [row["dedup_key"] for row in rows if row["dedup_key"] is not None]
        if len({row["signal_id"] for row in rows}) < len(rows) or len(set(keys)) < len(keys):
            return False  # repeated within the batch: the general path keeps one
        # A new day's partition first, in its own (committed) statement.
        self._days |= await self._ensure_days(conn, target.table, rows)
        stored, heads, announced, _ = self._link(pending, None)
        states = sorted(heads.items())
        columns = [
            [chain.json_text(row["xdata"]) for row in rows]
            if name == "xdata"
            else [row[name] for row in rows]
            for name in target.columns
        ]
        appended = await conn.fetchval(
            _APPEND_SIGNALS,
            [t for (t, _), _ in states],
            [shard for (_, shard), _ in states],
            [head.next_offset for _, head in states],
            [head.chain_seq for _, head in states],
            [head.chain_hash for _, head in states],
            _notices(announced),
            min(row["received_at"] for row in rows) - REPLAY_WINDOW,
            *columns,
        )
        if not appended:
            return False
        self._heads.update(heads)
        self.rows_written += len(stored[topic])
        return True

    async def _write_general(self, conn: db.Connection, pending: _Pending) -> None:
        """Any batch: skip what is stored already, then one transaction for all tables.

        Few round trips, whatever the number of partitions: one duplicate check
        and one COPY per table, one statement for every state and notice.
        """
        fresh = {
            topic: await self._fresh(
                conn, self._targets[topic], [row for *_, rows in parts for row in rows]
            )
            for topic, parts in pending.items()
        }
        stored, new_heads, announced, skipped = self._link(pending, fresh)
        new_days: set[tuple[str, date]] = set()
        async with conn.transaction():
            for topic, rows in stored.items():
                if not rows:
                    continue
                target = self._targets[topic]
                new_days |= await self._ensure_days(conn, target.table, rows)
                await conn.copy_records_to_table(
                    target.table,
                    records=[_copy_values(target.columns, row) for row in rows],
                    columns=list(target.columns),
                )
            heads = sorted(new_heads.items())
            await conn.execute(
                _SAVE_STATES_AND_NOTIFY,
                [topic for (topic, _), _ in heads],
                [shard for (_, shard), _ in heads],
                [head.next_offset for _, head in heads],
                [head.chain_seq for _, head in heads],
                [head.chain_hash for _, head in heads],
                DURABLE_CHANNEL,
                _notices(announced),
            )
        # Only now: a rolled-back transaction took its heads and partitions with it.
        self._heads.update(new_heads)
        self._days |= new_days
        self.rows_written += sum(len(rows) for rows in stored.values())
        self.duplicates_skipped += skipped
        if skipped:
            logger.info("skipped %d duplicate rows (retransmissions or producer retries)", skipped)

    async def _fresh(
        self, conn: db.Connection, target: Target, rows: list[dict[str, Any]]
    ) -> set[int]:
        """The ``id()`` of the rows not stored yet, each id and dedup key once."""
        ids = [row[target.id_column] for row in rows]
        keys = [row["dedup_key"] for row in rows if row.get("dedup_key") is not None]
        times = [row["received_at"] for row in rows]
        earliest, latest = min(times), max(times)
        if keys:
            found = await conn.fetch(
                target.seen_query, ids, earliest, latest, keys, earliest - REPLAY_WINDOW
            )
        else:
            found = await conn.fetch(target.seen_by_id_query, ids, earliest, latest)
        seen_ids = {r["id"] for r in found}
        seen_keys = {r["dedup_key"] for r in found if r["dedup_key"] is not None}
        fresh: set[int] = set()
        for row in rows:
            key = row.get("dedup_key")
            if row[target.id_column] in seen_ids or (key is not None and key in seen_keys):
                continue
            seen_ids.add(row[target.id_column])
            if key is not None:
                seen_keys.add(key)
            fresh.add(id(row))
        return fresh

    async def _ensure_days(
        self, conn: db.Connection, table: str, rows: Iterable[Mapping[str, Any]]
    ) -> set[tuple[str, date]]:
        """Create the day partitions the rows need; return those not known before."""
        days = {(table, beijing_day(row["received_at"])) for row in rows} - self._days
        for _, day in sorted(days):
            await conn.execute("SELECT arc_ensure_day_partition($1::regclass, $2)", table, day)
        return days


def _notices(ids: Sequence[str]) -> list[str]:
    """NOTIFY payloads announcing ``ids``, each within PostgreSQL's 8,000-byte limit."""
    return [" ".join(ids[i : i + _NOTIFY_IDS]) for i in range(0, len(ids), _NOTIFY_IDS)]


def _copy_values(columns: Sequence[str], row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The row as COPY takes it: jsonb as JSON text."""
    return tuple(chain.json_text(row[c]) if c in ("xdata", "details") else row[c] for c in columns)
