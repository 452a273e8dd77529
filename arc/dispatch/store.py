"""The dispatcher's database side: load a shard, write a batch in one transaction.

A batch's ``incident_log`` rows are linked into their shard's hash chain
here, and the new chain heads, the projection (``incidents``), the site
states due (``site_checkpoints``) and the Kafka offsets go in the same
transaction: after a crash the stored offsets and the stored state agree, so
a restarted dispatcher reads on exactly where the committed state ends (and
replays site states from their own offset, ``sites_offset``). Outcomes of
commands are announced with NOTIFY ``arc_commands`` at commit (the console
waits on it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson

from arc import chain, db
from arc.dispatch import (
    false_alarms,
    incident_json,
    lifecycle,
    open_close,
    site_state,
    site_state_json,
)
from arc.dispatch.engine import Batch, Entry
from arc.dispatch.lifecycle import Incident
from arc.dispatch.site_checkpoints import Checkpoint
from arc.model import beijing_day

COMMANDS_CHANNEL = "arc_commands"

_UPSERT_INCIDENTS = """
INSERT INTO incidents (incident_id, shard, account, event_class, grade, status, title, opened_at,
    updated_at, closed_at, owner, guard, signal_count, restored, confirmed, escalation_level,
    resolution, cause, state)
SELECT * FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::text[], $5::smallint[],
    $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::text[],
    $12::text[], $13::integer[], $14::boolean[], $15::boolean[], $16::integer[], $17::text[],
    $18::text[], $19::jsonb[])
ON CONFLICT (incident_id) DO UPDATE SET
    grade = excluded.grade, status = excluded.status, updated_at = excluded.updated_at,
    closed_at = excluded.closed_at, owner = excluded.owner, guard = excluded.guard,
    signal_count = excluded.signal_count, restored = excluded.restored,
    confirmed = excluded.confirmed, escalation_level = excluded.escalation_level,
    resolution = excluded.resolution, cause = excluded.cause, state = excluded.state
"""

_UPSERT_SITES = """
INSERT INTO site_state (account, shard, last_signal_at, state, updated_at)
SELECT a, s, t, j, now() FROM unnest($1::text[], $2::integer[], $3::timestamptz[], $4::jsonb[])
    AS u(a, s, t, j)
ON CONFLICT (account) DO UPDATE SET
    shard = excluded.shard,
    last_signal_at = greatest(site_state.last_signal_at, excluded.last_signal_at),
    state = excluded.state, updated_at = now()
"""

_SAVE_POSITION = """
WITH offsets AS (
    INSERT INTO dispatcher_state (topic, shard, next_offset, sites_offset)
    SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[], $9::bigint[])
    ON CONFLICT (topic, shard) DO UPDATE SET
        next_offset = excluded.next_offset, sites_offset = excluded.sites_offset,
        updated_at = now()
), heads AS (
    INSERT INTO incident_chain_heads (shard, chain_seq, chain_hash)
    SELECT * FROM unnest($4::integer[], $5::bigint[], $6::bytea[])
    ON CONFLICT (shard) DO UPDATE SET
        chain_seq = excluded.chain_seq, chain_hash = excluded.chain_hash, updated_at = now()
)
SELECT pg_notify($7, outcome) FROM unnest($8::text[]) AS outcome
"""


@dataclass
class ChainHead:
    """Where a shard's chain of ``incident_log`` ends."""

    chain_seq: int
    chain_hash: bytes


@dataclass(frozen=True)
class StoredShard:
    """What the database holds for one shard."""

    incidents: list[Incident]
    sites: dict[str, tuple[site_state.SiteState, datetime | None]]
    head: ChainHead
    offsets: dict[str, int]  # topic -> next offset
    # topic -> the offset the stored site states reflect (arc.signals; 0013's sites_offset)
    sites_offsets: dict[str, int]


async def load_shard(conn: db.Connection, shard: int, topics: Sequence[str]) -> StoredShard:
    """The open incidents, site states, chain head and offsets of ``shard``."""
    rows = await conn.fetch(
        "SELECT state FROM incidents WHERE shard = $1 AND status <> 'closed'", shard
    )
    incidents = [incident_json.from_json(orjson.loads(r["state"])) for r in rows]
    site_rows = await conn.fetch(
        "SELECT account, last_signal_at, state FROM site_state WHERE shard = $1", shard
    )
    sites = {
        r["account"]: (site_state_json.from_json(orjson.loads(r["state"])), r["last_signal_at"])
        for r in site_rows
    }
    head_row = await conn.fetchrow(
        "SELECT chain_seq, chain_hash FROM incident_chain_heads WHERE shard = $1", shard
    )
    head = (
        ChainHead(0, chain.GENESIS)
        if head_row is None
        else ChainHead(head_row["chain_seq"], bytes(head_row["chain_hash"]))
    )
    offset_rows = await conn.fetch(
        "SELECT topic, next_offset, coalesce(sites_offset, next_offset) AS sites_offset"
        " FROM dispatcher_state WHERE shard = $1 AND topic = ANY($2::text[])",
        shard,
        list(topics),
    )
    return StoredShard(
        incidents,
        sites,
        head,
        {r["topic"]: r["next_offset"] for r in offset_rows},
        {r["topic"]: r["sites_offset"] for r in offset_rows},
    )


class BatchWriter:
    """Writes batches; keeps each shard's chain head between them."""

    def __init__(self) -> None:
        self.heads: dict[int, ChainHead] = {}
        self._days: set[date] = set()
        self.entries_written = 0

    async def write(
        self,
        conn: db.Connection,
        batch: Batch,
        *,
        checkpoint: Checkpoint | None = None,
        sites_offsets: Mapping[tuple[str, int], int] | None = None,
    ) -> dict[uuid.UUID, bytes]:
        """Store ``batch`` and the site states of ``checkpoint`` in one transaction.

        ``sites_offsets`` gives each offset row of ``batch`` (topic, shard) its
        ``sites_offset``; the chain heads move only once the transaction committed.
        Returns each changed incident's JSON as stored, for the dispatcher to publish.
        """
        states = {
            incident_id: incident_json.encode(incident)
            for incident_id, (_, incident) in batch.incidents.items()
        }
        heads = {n: ChainHead(h.chain_seq, h.chain_hash) for n, h in self.heads.items()}
        rows = [self._link(heads, entry) for entry in batch.entries]
        days = {beijing_day(r["at"]) for r in rows} - self._days
        for day in sorted(days):
            await conn.execute("SELECT arc_ensure_day_partition('incident_log'::regclass, $1)", day)
        async with conn.transaction():
            if rows:
                await conn.copy_records_to_table(
                    "incident_log",
                    records=[_copy_values(r) for r in rows],
                    columns=[*chain.INCIDENT_COLUMNS, "prev_hash", "hash"],
                )
            if batch.incidents:
                await conn.execute(
                    _UPSERT_INCIDENTS, *_incident_columns(batch.incidents.values(), states)
                )
            if checkpoint is not None and checkpoint.sites:
                items = sorted(checkpoint.sites.items())
                await conn.execute(
                    _UPSERT_SITES,
                    [a for a, _ in items],
                    [shard for _, (shard, _, _) in items],
                    [t for _, (_, _, t) in items],
                    [site_state_json.encode(s).decode() for _, (_, s, _) in items],
                )
            offsets = sorted(batch.offsets.items())
            changed = sorted((n, h) for n, h in heads.items() if self.heads.get(n) != h)
            await conn.execute(
                _SAVE_POSITION,
                [topic for (topic, _), _ in offsets],
                [shard for (_, shard), _ in offsets],
                [offset for _, offset in offsets],
                [n for n, _ in changed],
                [h.chain_seq for _, h in changed],
                [h.chain_hash for _, h in changed],
                COMMANDS_CHANNEL,
                [orjson.dumps(r).decode() for r in batch.results],
                [(sites_offsets or {}).get(key) for key, _ in offsets],
            )
        self.heads = heads
        self._days |= days
        self.entries_written += len(rows)
        return states

    def _link(self, heads: dict[int, ChainHead], entry: Entry) -> dict[str, Any]:
        head = heads[entry.shard]
        change = entry.change
        head.chain_seq += 1
        row: dict[str, Any] = {
            "shard": entry.shard,
            "chain_seq": head.chain_seq,
            "entry_id": uuid.uuid4(),
            "incident_id": entry.incident_id,
            "at": change.at,
            "account": entry.account,
            "kind": change.kind.value,
            "actor": change.actor,
            "role": change.role.value,
            "signal_id": change.signal_id,
            "command_id": entry.command_id,
            "details": change.details,
            "prev_hash": head.chain_hash,
        }
        row["hash"] = head.chain_hash = chain.link(head.chain_hash, chain.INCIDENT_COLUMNS, row)
        return row


def _copy_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(
        chain.json_text(row[c]) if c == "details" else row[c]
        for c in (*chain.INCIDENT_COLUMNS, "prev_hash", "hash")
    )


def _incident_columns(
    items: Iterable[tuple[int, Incident]], states: Mapping[uuid.UUID, bytes]
) -> list[list[Any]]:
    rows = [
        (
            i.incident_id,
            shard,
            i.account,
            i.event_class,
            i.grade,
            i.status.value,
            i.title,
            i.opened_at,
            i.updated_at,
            i.closed_at,
            i.owner,
            i.guard,
            i.signal_count,
            i.restored,
            i.confirmed,
            i.escalation_level,
            None if i.resolution is None else i.resolution.value,
            None if i.cause is None else i.cause.value,
            states[i.incident_id].decode(),
        )
        for shard, i in items
    ]
    return [list(column) for column in zip(*rows, strict=True)]


def rebuild_changes(rows: Iterable[Mapping[str, Any]]) -> list[lifecycle.Change]:
    """The changes of an incident's ``incident_log`` rows (ordered by chain_seq)."""
    return [
        lifecycle.Change(
            kind=lifecycle.Kind(r["kind"]),
            at=r["at"],
            actor=r["actor"],
            role=lifecycle.Role(r["role"]),
            details=orjson.loads(r["details"]) if isinstance(r["details"], str) else r["details"],
            signal_id=r["signal_id"],
        )
        for r in rows
    ]


async def load_false_alarms(
    conn: db.Connection, shard: int, now: datetime
) -> list[tuple[str, datetime]]:
    """Each false alarm of ``shard``'s accounts closed in the 365 days before ``now``."""
    rows = await conn.fetch(
        "SELECT account, closed_at FROM incidents WHERE shard = $1"
        " AND resolution = 'false_alarm' AND closed_at > $2",
        shard,
        now - false_alarms.WINDOW,
    )
    return [(r["account"], r["closed_at"]) for r in rows]


async def load_schedule_checks(
    conn: db.Connection, shard: int, now: datetime
) -> dict[str, datetime]:
    """When the last 未按时布防 of each of ``shard``'s accounts opened (the week before ``now``)."""
    # The class as a literal: it is what lets the planner use 0006's partial index.
    rows = await conn.fetch(
        "SELECT account, max(opened_at) AS opened FROM incidents WHERE shard = $1"
        " AND event_class = 'open_close' AND title = $2 AND opened_at > $3 GROUP BY account",
        shard,
        open_close.NOT_ARMED_TITLE,
        now - open_close.LOOKBACK,
    )
    return {r["account"]: r["opened"] for r in rows}
