"""Accounts' sites in the database: address and position, zones, keyholders, open hours.

Every change is audited (``arc.audit.record``) in the transaction that makes
it, and the tables' triggers tell dispatchers to reload (NOTIFY arc_rules)
when it commits: zone technologies decide two-technology confirmation and
schedules the open/close supervision (arc/dispatch/engine.py). An account is
named as the administrator types it, whatever its letter case; it must exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from arc import audit
from arc.accounts.models import (
    KeyholderIn,
    SiteIn,
    SiteOut,
    Technology,
    ZoneIn,
    ZoneOut,
    zone_key,
)
from arc.accounts.schedule import Schedule, from_rows, to_rows
from arc.accounts.service import AccountError, _out
from arc.db import Connection

_ACCOUNT_COLUMNS = (
    "account, name, key_ciphertext, key_format, link_test_seconds, utc_offset_minutes, "
    "timestamp_ahead, timestamp_behind, drift_action, enabled, created_at, updated_at"
)
# The zone number as the dispatcher compares it, in SQL (as zone_key and 0006's index).
_ZONE_KEY = "COALESCE(NULLIF(ltrim(zone, '0'), ''), '0')"


class AccountNotFound(AccountError):
    """No account has that id (in any letter case)."""

    def __init__(self, account: str) -> None:
        super().__init__(f"no account {account}: add it first (arc account add {account})")
        self.account = account


async def _account(conn: Connection, account: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE upper(account) = upper($1)",  # noqa: S608 - fixed names
        account.strip(),
    )
    if row is None:
        raise AccountNotFound(account.strip())
    return row


def _masked(phone: str) -> str:
    # The audit log is read by every role that reads it: enough to tell numbers apart.
    digits = [c for c in phone if c.isdigit()]
    return "*" * max(len(digits) - 4, 0) + "".join(digits[-4:])


async def set_site(*, conn: Connection, account: str, site: SiteIn, actor: str) -> SiteOut:
    """Record (or overwrite) the account's address, position and beat."""
    async with conn.transaction():
        name = (await _account(conn, account))["account"]
        await conn.execute(
            "INSERT INTO account_sites (account, address, latitude, longitude, beat)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account) DO UPDATE SET"
            " address = EXCLUDED.address, latitude = EXCLUDED.latitude,"
            " longitude = EXCLUDED.longitude, beat = EXCLUDED.beat",
            name,
            site.address,
            site.latitude,
            site.longitude,
            site.beat,
        )
        await audit.record(
            conn=conn,
            actor=actor,
            action="account.site",
            subject=f"account:{name}",
            details={
                "address": site.address,
                "latitude": site.latitude,
                "longitude": site.longitude,
                "beat": site.beat,
            },
        )
    return await show_site(conn=conn, account=name)


async def set_zone(*, conn: Connection, account: str, zone: ZoneIn, actor: str) -> ZoneOut:
    """Record a zone's name and technology; "3" and "003" are one zone (the new spelling stays)."""
    async with conn.transaction():
        name = (await _account(conn, account))["account"]
        before = await conn.fetchrow(
            f"DELETE FROM account_zones WHERE account = $1 AND {_ZONE_KEY} = $2"  # noqa: S608 - fixed SQL
            " RETURNING zone, name, technology",
            name,
            zone_key(zone.zone),
        )
        row = await conn.fetchrow(
            "INSERT INTO account_zones (account, zone, name, technology) VALUES ($1, $2, $3, $4)"
            " RETURNING zone, name, technology, updated_at",
            name,
            zone.zone,
            zone.name,
            zone.technology.value,
        )
        assert row is not None  # noqa: S101 - INSERT ... RETURNING returns its row
        await audit.record(
            conn=conn,
            actor=actor,
            action="account.zone",
            subject=f"account:{name}",
            details={
                "zone": zone.zone,
                "name": zone.name,
                "technology": zone.technology.value,
                "before": None if before is None else dict(before),
            },
        )
    return ZoneOut.model_validate(dict(row))


async def remove_zone(*, conn: Connection, account: str, zone: str, actor: str) -> bool:
    """Forget a zone's record (its signals are still handled); False if it had none."""
    async with conn.transaction():
        name = (await _account(conn, account))["account"]
        before = await conn.fetchrow(
            f"DELETE FROM account_zones WHERE account = $1 AND {_ZONE_KEY} = $2"  # noqa: S608 - fixed SQL
            " RETURNING zone, name, technology",
            name,
            zone_key(zone.strip()),
        )
        if before is None:
            return False
        await audit.record(
            conn=conn,
            actor=actor,
            action="account.zone_remove",
            subject=f"account:{name}",
            details={"zone": before["zone"], "before": dict(before)},
        )
    return True


async def set_keyholders(
    *, conn: Connection, account: str, keyholders: Sequence[KeyholderIn], actor: str
) -> tuple[KeyholderIn, ...]:
    """Replace the account's keyholders with ``keyholders``, called in that order."""
    async with conn.transaction():
        name = (await _account(conn, account))["account"]
        await conn.execute("DELETE FROM account_keyholders WHERE account = $1", name)
        if keyholders:
            await conn.executemany(
                "INSERT INTO account_keyholders (account, position, name, phone, relation)"
                " VALUES ($1, $2, $3, $4, $5)",
                [
                    (name, position, k.name, k.phone, k.relation)
                    for position, k in enumerate(keyholders, start=1)
                ],
            )
        await audit.record(
            conn=conn,
            actor=actor,
            action="account.keyholders",
            subject=f"account:{name}",
            details={
                "keyholders": [
                    {"name": k.name, "phone": _masked(k.phone), "relation": k.relation}
                    for k in keyholders
                ]
            },
        )
    return tuple(keyholders)


async def set_schedule(
    *, conn: Connection, account: str, schedule: Schedule | None, actor: str
) -> Schedule | None:
    """Replace the account's open hours (None: no schedule, not supervised)."""
    async with conn.transaction():
        name = (await _account(conn, account))["account"]
        await conn.execute("DELETE FROM account_schedules WHERE account = $1", name)
        if schedule is not None:
            await conn.executemany(
                "INSERT INTO account_schedules (account, weekday, opens, closes)"
                " VALUES ($1, $2, $3, $4)",
                [(name, *row) for row in to_rows(schedule)],
            )
        await audit.record(
            conn=conn,
            actor=actor,
            action="account.schedule",
            subject=f"account:{name}",
            details={"schedule": None if schedule is None else schedule.lines()},
        )
    return schedule


async def get_site(*, conn: Connection, account: str) -> SiteIn:
    """The account's address, position and beat as recorded (empty when none is)."""
    name = (await _account(conn, account))["account"]
    row = await conn.fetchrow(
        "SELECT address, latitude, longitude, beat FROM account_sites WHERE account = $1", name
    )
    return SiteIn() if row is None else SiteIn.model_validate(dict(row))


async def get_schedule(*, conn: Connection, account: str) -> Schedule | None:
    """The account's open hours, None when it has none."""
    rows = await conn.fetch(
        "SELECT weekday, opens, closes FROM account_schedules WHERE account = $1", account
    )
    return from_rows((r["weekday"], r["opens"], r["closes"]) for r in rows) if rows else None


async def show_site(*, conn: Connection, account: str) -> SiteOut:
    """Everything recorded about the account and its site."""
    found = await _account(conn, account)
    name = found["account"]
    site = await conn.fetchrow(
        "SELECT address, latitude, longitude, beat, updated_at FROM account_sites"
        " WHERE account = $1",
        name,
    )
    zones = await conn.fetch(
        f"SELECT zone, name, technology, updated_at FROM account_zones WHERE account = $1"  # noqa: S608 - fixed SQL
        f" ORDER BY length({_ZONE_KEY}), {_ZONE_KEY}",
        name,
    )
    keyholders = await conn.fetch(
        "SELECT name, phone, relation FROM account_keyholders WHERE account = $1 ORDER BY position",
        name,
    )
    schedule = await get_schedule(conn=conn, account=name)
    empty: dict[str, Any] = {"address": "", "latitude": None, "longitude": None, "beat": None}
    where = empty if site is None else dict(site)
    return SiteOut(
        account=_out(found),
        address=where["address"],
        latitude=where["latitude"],
        longitude=where["longitude"],
        beat=where["beat"],
        zones=tuple(ZoneOut.model_validate(dict(z)) for z in zones),
        keyholders=tuple(KeyholderIn.model_validate(dict(k)) for k in keyholders),
        schedule=() if schedule is None else tuple(schedule.lines()),
        site_updated_at=None if site is None else site["updated_at"],
    )


async def load_zone_technologies(*, conn: Connection) -> dict[str, dict[str, Technology]]:
    """Every recorded zone's technology: account -> zone number (no leading zeros) -> it."""
    rows = await conn.fetch("SELECT account, zone, technology FROM account_zones")
    found: dict[str, dict[str, Technology]] = {}
    for r in rows:
        found.setdefault(r["account"], {})[zone_key(r["zone"])] = Technology(r["technology"])
    return found


async def load_schedules(*, conn: Connection) -> dict[str, Schedule]:
    """Every enabled account's open hours, by account."""
    rows = await conn.fetch(
        "SELECT s.account, s.weekday, s.opens, s.closes FROM account_schedules s"
        " JOIN accounts a USING (account) WHERE a.enabled ORDER BY s.account"
    )
    grouped: dict[str, list[tuple[int, int | None, int | None]]] = {}
    for r in rows:
        grouped.setdefault(r["account"], []).append((r["weekday"], r["opens"], r["closes"]))
    return {account: from_rows(items) for account, items in grouped.items()}
