"""The access audit (REGULATION R5): every read, export, copy, forward or stream of records.

Theory of operation. ``record_access`` appends one row to ``access_audit``
inside the caller's transaction, the one that reads the records: the read and
its row commit together or not at all, so no one (an administrator included)
reads through ARC without leaving the row, and no row describes a read that
did not happen. It refuses to run outside a transaction, where that would not
hold. ``audited_read`` is the same with the transaction opened for the caller.

The table is a hash chain (``arc.chain.ACCESS_COLUMNS``), one chain per shard
(0 today), append-only for every role, partitioned by Beijing day like the
alarm log. Writers are serialised by a transaction advisory lock, as
``arc.audit`` does it; the chain's head is kept in ``access_audit_heads`` and
moved in the same transaction, so the writer does not search every day's
partition for it and ``arc verify`` sees rows removed from the end.

``details`` are kept for good and shown to auditors: filters, counts and ids,
never secrets. Keys that look like secrets (password, token, secret, key...)
are refused outright rather than trusted to every caller's care.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from arc import chain
from arc.db import Connection

SHARD = 0
# pg_advisory_xact_lock key of the access chain: "ARC_ACCS" as a big-endian bigint.
_LOCK_KEY = int.from_bytes(b"ARC_ACCS", "big")
_SECRET_WORDS = ("password", "passwd", "secret", "token", "cookie", "csrf", "totp")
_BEIJING_OFFSET = timedelta(hours=8)


class AccessAction(StrEnum):
    """What was done with records (R5: viewing, copying, exporting, forwarding)."""

    READ = "read"
    EXPORT = "export"
    COPY = "copy"
    FORWARD = "forward"
    STREAM = "stream"  # a live feed (SSE) opened: recorded once per stream


class AccessAuditError(RuntimeError):
    """A read that cannot be audited as asked (outside a transaction, a secret in details)."""


@dataclass(frozen=True, slots=True)
class AccessRow:
    """One row of the access audit, as ``list_access`` gives it."""

    shard: int
    chain_seq: int
    access_id: uuid.UUID
    at: datetime
    actor: str
    role: str
    action: str
    subject: str
    details: dict[str, Any]
    peer: str | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "chain_seq": self.chain_seq,
            "access_id": str(self.access_id),
            "at": self.at.isoformat(),
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "subject": self.subject,
            "details": self.details,
            "peer": self.peer,
        }


def _check_details(details: Mapping[str, object], path: str = "details") -> None:
    for key, value in details.items():
        lowered = str(key).lower()
        is_key = lowered == "key" or lowered.startswith("key_") or lowered.endswith("_key")
        if is_key or any(word in lowered for word in _SECRET_WORDS):
            raise AccessAuditError(
                f"{path}.{key}: the access audit keeps no secrets (passwords, tokens, keys); "
                "record what was read, not how"
            )
        if isinstance(value, Mapping):
            _check_details(value, f"{path}.{key}")


async def record_access(
    *,
    conn: Connection,
    actor: str,
    role: str,
    action: str,
    subject: str,
    details: Mapping[str, object],
    peer: str | None,
) -> uuid.UUID:
    """Append one row to ``access_audit`` in the caller's transaction; return its id."""
    if not conn.is_in_transaction():
        raise AccessAuditError(
            "record_access needs the transaction of the read it records (REGULATION R5): "
            "open one (or use audited_read)"
        )
    try:
        kind = AccessAction(action)
    except ValueError:
        choices = ", ".join(a.value for a in AccessAction)
        raise AccessAuditError(f"access action {action!r} is not one of {choices}") from None
    if not actor or not subject:
        raise AccessAuditError("an access row names who (actor) and what (subject)")
    _check_details(details)
    access_id = uuid.uuid4()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        # Under the lock: the head, then the clock, so rows' times follow chain order.
        head = await conn.fetchrow(
            "SELECT chain_seq, chain_hash, clock_timestamp() AS now"
            " FROM access_audit_heads WHERE shard = $1",
            SHARD,
        )
        if head is None:
            raise AccessAuditError(
                f"access_audit_heads has no row for shard {SHARD} (migration 0008)"
            )
        now: datetime = head["now"]
        day = (now + _BEIJING_OFFSET).date()
        await conn.execute("SELECT arc_ensure_day_partition('access_audit'::regclass, $1)", day)
        chain_seq: int = head["chain_seq"] + 1
        prev_hash = bytes(head["chain_hash"])
        row: dict[str, object] = {
            "shard": SHARD,
            "chain_seq": chain_seq,
            "access_id": access_id,
            "at": now,
            "actor": actor,
            "role": role,
            "action": kind.value,
            "subject": subject,
            "details": details,
            "peer": peer,
        }
        digest = chain.link(prev_hash, chain.ACCESS_COLUMNS, row)
        await conn.execute(
            "INSERT INTO access_audit (shard, chain_seq, access_id, at, actor, role, action,"
            " subject, details, peer, prev_hash, hash)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12)",
            SHARD,
            chain_seq,
            access_id,
            now,
            actor,
            role,
            kind.value,
            subject,
            chain.json_text(details),
            peer,
            prev_hash,
            digest,
        )
        await conn.execute(
            "UPDATE access_audit_heads SET chain_seq = $2, chain_hash = $3, updated_at = $4"
            " WHERE shard = $1",
            SHARD,
            chain_seq,
            digest,
            now,
        )
    return access_id


@asynccontextmanager
async def audited_read(
    *,
    conn: Connection,
    actor: str,
    role: str,
    action: str,
    subject: str,
    details: Mapping[str, object],
    peer: str | None,
) -> AsyncIterator[Connection]:
    """Open a transaction, record the access in it, and yield the connection to read with."""
    async with conn.transaction():
        await record_access(
            conn=conn,
            actor=actor,
            role=role,
            action=action,
            subject=subject,
            details=details,
            peer=peer,
        )
        yield conn


_LIST_ACCESS = """
SELECT shard, chain_seq, access_id, at, actor, role, action, subject, details::text AS details,
       peer
FROM access_audit
WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at < $2)
  AND ($3::text IS NULL OR actor = $3) AND ($4::text IS NULL OR action = $4)
  AND ($5::bigint IS NULL OR chain_seq < $5)
"""


async def list_access(
    *,
    conn: Connection,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    before: int | None = None,
    newest_first: bool = False,
    limit: int = 1000,
) -> list[AccessRow]:
    """Rows of the access audit, oldest first unless asked (the caller records that it read them).

    ``before`` is a ``chain_seq``: the page of rows earlier in the chain than
    that one. There is one chain (shard 0) today, whose rows take their time
    under the writers' lock, so chain order is time order; unlike a time, the
    cursor has no ties.
    """
    order = "shard DESC, chain_seq DESC" if newest_first else "shard, chain_seq"
    rows = await conn.fetch(
        _LIST_ACCESS + f" ORDER BY {order} LIMIT $6",
        since,
        until,
        actor,
        action,
        before,
        limit,
    )
    return [
        AccessRow(
            shard=r["shard"],
            chain_seq=r["chain_seq"],
            access_id=r["access_id"],
            at=r["at"],
            actor=r["actor"],
            role=r["role"],
            action=r["action"],
            subject=r["subject"],
            details=orjson.loads(r["details"]),
            peer=r["peer"],
        )
        for r in rows
    ]
