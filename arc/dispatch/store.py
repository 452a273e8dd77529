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
from arc.dispatch.incident_holds import IncidentHolds, catch_up
from arc.dispatch.lifecycle import Incident
from arc.dispatch.site_checkpoints import Checkpoint
from arc.model import beijing_day

COMMANDS_CHANNEL = "arc_commands"

_UPSERT_INCIDENTS = """
INSERT INTO incidents (incident_id, shard, account, event_class, grade, status, title, opened_at,
    updated_at, closed_at, owner, guard, signal_count, restored, confirmed, escalation_level,
    resolution, cause, state, chain_seq)
SELECT * FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::text[], $5::smallint[],
    $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::text[],
    $12::text[], $13::integer[], $14::boolean[], $15::boolean[], $16::integer[], $17::text[],
    $18::text[], $19::jsonb[], $20::bigint[])
ON CONFLICT (incident_id) DO UPDATE SET
    grade = excluded.grade, status = excluded.status, updated_at = excluded.updated_at,
    closed_at = excluded.closed_at, owner = excluded.owner, guard = excluded.guard,
    signal_count = excluded.signal_count, restored = excluded.restored,
    confirmed = excluded.confirmed, escalation_level = excluded.escalation_level,
    resolution = excluded.resolution, cause = excluded.cause, state = excluded.state,
    chain_seq = excluded.chain_seq
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
    INSERT INTO incident_chain_heads (shard, chain_seq, chain_hash, projected_seq)
    SELECT * FROM unnest($4::integer[], $5::bigint[], $6::bytea[], $10::bigint[])
    ON CONFLICT (shard) DO UPDATE SET
        chain_seq = excluded.chain_seq, chain_hash = excluded.chain_hash,
        projected_seq = excluded.projected_seq, updated_at = now()
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
    # The incidents whose stored projection lacked changes of the log, brought up to
    # date in ``incidents``: id -> that state and the first change it lacked.
    behind: dict[uuid.UUID, tuple[Incident, int]]
    # The chain position up to which every change is in the projection (0015).
    projected_seq: int


async def load_shard(conn: db.Connection, shard: int, topics: Sequence[str]) -> StoredShard:
    """The open incidents, site states, chain head and offsets of ``shard``.

    The open incidents are as their log says: the changes after the shard's
    ``projected_seq`` are applied to the incidents whose projection lacks them.
    """
    rows = await conn.fetch(
        "SELECT state, coalesce(chain_seq, 0) AS chain_seq FROM incidents"
        " WHERE shard = $1 AND status <> 'closed'",
        shard,
    )
    incidents = {
        incident.incident_id: (incident, r["chain_seq"])
        for r in rows
        for incident in (incident_json.from_json(orjson.loads(r["state"])),)
    }
    site_rows = await conn.fetch(
        "SELECT account, last_signal_at, state FROM site_state WHERE shard = $1", shard
    )
    sites = {
        r["account"]: (site_state_json.from_json(orjson.loads(r["state"])), r["last_signal_at"])
        for r in site_rows
    }
    head_row = await conn.fetchrow(
        "SELECT chain_seq, chain_hash, coalesce(projected_seq, chain_seq) AS projected_seq"
        " FROM incident_chain_heads WHERE shard = $1",
        shard,
    )
    head = (
        ChainHead(0, chain.GENESIS)
        if head_row is None
        else ChainHead(head_row["chain_seq"], bytes(head_row["chain_hash"]))
    )
    projected_seq = head.chain_seq if head_row is None else head_row["projected_seq"]
    behind = await _catch_up(conn, shard, incidents, projected_seq, head.chain_seq)
    offset_rows = await conn.fetch(
        "SELECT topic, next_offset, coalesce(sites_offset, next_offset) AS sites_offset"
        " FROM dispatcher_state WHERE shard = $1 AND topic = ANY($2::text[])",
        shard,
        list(topics),
    )
    return StoredShard(
        [incident for incident, _ in incidents.values()],
        sites,
        head,
        {r["topic"]: r["next_offset"] for r in offset_rows},
        {r["topic"]: r["sites_offset"] for r in offset_rows},
        behind,
        projected_seq,
    )


_LOG_AFTER = """
SELECT incident_id, chain_seq, kind, at, actor, role, details, signal_id FROM incident_log
WHERE shard = $1 AND chain_seq > $2 ORDER BY chain_seq
"""


async def _catch_up(
    conn: db.Connection,
    shard: int,
    incidents: dict[uuid.UUID, tuple[Incident, int]],
    projected_seq: int,
    head_seq: int,
) -> dict[uuid.UUID, tuple[Incident, int]]:
    """Apply the log after ``projected_seq`` to the ``incidents`` that lack it, in place.

    Returns the incidents that lacked changes: their state now and the first change.
    """
    if projected_seq >= head_seq:
        return {}
    rows = await conn.fetch(_LOG_AFTER, shard, projected_seq)
    changes = rebuild_changes(dict(r) for r in rows)
    return catch_up(
        incidents,
        ((r["incident_id"], r["chain_seq"], c) for r, c in zip(rows, changes, strict=True)),
    )


class BatchWriter:
    """Writes batches; keeps each shard's chain head, and the held incidents, between them."""

    def __init__(self, holds: IncidentHolds | None = None) -> None:
        self.heads: dict[int, ChainHead] = {}
        # shard -> the stored projected_seq (incident_holds)
        self._projected: dict[int, int] = {}
        self.holds = holds or IncidentHolds()
        self._days: set[date] = set()
        self.entries_written = 0

    def take_over(self, shard: int, stored: StoredShard) -> None:
        """Go on from ``shard``'s stored chain head; write the incidents it had to catch up."""
        self.heads[shard] = stored.head
        self._projected[shard] = stored.projected_seq
        self.holds.forget(shard)
        self.holds.hold_behind(shard, stored.behind)

    def forget(self, shard: int) -> None:
        """Drop the incidents held of ``shard``: its next owner catches them up from the log."""
        self.holds.forget(shard)

    async def write(
        self,
        conn: db.Connection,
        batch: Batch,
        *,
        now: float,
        checkpoint: Checkpoint | None = None,
        sites_offsets: Mapping[tuple[str, int], int] | None = None,
        everything: bool = False,
    ) -> list[tuple[Incident, bytes]]:
        """Store ``batch`` and the site states of ``checkpoint`` in one transaction.

        ``sites_offsets`` gives each offset row of ``batch`` (topic, shard) its
        ``sites_offset``; the chain heads move only once the transaction committed.
        The changed incidents' projections are written or held (``incident_holds``;
        ``now``: monotonic seconds; ``everything``: write every held one too).
        Returns each incident written with its JSON as stored, for the dispatcher to publish.
        """
        heads = {n: ChainHead(h.chain_seq, h.chain_hash) for n, h in self.heads.items()}
        rows = [self._link(heads, entry) for entry in batch.entries]
        plan = self.holds.plan(
            batch.incidents,
            (
                (r["incident_id"], entry.change.kind, r["chain_seq"])
                for r, entry in zip(rows, batch.entries, strict=True)
            ),
            now,
            signals=batch.signals,
            everything=everything,
        )
        states = {
            incident_id: incident_json.encode(incident)
            for incident_id, (_, incident) in plan.write.items()
        }
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
            if plan.write:
                await conn.execute(
                    _UPSERT_INCIDENTS, *_incident_columns(plan.write.values(), states, heads)
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
            projected = {n: plan.projected_seq(n, h.chain_seq) for n, h in heads.items()}
            changed = sorted(
                (n, h)
                for n, h in heads.items()
                if self.heads.get(n) != h or self._projected.get(n) != projected[n]
            )
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
                [projected[n] for n, _ in changed],
            )
        self.heads = heads
        self._projected = projected
        self.holds.committed(plan, now)
        self._days |= days
        self.entries_written += len(rows)
        return [(incident, states[i]) for i, (_, incident) in plan.write.items()]

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
    items: Iterable[tuple[int, Incident]],
    states: Mapping[uuid.UUID, bytes],
    heads: Mapping[int, ChainHead],
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
            heads[shard].chain_seq,  # every change of it so far is in this state
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
