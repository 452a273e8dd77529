"""``arc verify``: walk every hash chain and report the first broken link of each.

Theory of operation. The append-only logs are hash chains per shard (see
``arc.chain``). The triggers of migration 0001 stop every role from changing
them, but a superuser can disable triggers, and the files can be edited
offline; the chains make any such change visible:

- a changed row no longer hashes to its ``hash``  ("hash does not match its
  contents");
- a row whose ``hash`` was recomputed as well breaks the next row's
  ``prev_hash``  ("prev_hash does not match row N");
- removed rows leave a ``chain_seq`` gap  ("rows N..M are missing"), removed
  rows at the end disagree with the log writer's head in ``logwriter_state``;
- rows moved or swapped hash differently, since ``shard`` and ``chain_seq``
  are hashed;
- a chain rewritten from some row on, hashes and all, still contradicts the
  signed daily digests (``chain_digests``, see ``digest.py``), whose
  signatures only the centre's key can make.

Everything is read in one REPEATABLE READ, read-only transaction: the rows,
``logwriter_state`` and the digests belong to one snapshot, so a log writer
committing meanwhile cannot look like a mismatch. Rows are streamed through a
server-side cursor ordered by (shard, chain_seq), one table at a time, so a
log of any size is walked in constant memory. Each chain reports its first
break precisely (table, shard, chain_seq, the row's id and time, what is
wrong) and the walk goes on, counting further breaks, so the row counts are
complete. Rows after a break are still checked against their own neighbours:
one changed row is one break, not a cascade.

Retention (not built yet) will drop whole expired day partitions and record a
signed anchor: the chain_seq and hash of the last row it removed. A chain then
starts at anchor.chain_seq + 1 with prev_hash = anchor.hash instead of 1 and
GENESIS; ``verify`` takes those anchors as ``anchors`` (see ``load_anchors``,
the hook retention fills in).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from arc import chain
from arc.db import Connection
from arc.integrity.digest import Digest, DigestError, verify_signature

# The chained tables: their id column, their time column and the log writer's topic.
TABLES: Mapping[str, tuple[str, str, str | None]] = {
    "signal_log": ("signal_id", "received_at", "arc.signals"),
    "quarantine": ("quarantine_id", "received_at", "arc.quarantine"),
    "audit_log": ("audit_id", "at", None),
    "incident_log": ("entry_id", "at", None),
    "access_audit": ("access_id", "at", None),
}
_MAX_BREAKS = 10  # listed per chain beyond the first; the rest are counted
_PREFETCH = 2000  # rows per cursor round trip


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where a chain starts after retention dropped its beginning."""

    chain_seq: int  # of the last removed row: the chain resumes at chain_seq + 1
    hash: bytes


@dataclass(frozen=True, slots=True)
class Break:
    """One broken link: where it is and what is wrong."""

    table: str
    shard: int
    chain_seq: int | None  # None: the chain as a whole (for example, no rows left)
    row_id: str | None
    at: datetime | None
    problem: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "table": self.table,
            "shard": self.shard,
            "chain_seq": self.chain_seq,
            "row_id": self.row_id,
            "at": self.at.isoformat() if self.at is not None else None,
            "problem": self.problem,
        }

    def __str__(self) -> str:
        where = f"{self.table} shard {self.shard}"
        if self.chain_seq is not None:
            where += f" chain_seq {self.chain_seq}"
        if self.row_id is not None:
            where += f" ({self.row_id}"
            where += f", {self.at.isoformat()})" if self.at is not None else ")"
        return f"{where}: {self.problem}"


@dataclass(slots=True)
class ChainReport:
    """The result of walking one chain (one table, one shard)."""

    table: str
    shard: int
    rows: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_hash: bytes | None = None
    digests_checked: int = 0
    breaks: list[Break] = field(default_factory=list)  # the first ones, in chain order
    break_count: int = 0

    @property
    def intact(self) -> bool:
        """Whether nothing is wrong with this chain."""
        return self.break_count == 0

    @property
    def first_break(self) -> Break | None:
        """The first broken link, the one to look at."""
        return self.breaks[0] if self.breaks else None

    def add(self, problem: Break) -> None:
        """Note a break (the first few are kept, all are counted)."""
        self.break_count += 1
        if len(self.breaks) <= _MAX_BREAKS:
            self.breaks.append(problem)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        first = self.first_break
        return {
            "table": self.table,
            "shard": self.shard,
            "intact": self.intact,
            "rows": self.rows,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head_hash": self.head_hash.hex() if self.head_hash is not None else None,
            "digests_checked": self.digests_checked,
            "first_break": first.to_json() if first is not None else None,
            "breaks": self.break_count,
            "more_breaks": [b.to_json() for b in self.breaks[1:]],
        }


@dataclass(slots=True)
class VerifyReport:
    """Every chain's report, and how long the walk took."""

    chains: list[ChainReport]
    seconds: float

    @property
    def intact(self) -> bool:
        """Whether every chain is intact."""
        return all(c.intact for c in self.chains)

    @property
    def rows(self) -> int:
        """Rows checked in all."""
        return sum(c.rows for c in self.chains)

    def summary(self) -> dict[str, Any]:
        """The summary object of the JSON report."""
        return {
            "summary": True,
            "intact": self.intact,
            "chains": len(self.chains),
            "broken_chains": sum(not c.intact for c in self.chains),
            "rows": self.rows,
            "digests_checked": sum(c.digests_checked for c in self.chains),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds) if self.seconds > 0 else None,
        }

    def human(self) -> str:
        """One line for a person."""
        s = self.summary()
        head = (
            f"{s['chains']} chains, {s['rows']} rows, {s['digests_checked']} digests "
            f"in {self.seconds:.1f} s"
        )
        if self.intact:
            return f"intact: {head}"
        firsts = [str(c.first_break) for c in self.chains if c.first_break is not None]
        return f"BROKEN: {s['broken_chains']} of {head}; first: {firsts[0]}"


async def load_anchors(*, conn: Connection) -> dict[tuple[str, int], Anchor]:
    """The retention anchors of every chain: none until ``arc retention`` exists.

    Hook for retention: it will record, for each (table, shard) whose oldest
    partitions it dropped, the chain_seq and hash of the last row removed, in a
    signed purge record; return them here and ``verify`` starts each chain there.
    """
    del conn
    return {}


async def verify(
    *,
    conn: Connection,
    anchors: Mapping[tuple[str, int], Anchor] | None = None,
    trusted_keys: Collection[bytes] | None = None,
    tables: Collection[str] = tuple(TABLES),
) -> VerifyReport:
    """Walk every chain of ``tables`` in one snapshot; report the first break of each.

    ``trusted_keys`` (raw Ed25519 public keys): when given, a digest signed by
    any other key is a break too (a valid signature proves nothing by itself).
    """
    started = time.monotonic()
    reports: dict[tuple[str, int], ChainReport] = {}
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if anchors is None:
            anchors = await load_anchors(conn=conn)
        heads = await _writer_heads(conn)
        digests = await _digests(conn, reports, trusted_keys, tables)
        for table in tables:
            await _walk(conn, table, reports, anchors, digests.get(table, {}))
            _check_writer_head(table, reports, heads)
    chains = sorted(
        reports.values(),
        key=lambda c: (
            list(TABLES).index(c.table) if c.table in TABLES else len(TABLES),
            c.table,
            c.shard,
        ),
    )
    return VerifyReport(chains=chains, seconds=time.monotonic() - started)


def _report(reports: dict[tuple[str, int], ChainReport], table: str, shard: int) -> ChainReport:
    report = reports.get((table, shard))
    if report is None:
        report = reports[(table, shard)] = ChainReport(table=table, shard=shard)
    return report


async def _writer_heads(conn: Connection) -> dict[tuple[str, int], tuple[int, bytes]]:
    """The log writer's head per (table, shard), from the same snapshot as the rows.

    Topics may carry a deployment's prefix (``site1.arc.signals``): matched by
    their end. Should several prefixes have heads for one shard (a renamed
    prefix), the most recently updated one is the writer's.
    """
    heads: dict[tuple[str, int], tuple[int, bytes]] = {}
    rows = await conn.fetch(
        "SELECT topic, shard, chain_seq, chain_hash FROM logwriter_state ORDER BY updated_at"
    )
    for r in rows:
        for table, (_, _, topic) in TABLES.items():
            if topic is not None and (r["topic"] == topic or r["topic"].endswith("." + topic)):
                heads[(table, r["shard"])] = (r["chain_seq"], bytes(r["chain_hash"]))
    # The dispatcher keeps the heads of incident_log's chains itself.
    for r in await conn.fetch("SELECT shard, chain_seq, chain_hash FROM incident_chain_heads"):
        heads[("incident_log", r["shard"])] = (r["chain_seq"], bytes(r["chain_hash"]))
    # arc.auth.access keeps access_audit's, moved with each row.
    for r in await conn.fetch("SELECT shard, chain_seq, chain_hash FROM access_audit_heads"):
        heads[("access_audit", r["shard"])] = (r["chain_seq"], bytes(r["chain_hash"]))
    return heads


async def _digests(
    conn: Connection,
    reports: dict[tuple[str, int], ChainReport],
    trusted_keys: Collection[bytes] | None,
    tables: Collection[str],
) -> dict[str, dict[int, dict[int, Digest]]]:
    """Every signed digest whose signature holds, by table, shard and chain_seq.

    A digest whose signature fails is a break at once; the others are checked
    against their row during the walk.
    """
    out: dict[str, dict[int, dict[int, Digest]]] = {}
    rows = await conn.fetch(
        "SELECT day, table_name, shard, chain_seq, head_hash, signed_at, public_key, signature"
        " FROM chain_digests ORDER BY day, table_name, shard"
    )
    for r in rows:
        digest = Digest.from_record(r)
        if digest.table in TABLES and digest.table not in tables:
            continue
        report = _report(reports, digest.table, digest.shard)
        report.digests_checked += 1
        problem: str | None = None
        try:
            if digest.table not in TABLES:
                raise DigestError(f"{digest.table!r} is not a chained table")
            verify_signature(digest)
        except DigestError as error:
            problem = f"digest of {digest.day}: {error}"
        else:
            if trusted_keys is not None and digest.public_key not in trusted_keys:
                problem = (
                    f"digest of {digest.day} is signed by key {digest.public_key.hex()}, "
                    "not the centre's"
                )
        if problem is not None:
            report.add(Break(digest.table, digest.shard, digest.chain_seq, None, None, problem))
            continue
        by_seq = out.setdefault(digest.table, {}).setdefault(digest.shard, {})
        by_seq.setdefault(digest.chain_seq, digest)
        if (
            by_seq[digest.chain_seq] is not digest
            and by_seq[digest.chain_seq].head_hash != digest.head_hash
        ):
            other = by_seq[digest.chain_seq]
            report.add(
                Break(
                    digest.table,
                    digest.shard,
                    digest.chain_seq,
                    None,
                    None,
                    f"digests of {other.day} and {digest.day} sign different hashes for one row",
                )
            )
    return out


async def _walk(
    conn: Connection,
    table: str,
    reports: dict[tuple[str, int], ChainReport],
    anchors: Mapping[tuple[str, int], Anchor],
    digests: dict[int, dict[int, Digest]],
) -> None:
    """Stream ``table`` in (shard, chain_seq) order and check every link."""
    columns = chain.COLUMNS[table]
    id_column, time_column, _ = TABLES[table]
    selected = ", ".join((*columns, "prev_hash", "hash"))
    query = f"SELECT {selected} FROM {table} ORDER BY shard, chain_seq"  # noqa: S608 - fixed names

    report: ChainReport | None = None
    expected_seq = 1
    expected_prev = chain.GENESIS
    prev_seq: int | None = None
    pending: dict[int, Digest] = {}

    def finish() -> None:
        if report is not None:
            _unmatched_digests(report, pending)

    async for batch in _batches(conn, query):
        for row in batch:
            shard: int = row["shard"]
            seq: int = row["chain_seq"]
            if report is None or shard != report.shard:
                finish()
                report = _report(reports, table, shard)
                anchor = anchors.get((table, shard))
                expected_seq = anchor.chain_seq + 1 if anchor is not None else 1
                expected_prev = anchor.hash if anchor is not None else chain.GENESIS
                prev_seq = None
                pending = dict(digests.get(shard, {}))
            report.rows += 1
            if report.first_seq is None:
                report.first_seq = seq
            prev_hash = bytes(row["prev_hash"])
            stored = bytes(row["hash"])
            problems: list[str] = []
            if seq < expected_seq:
                problems.append(
                    f"chain_seq {seq} appears twice"
                    if prev_seq == seq
                    else f"chain_seq {seq} is before the chain's start ({expected_seq})"
                )
            else:
                if seq > expected_seq:
                    problems.append(f"rows {expected_seq}..{seq - 1} are missing")
                elif prev_hash != expected_prev:
                    if prev_seq is None:
                        start = (
                            "the retention anchor"
                            if (table, shard) in anchors
                            else "the genesis hash"
                        )
                        problems.append(f"prev_hash of the first row is not {start}")
                    else:
                        problems.append(f"prev_hash does not match row {prev_seq}")
                expected_seq = seq + 1
            try:
                recomputed = chain.link(prev_hash, columns, row)
            except chain.EncodingError as error:
                problems.append(f"row cannot be encoded: {error}")
            else:
                if recomputed != stored:
                    problems.append("hash does not match its contents")
            digest = pending.pop(seq, None)
            if digest is not None and digest.head_hash != stored:
                problems.append(
                    f"digest of {digest.day} signed for hash {digest.head_hash.hex()}, "
                    f"row now hashes {stored.hex()}"
                )
            if problems:
                report.add(
                    Break(
                        table,
                        shard,
                        seq,
                        str(row[id_column]),
                        row[time_column],
                        "; ".join(problems),
                    )
                )
            # Check the next row against this one as stored: a changed row is one break.
            expected_prev = stored
            prev_seq = seq
            report.last_seq = seq
            report.head_hash = stored
    finish()
    # Chains with digests but no rows at all.
    for shard, by_seq in digests.items():
        if (table, shard) in reports and reports[(table, shard)].rows:
            continue
        _unmatched_digests(_report(reports, table, shard), dict(by_seq))


async def _batches(conn: Connection, query: str) -> AsyncIterator[list[asyncpg.Record]]:
    """The rows of ``query`` in batches, from a server-side cursor, one batch ahead.

    The next FETCH is sent before the current batch is hashed, so the server
    reads and sends rows while this process hashes: the two overlap.
    """
    cursor = await conn.cursor(query)
    ahead = asyncio.ensure_future(cursor.fetch(_PREFETCH))
    try:
        while batch := await ahead:
            ahead = asyncio.ensure_future(cursor.fetch(_PREFETCH))
            await asyncio.sleep(0)  # let it send its FETCH
            yield batch
    finally:
        if not ahead.done():
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, asyncpg.PostgresError):
                await ahead


def _unmatched_digests(report: ChainReport, pending: dict[int, Digest]) -> None:
    for seq, digest in sorted(pending.items()):
        report.add(
            Break(
                report.table,
                report.shard,
                seq,
                None,
                None,
                f"digest of {digest.day} signed row {seq} (hash {digest.head_hash.hex()}), "
                "which is missing",
            )
        )


def _check_writer_head(
    table: str,
    reports: dict[tuple[str, int], ChainReport],
    heads: Mapping[tuple[str, int], tuple[int, bytes]],
) -> None:
    """The log writer's head must be the chain's last row: rows after it were removed or forged."""
    for (head_table, shard), (seq, head_hash) in heads.items():
        if head_table != table:
            continue
        report = reports.get((table, shard))
        last = report.last_seq if report is not None else None
        if seq == 0 and last is None:
            continue  # the writer has the shard but wrote nothing yet
        report = _report(reports, table, shard)
        if last is None:
            problem = f"logwriter_state's head is row {seq}, but the chain has no rows"
        elif seq > last:
            problem = (
                f"rows {last + 1}..{seq} are missing: logwriter_state's head is row {seq}, "
                f"the chain ends at row {last}"
            )
        elif seq < last:
            problem = (
                f"rows {seq + 1}..{last} were not written by the log writer "
                f"(logwriter_state's head is row {seq})"
            )
        elif report.head_hash != head_hash:
            problem = (
                f"logwriter_state's head hash is {head_hash.hex()}, "
                f"row {last} hashes {report.head_hash.hex() if report.head_hash else None}"
            )
        else:
            continue
        report.add(Break(table, shard, last if last is not None else seq, None, None, problem))
    if TABLES[table][2] is None:
        return  # not written by the log writer
    for (report_table, shard), report in reports.items():
        if report_table == table and report.rows and (table, shard) not in heads:
            report.add(
                Break(
                    table,
                    shard,
                    report.last_seq,
                    None,
                    None,
                    "logwriter_state has no head for this shard: rows not written by the writer",
                )
            )
