"""``arc incidents``, ``arc false-alarms``, ``arc storm``: the dispatcher's records and switches.

Reading alarm records is audited (REGULATION.md R5): each listing writes an
``audit_log`` row naming who asked, the filter and how many incidents it showed.
``arc storm start|stop`` switch a class to storm mode and back, each audited
with the change (``arc.dispatch.storm_store``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from arc import audit, runtime
from arc.config import Settings
from arc.dispatch import false_alarms, storm_store
from arc.dispatch.classification import CLASS_NAMES_ZH, CLASSES
from arc.dispatch.storm import MODE_NAMES_ZH, Storm, StormMode, StormRefused
from arc.model import BEIJING
from arc.terminal import print_table

COMMANDS = ("incidents", "false-alarms", "storm")

# The queue leaves out incidents held by storm mode (delay) until their hold
# ends; --all shows them, and the closed ones.
_QUERY = """
SELECT incident_id, account, event_class, grade, status, title, opened_at, signal_count,
       restored, confirmed, owner, guard, escalation_level,
       (state->>'held_until')::timestamptz AS held_until, state->>'storm' AS storm,
       coalesce(state->'accounts', '[]'::jsonb) AS accounts,
       coalesce((state->>'false_alarms_12m')::integer, 0) AS false_alarms_12m,
       state->>'warning' AS warning
FROM incidents
WHERE ($1 OR (status <> 'closed'
              AND (state->>'held_until' IS NULL OR (state->>'held_until')::timestamptz <= now())))
  AND ($2::text IS NULL OR account = $2)
ORDER BY grade, opened_at
LIMIT $3
"""

_FALSE_ALARMS = """
SELECT i.account, coalesce(a.name, '') AS name, count(*) AS false_alarms,
       max(i.closed_at) AS last_closed_at
FROM incidents i LEFT JOIN accounts a ON a.account = i.account
WHERE i.resolution = 'false_alarm' AND i.closed_at > $1 AND ($2::text IS NULL OR i.account = $2)
GROUP BY i.account, a.name
HAVING count(*) >= $3
ORDER BY count(*) DESC, i.account
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
    _add_false_alarms(commands)
    _add_storm(commands)


def _add_false_alarms(commands: Any) -> None:
    cmd = commands.add_parser(
        "false-alarms",
        help="list accounts by their false alarms in the last 12 months (audited)",
        description=(
            "List accounts by their incidents closed as false_alarm in the last 365 days, most "
            "first, against ARC_FALSE_ALARM_LIMIT (after which the local police stop "
            "responding). Each listing is audited."
        ),
    )
    cmd.add_argument("--account", help="one account's only")
    cmd.add_argument(
        "--at-least", type=int, default=1, metavar="N", help="accounts with N or more (1)"
    )
    cmd.add_argument("--json", action="store_true", help="one JSON array")


def _add_storm(commands: Any) -> None:
    storm = commands.add_parser(
        "storm",
        help="switch a class of signals to storm mode and back (audited)",
        description=(
            "Storm mode: while a class floods in (a power cut across a district), log, group or "
            "delay its new incidents of grade 2-3; grade 1 is always handled as usual. A storm "
            "ends by itself (at most 24 h). Each start and stop is audited."
        ),
    )
    actions = storm.add_subparsers(dest="storm_action", required=True)
    start = actions.add_parser(
        "start",
        help="switch a class to storm mode",
        description="Switch CLASS to storm mode for --minutes (at most 1440), with a reason.",
    )
    start.add_argument("event_class", metavar="CLASS", help=", ".join(sorted(CLASSES)))
    start.add_argument(
        "--mode",
        required=True,
        choices=[m.value for m in StormMode],
        help="log: record and close automatically; group: one incident per shard; "
        "delay: hold new incidents for --delay seconds, closing those restored meanwhile",
    )
    start.add_argument(
        "--delay", type=float, metavar="SECONDS", help="mode delay: seconds (at most 600)"
    )
    start.add_argument("--minutes", type=float, required=True, help="until it ends by itself")
    start.add_argument("--reason", required=True, help="why (recorded)")
    stop = actions.add_parser(
        "stop", help="end a class's storm mode now", description="End CLASS's storm mode now."
    )
    stop.add_argument("event_class", metavar="CLASS")
    stop.add_argument("--reason", required=True, help="why (recorded)")
    listing = actions.add_parser(
        "list",
        help="the storms in force, and those ended lately",
        description="List the storms in force and those that ended in the last --hours.",
    )
    listing.add_argument(
        "--hours", type=float, default=24, help="also those ended this many hours ago (24)"
    )
    listing.add_argument("--json", action="store_true", help="one JSON array")


def run(args: argparse.Namespace) -> int:
    """Run ``arc incidents``, ``arc false-alarms`` or ``arc storm``; return the exit status."""
    name = f"arc {args.command}"
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"{name}: configuration: {error}", file=sys.stderr)
        return 1
    try:
        if args.command == "storm":
            return asyncio.run(_storm(settings, args))
        if args.command == "false-alarms":
            return asyncio.run(_false_alarms(settings, args))
        return asyncio.run(_list(settings, args))
    except runtime.DatabaseUnavailable as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    except StormRefused as refused:
        print(f"{name}: {refused}", file=sys.stderr)
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
        data = [
            {
                **dict(r),
                "incident_id": str(r["incident_id"]),
                "accounts": orjson.loads(r["accounts"]),
            }
            for r in rows
        ]
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    table = [("GRADE", "OPENED (北京时间)", "ACCOUNT", "STATUS", "SIGNALS", "TITLE")]
    notes: dict[int, list[str]] = {}
    for r in rows:
        marks = (" 已恢复" if r["restored"] else "") + (" 已确认" if r["confirmed"] else "")
        if r["held_until"] is not None:
            marks += f" 暂缓至 held until {_beijing(r['held_until'], '%H:%M:%S')}"
        below = [r["warning"]] if r["warning"] else []
        if r["storm"] == StormMode.GROUP:
            accounts = orjson.loads(r["accounts"])
            below.append(f"用户 {len(accounts)} 个 accounts: {', '.join(accounts)}")
        if below:
            notes[len(table)] = below
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
    print_table(table, notes)
    print(f"{len(rows)} incident{'s' if len(rows) != 1 else ''}")
    return 0


def _beijing(at: datetime, form: str = "%Y-%m-%d %H:%M:%S") -> str:
    return at.astimezone(BEIJING).strftime(form)


async def _false_alarms(settings: Settings, args: argparse.Namespace) -> int:
    limit = settings.false_alarm_limit
    async with runtime.admin_connection(settings, application_name="arc-false-alarms") as conn:
        async with conn.transaction():  # the read and its audit row, together
            since = datetime.now(UTC) - false_alarms.WINDOW
            rows = await conn.fetch(_FALSE_ALARMS, since, args.account, max(args.at_least, 1))
            await audit.record(
                conn=conn,
                actor=audit.cli_actor(),
                action="incidents.false_alarms",
                subject="incidents",
                details={"account": args.account, "at_least": args.at_least, "shown": len(rows)},
            )
    listed = [
        {
            "account": r["account"],
            "name": r["name"],
            "false_alarms_12m": r["false_alarms"],
            "limit": limit,
            "last_closed_at": r["last_closed_at"].isoformat(),
            "warning": false_alarms.warning(r["false_alarms"], limit),
        }
        for r in rows
    ]
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(listed, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    table = [("ACCOUNT", "NAME", "FALSE ALARMS (12 个月)", "LAST (北京时间)", "STATE")]
    for item, r in zip(listed, rows, strict=True):
        count = r["false_alarms"]
        state = (
            "已达上限 limit reached"
            if count >= limit
            else "预警 warning"
            if item["warning"]
            else ""
        )
        table.append(
            (
                item["account"],
                item["name"],
                f"{count} / {limit}",
                _beijing(r["last_closed_at"]),
                state,
            )
        )
    print_table(table)
    print(f"{len(rows)} account{'s' if len(rows) != 1 else ''}; the police's limit: {limit}")
    return 0


async def _storm(settings: Settings, args: argparse.Namespace) -> int:
    async with runtime.admin_connection(settings, application_name="arc-storm") as conn:
        if args.storm_action == "start":
            started = await storm_store.start_storm(
                conn=conn,
                event_class=args.event_class,
                mode=args.mode,
                minutes=args.minutes,
                delay_seconds=args.delay,
                reason=args.reason,
                actor=audit.cli_actor(),
            )
            print(
                f"风暴模式已开启 storm mode on: {_class_name(started.event_class)}"
                f" {_mode_name(started)} until {_beijing(started.ends_at)} (北京时间);"
                " 一级警情照常处理 grade 1 is handled as usual"
            )
            return 0
        if args.storm_action == "stop":
            stopped = await storm_store.stop_storm(
                conn=conn, event_class=args.event_class, reason=args.reason, actor=audit.cli_actor()
            )
            print(
                f"风暴模式已结束 storm mode off: {_class_name(stopped.event_class)}"
                f" at {_beijing(stopped.until)} (北京时间)"
            )
            return 0
        now = datetime.now(UTC)
        storms = await storm_store.list_storms(
            conn=conn, now=now, ended_since=now - timedelta(hours=max(args.hours, 0))
        )
    if args.json:
        data = [_storm_json(s, now) for s in storms]
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    table = [("CLASS", "MODE", "FROM (北京时间)", "UNTIL", "STATE", "BY", "REASON")]
    for s in storms:
        table.append(
            (
                _class_name(s.event_class),
                _mode_name(s),
                _beijing(s.started_at),
                _beijing(s.until),
                _state(s, now),
                s.started_by,
                s.reason + (f" / 结束 stopped: {s.stop_reason}" if s.stop_reason else ""),
            )
        )
    print_table(table)
    active = sum(1 for s in storms if s.active(now))
    print(f"{active} in force, {len(storms) - active} ended in the last {args.hours:g} h")
    return 0


def _class_name(event_class: str) -> str:
    return f"{CLASS_NAMES_ZH.get(event_class, event_class)} {event_class}"


def _mode_name(storm: Storm) -> str:
    name = f"{MODE_NAMES_ZH[storm.mode]} {storm.mode.value}"
    if storm.delay is not None:
        name += f" {storm.delay.total_seconds():g} s"
    return name


def _state(storm: Storm, now: datetime) -> str:
    if storm.active(now):
        return "生效 in force"
    return "已停止 stopped" if storm.stopped_at is not None else "已到期 ended"


def _storm_json(storm: Storm, now: datetime) -> dict[str, Any]:
    return {
        "storm_id": str(storm.storm_id),
        "event_class": storm.event_class,
        "mode": storm.mode.value,
        "delay_seconds": None if storm.delay is None else storm.delay.total_seconds(),
        "started_at": storm.started_at.isoformat(),
        "ends_at": storm.ends_at.isoformat(),
        "until": storm.until.isoformat(),
        "active": storm.active(now),
        "reason": storm.reason,
        "started_by": storm.started_by,
        "stopped_at": None if storm.stopped_at is None else storm.stopped_at.isoformat(),
        "stopped_by": storm.stopped_by,
        "stop_reason": storm.stop_reason,
    }
