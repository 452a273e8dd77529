"""The administrative audit log: who changed what, as a hash chain (``audit_log``).

An administrative change and its audit row commit together or not at all:
``record`` writes inside the caller's transaction (in a savepoint of it), so
a change that rolls back leaves no row and a row never describes a change
that did not happen. Concurrent writers form one chain: a transaction advisory
lock serialises "read the head, link, insert" until the caller commits, and
the primary key (shard, chain_seq) refuses a fork if anything slipped past
(a REPEATABLE READ caller whose snapshot predates the lock, for example:
call ``record`` from a READ COMMITTED transaction).

``details`` go into the log for good and are readable by every role that may
read the log: the caller passes no secrets (no keys, passwords, tokens; say
"key changed", or a fingerprint of it, instead).
"""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Mapping
from datetime import datetime

from arc import chain
from arc.db import Connection

SHARD = 0
# pg_advisory_xact_lock key for the audit chain: "ARC_AUDT" as a big-endian bigint.
_LOCK_KEY = int.from_bytes(b"ARC_AUDT", "big")


async def record(
    *,
    conn: Connection,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, object],
) -> uuid.UUID:
    """Append one row to ``audit_log`` in the caller's transaction; return its id."""
    audit_id = uuid.uuid4()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        # Read under the lock, with the clock read after it: rows' times then
        # follow their chain order.
        head = await conn.fetchrow(
            "SELECT chain_seq, hash, clock_timestamp() AS now FROM audit_log"
            " WHERE shard = $1 ORDER BY chain_seq DESC LIMIT 1",
            SHARD,
        )
        if head is None:
            chain_seq, prev_hash = 1, chain.GENESIS
            now: datetime = await conn.fetchval("SELECT clock_timestamp()")
        else:
            chain_seq, prev_hash, now = head["chain_seq"] + 1, head["hash"], head["now"]
        row: dict[str, object] = {
            "shard": SHARD,
            "chain_seq": chain_seq,
            "audit_id": audit_id,
            "at": now,
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details,
        }
        digest = chain.link(prev_hash, chain.AUDIT_COLUMNS, row)
        await conn.execute(
            "INSERT INTO audit_log (shard, chain_seq, audit_id, at, actor, action, subject,"
            " details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)",
            SHARD,
            chain_seq,
            audit_id,
            now,
            actor,
            action,
            subject,
            chain.json_text(details),
            prev_hash,
            digest,
        )
    return audit_id


def cli_actor() -> str:
    """Who runs an administrative command, as the audit log names them: ``cli:LOGIN``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "cli"
