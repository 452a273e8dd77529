"""Signed daily digests of the chain heads (``arc digest``), and their check.

Each chain's head at the end of a Beijing day (its last row received before
the next day's 00:00+08) is signed with the centre's Ed25519 key and kept in
``chain_digests``. A digest handed to a regulator pins everything up to that
row: rewriting the chain, hashes and all, changes the head, and only the key
can sign a new one. ``check_digest`` is all a regulator needs, with the
centre's public key (``arc digest --public-key``).

The signed message is the canonical JSON (sorted keys, no whitespace, UTF-8)
of ``{"chain_seq", "day", "head_hash" (hex), "shard", "table"}``.

The key lives in ``data_dir/keys/digest-ed25519.pem``: PKCS#8 PEM encrypted
with ``ARC_MASTER_KEY``, mode 0600, made on first use. Neither it nor the
master key is ever logged or printed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from arc import chain
from arc.config import Settings
from arc.db import Connection
from arc.model import BEIJING

logger = logging.getLogger(__name__)


KEY_FILE = Path("keys") / "digest-ed25519.pem"
# The chained tables and the column that places a row in a day.
DAY_COLUMNS: Mapping[str, str] = {
    "signal_log": "received_at",
    "quarantine": "received_at",
    "audit_log": "at",
    "incident_log": "at",
    "access_audit": "at",
}
# pg_advisory_xact_lock key for signing: "ARC_DGST" as a big-endian bigint.
_LOCK_KEY = int.from_bytes(b"ARC_DGST", "big")


class DigestError(RuntimeError):
    """A digest cannot be made or does not hold."""


@dataclass(frozen=True, slots=True)
class Digest:
    """One chain's signed head at the end of one Beijing day."""

    day: date
    table: str
    shard: int
    chain_seq: int
    head_hash: bytes
    signed_at: datetime
    public_key: bytes  # raw Ed25519, 32 bytes
    signature: bytes

    def message(self) -> bytes:
        """The bytes that are signed."""
        return signed_message(self.day, self.table, self.shard, self.chain_seq, self.head_hash)

    def to_json(self) -> dict[str, Any]:
        """The digest as handed to a regulator (``check_digest`` reads it)."""
        return {
            "day": self.day.isoformat(),
            "table": self.table,
            "shard": self.shard,
            "chain_seq": self.chain_seq,
            "head_hash": self.head_hash.hex(),
            "signed_at": self.signed_at.isoformat(),
            "public_key": self.public_key.hex(),
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_record(cls, row: chain.Row) -> Digest:
        """A ``chain_digests`` row."""
        return cls(
            day=row["day"],
            table=row["table_name"],
            shard=row["shard"],
            chain_seq=row["chain_seq"],
            head_hash=bytes(row["head_hash"]),
            signed_at=row["signed_at"],
            public_key=bytes(row["public_key"]),
            signature=bytes(row["signature"]),
        )


def signed_message(day: date, table: str, shard: int, chain_seq: int, head_hash: bytes) -> bytes:
    """The canonical JSON that a digest's signature covers."""
    return orjson.dumps(
        {
            "day": day.isoformat(),
            "table": table,
            "shard": shard,
            "chain_seq": chain_seq,
            "head_hash": head_hash.hex(),
        },
        option=orjson.OPT_SORT_KEYS,
    )


def verify_signature(digest: Digest) -> None:
    """Raise ``DigestError`` unless the digest's signature holds for its public key."""
    try:
        key = Ed25519PublicKey.from_public_bytes(digest.public_key)
    except ValueError:
        raise DigestError("its public key is not an Ed25519 key") from None
    try:
        key.verify(digest.signature, digest.message())
    except InvalidSignature:
        raise DigestError("signature does not hold for its public key") from None


def check_digest(digest_json: str | bytes | Mapping[str, Any], public_key_pem: str | bytes) -> bool:
    """Whether a digest (as ``Digest.to_json`` gives it) is signed by this PEM public key.

    Needs nothing of ARC but this function: a regulator can run it (or its
    equivalent with any Ed25519 library) on the digests handed over.
    """
    try:
        data = orjson.loads(digest_json) if isinstance(digest_json, str | bytes) else digest_json
        pem = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, Ed25519PublicKey):
            return False
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if "public_key" in data and bytes.fromhex(data["public_key"]) != raw:
            return False
        message = signed_message(
            date.fromisoformat(data["day"]),
            str(data["table"]),
            int(data["shard"]),
            int(data["chain_seq"]),
            bytes.fromhex(data["head_hash"]),
        )
        key.verify(bytes.fromhex(data["signature"]), message)
    except (InvalidSignature, ValueError, TypeError, KeyError):
        return False
    return True


def key_path(settings: Settings) -> Path:
    """Where the digest-signing key is kept."""
    return settings.data_dir / KEY_FILE


def load_key(settings: Settings, *, create: bool = True) -> Ed25519PrivateKey:
    """The centre's digest-signing key, made (and saved) on first use."""
    path = key_path(settings)
    password = settings.master_key.get_secret_value().encode()
    if not path.exists():
        if not create:
            raise DigestError(f"no digest key at {path} (arc digest makes one)")
        _create_key(path, password)
    mode = path.stat().st_mode
    if mode & 0o077:
        logger.warning("%s is readable by other users (mode %o); make it 0600", path, mode & 0o777)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=password)
    except (ValueError, TypeError):
        # Never the key or the master key in the message.
        raise DigestError(
            f"cannot open the digest key {path}: ARC_MASTER_KEY is not the one it was made with, "
            "or the file is damaged"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DigestError(f"{path} is not an Ed25519 key")
    return key


def _create_key(path: Path, password: bytes) -> None:
    """Write a new key, atomically: a process that races us finds one whole file or none."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # never replaces a key another process made first
        except FileExistsError:
            return
        logger.info("made a new digest-signing key in %s", path)
    finally:
        temporary.unlink(missing_ok=True)


def public_key_raw(key: Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of the key's public half."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(settings: Settings) -> bytes:
    """The centre's digest public key, SubjectPublicKeyInfo PEM, to hand to a regulator."""
    return (
        load_key(settings)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def day_end(day: date) -> datetime:
    """The instant a Beijing day ends: the next day's 00:00+08."""
    return datetime.combine(day + timedelta(days=1), time(), BEIJING)


async def sign_day(
    *, conn: Connection, settings: Settings, day: date, now: datetime | None = None
) -> list[Digest]:
    """Sign every chain's head at the end of Beijing ``day``; a chain signed before is kept.

    Refused for a day that has not ended: its heads would still move.
    """
    end = day_end(day)
    if (now or datetime.now(UTC)) < end:
        raise DigestError(f"{day} has not ended in Beijing yet: it cannot be signed")
    # Decrypting the key (scrypt or PBKDF2) takes a while: not on the event loop.
    key = await asyncio.to_thread(load_key, settings)
    public = public_key_raw(key)
    async with conn.transaction():
        # One signer at a time, so a day is signed once whoever runs `arc digest`.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        rows = await conn.fetch(
            "SELECT day, table_name, shard, chain_seq, head_hash, signed_at, public_key,"
            " signature FROM chain_digests WHERE day = $1",
            day,
        )
        digests = {(r["table_name"], r["shard"]): Digest.from_record(r) for r in rows}
        signed_at: datetime = await conn.fetchval("SELECT now()")
        for table, column in DAY_COLUMNS.items():
            for shard, seq, head_hash in await _heads(conn, table, column, end):
                if (table, shard) in digests:
                    continue
                message = signed_message(day, table, shard, seq, head_hash)
                digest = Digest(
                    day, table, shard, seq, head_hash, signed_at, public, key.sign(message)
                )
                await conn.execute(
                    "INSERT INTO chain_digests (day, table_name, shard, chain_seq, head_hash,"
                    " signed_at, public_key, signature) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    day,
                    table,
                    shard,
                    seq,
                    head_hash,
                    signed_at,
                    public,
                    digest.signature,
                )
                digests[(table, shard)] = digest
    order = list(DAY_COLUMNS)
    return sorted(digests.values(), key=lambda d: (order.index(d.table), d.shard))


async def _heads(
    conn: Connection, table: str, column: str, end: datetime
) -> list[tuple[int, int, bytes]]:
    """(shard, chain_seq, hash) of each chain's last row before ``end``."""
    # Shards by a loose index scan on the primary key (shard, chain_seq, ...):
    # one index probe per shard, not a scan of a month of rows.
    shards = await conn.fetch(
        f"""
        WITH RECURSIVE s(shard) AS (
            (SELECT shard FROM {table} WHERE {column} < $1 ORDER BY shard LIMIT 1)
            UNION ALL
            SELECT (SELECT t.shard FROM {table} t
                    WHERE t.shard > s.shard AND t.{column} < $1 ORDER BY t.shard LIMIT 1)
            FROM s WHERE s.shard IS NOT NULL
        )
        SELECT shard FROM s WHERE shard IS NOT NULL
        """,  # noqa: S608 - fixed table and column names
        end,
    )
    heads = []
    for r in shards:
        head = await conn.fetchrow(
            f"SELECT chain_seq, hash FROM {table} WHERE shard = $1 AND {column} < $2"  # noqa: S608
            " ORDER BY chain_seq DESC LIMIT 1",
            r["shard"],
            end,
        )
        if head is not None:
            heads.append((r["shard"], head["chain_seq"], bytes(head["hash"])))
    return heads
