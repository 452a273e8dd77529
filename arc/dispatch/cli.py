"""``arc incidents``: the queue as the dispatcher keeps it, from the command line.

Reading alarm records is audited (REGULATION.md R5): each listing writes an
``audit_log`` row naming who asked, the filter and how many incidents it showed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson
from pydantic import ValidationError

from arc import audit, runtime
from arc.config import Settings
from arc.model import BEIJING
from arc.terminal import print_table

COMMANDS = ("incidents",)

_QUERY = """
SELECT incident_id, account, event_class, grade, status, title, opened_at, signal_count,
       restored, confirmed, owner, guard, escalation_level
FROM incidents
WHERE ($1 OR status <> 'closed') AND ($2::text IS NULL OR account = $2)
ORDER BY grade, opened_at
LIMIT $3
"""


def add_commands(commands: Any) -> None:
    """Register ``arc incidents``."""
    cmd = commands.add_parser(
        "incidents",
        help="list the open incidents, most urgent first (audited)",
        description="List incidents by grade, then age (Beijing time). Each listing is audited.",
    )
    cmd.add_argument("--all", action="store_true", help="closed ones too")
    cmd.add_argument("--account", help="one account's only")
    cmd.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    cmd.add_argument("--json", action="store_true", help="one JSON array")


def run(args: argparse.Namespace) -> int:
    """Run ``arc incidents``; return the exit status."""
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"arc incidents: configuration: {error}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_list(settings, args))
    except runtime.DatabaseUnavailable as error:
        print(f"arc incidents: {error}", file=sys.stderr)
        return 1


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    async with runtime.admin_connection(settings, application_name="arc-incidents") as conn:
        async with conn.transaction():  # the read and its audit row, together
            rows = await conn.fetch(_QUERY, args.all, args.account, max(args.limit, 1))
            await audit.record(
                conn=conn,
                actor=audit.cli_actor(),
                action="incidents.list",
                subject="incidents",
                details={"all": args.all, "account": args.account, "shown": len(rows)},
            )
    if args.json:
        data = [{**dict(r), "incident_id": str(r["incident_id"])} for r in rows]
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    table = [("GRADE", "OPENED (北京时间)", "ACCOUNT", "STATUS", "SIGNALS", "TITLE")]
    for r in rows:
        marks = (" 已恢复" if r["restored"] else "") + (" 已确认" if r["confirmed"] else "")
        table.append(
            (
                str(r["grade"]),
                r["opened_at"].astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
                r["account"],
                r["status"],
                str(r["signal_count"]),
                r["title"] + marks,
            )
        )
    print_table(table)
    print(f"{len(rows)} incident{'s' if len(rows) != 1 else ''}")
    return 0
