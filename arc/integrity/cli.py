"""``arc verify`` and ``arc digest``: the argparse wiring, kept out of ``arc/cli.py``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from arc import db
from arc.config import Settings
from arc.integrity import digest as digests
from arc.integrity.verify import verify
from arc.model import BEIJING
from arc.runtime import admin_database

COMMANDS = ("verify", "digest")


def add_commands(subparsers: Any) -> None:
    """Add ``verify`` and ``digest`` to the ``arc`` command's subparsers."""
    subparsers.add_parser(
        "verify",
        help="walk the alarm log's hash chains and report the first broken link of each",
        description=(
            "Check every chain of signal_log, quarantine and audit_log, the log writer's "
            "heads and the signed digests. Prints one JSON object per chain, then a summary; "
            "exit status 0 if all is intact, 1 if anything is broken, 2 on error."
        ),
    )
    digest_cmd = subparsers.add_parser(
        "digest",
        help="sign each chain's head at the end of a Beijing day",
        description=(
            "Sign the chain heads at the end of a Beijing day (default: yesterday) with the "
            "centre's Ed25519 key and print the digests as JSON lines. A day signed before "
            "is printed, not signed again."
        ),
    )
    digest_cmd.add_argument("--day", type=_day, help="Beijing day, YYYY-MM-DD (default: yesterday)")
    digest_cmd.add_argument(
        "--public-key", action="store_true", help="print the centre's public key (PEM) and exit"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``args.command`` (one of ``COMMANDS``); return the exit status."""
    settings = Settings()
    try:
        if args.command == "verify":
            return asyncio.run(_verify(settings))
        if args.public_key:
            sys.stdout.buffer.write(digests.public_key_pem(settings))
            return 0
        day = args.day or (datetime.now(BEIJING).date() - timedelta(days=1))
        return asyncio.run(_digest(settings, day))
    except digests.DigestError as error:
        print(f"arc {args.command}: {error}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError) as error:
        print(f"arc {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


async def _verify(settings: Settings) -> int:
    trusted = None
    if digests.key_path(settings).exists():
        # Digests must be signed by this centre's key, not merely by some key.
        key = await asyncio.to_thread(digests.load_key, settings, create=False)
        trusted = {digests.public_key_raw(key)}
    async with admin_database(settings) as dsn:
        conn = await db.connect(dsn, application_name="arc verify")
        try:
            report = await verify(conn=conn, trusted_keys=trusted)
        finally:
            await conn.close()
    out = sys.stdout.buffer
    for chain_report in report.chains:
        out.write(orjson.dumps(chain_report.to_json()) + b"\n")
    out.write(orjson.dumps(report.summary()) + b"\n")
    out.flush()
    print(f"arc verify: {report.human()}", file=sys.stderr)
    return 0 if report.intact else 1


async def _digest(settings: Settings, day: date) -> int:
    async with admin_database(settings) as dsn:
        conn = await db.connect(dsn, application_name="arc digest")
        try:
            signed = await digests.sign_day(conn=conn, settings=settings, day=day)
        finally:
            await conn.close()
    out = sys.stdout.buffer
    for item in signed:
        out.write(orjson.dumps(item.to_json()) + b"\n")
    out.flush()
    print(f"arc digest: {len(signed)} chains signed for {day} (Beijing)", file=sys.stderr)
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None
