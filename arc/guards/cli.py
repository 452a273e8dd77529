"""`arc staff add | list | import | propose`, `arc rules staffing`: staff and 表1, by command.

The other ``arc rules`` subcommands (classification and response plans, R4)
are ``arc.dispatch.rules_cli``'s, added to the same parser.

``arc rules staffing --customers N`` needs no database: it prints what 表1
requires. Everything else works on the centre's database, found as ``arc
account`` finds it (``arc.runtime``). Exit status: 0 done, 1 refused (bad
input, duplicate, database error), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time

import orjson
from pydantic import ValidationError

from arc import audit, runtime
from arc.config import Settings
from arc.dispatch import rules_cli
from arc.guards import service, staffing
from arc.guards.models import StaffIn, StaffOut, parse_position, parse_shift
from arc.guards.staffing import Category
from arc.imports import ImportRejected, UnreadableFile, read_text
from arc.model import BEIJING
from arc.terminal import print_table

COMMANDS = ("staff", "rules")

CSV_HELP = """\
The file is CSV (UTF-8; --encoding gb18030 for a file saved by Chinese Excel as
"CSV") with a header row naming its columns, in any order. Required: name,
category, date_of_birth.

  staff_id             to replace that person's record (empty: matched by certificate)
  name                 姓名
  category             patrol_response (现场处置巡逻), duty_operators (人工值守),
                       design_installation (设计施工)
  certificate_no       保安员证号 (with certificate_expires, the last valid day)
  certificate_expires  YYYY-MM-DD
  exam_passed_on       公安机关考试, YYYY-MM-DD (empty: not passed)
  trained_on           the employer's training, YYYY-MM-DD (empty: not trained)
  date_of_birth        YYYY-MM-DD
  beat                 patrol beat (巡逻区域)
  shift                HH:MM-HH:MM, Beijing time; 20:00-08:00 wraps midnight
  latitude, longitude  last known position, degrees
  active               true or false (empty: true)

The option names of `arc staff add` (certificate, exam_passed, trained, born)
are accepted as column names too. A row with the staff_id or the certificate
number of someone already stored replaces their record (their last known
position is kept when the file has no position columns); other rows add
people. Every row is checked before anything is written: one bad row and
nothing is imported, and every bad line is listed."""

# StaffIn's fields as `arc staff add` names them, for error messages.
_FLAGS = {
    "name": "--name",
    "category": "--category",
    "certificate_no": "--certificate",
    "certificate_expires": "--certificate-expires",
    "exam_passed_on": "--exam-passed",
    "trained_on": "--trained",
    "date_of_birth": "--born",
    "beat": "--beat",
    "shift_start": "--shift",
    "shift_end": "--shift",
    "latitude": "--position",
    "longitude": "--position",
}


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``staff`` and ``rules`` and their subcommands to the ``arc`` parser."""
    staff = subparsers.add_parser(
        "staff",
        help="add, list and import the centre's staff (guards, operators, installers)",
        description="Manage the staff counted against 联网报警运营规范 §5.2 表1. Only staff "
        "who qualify (18 or older, examination passed, trained, valid 保安员证) count.",
    )
    commands = staff.add_subparsers(dest="staff_command", required=True)

    add = commands.add_parser("add", help="add a member of staff, or replace one with --replace")
    add.add_argument("--name", required=True, help="姓名")
    add.add_argument("--category", required=True, choices=[c.value for c in Category])
    add.add_argument("--certificate", metavar="NUMBER", help="保安员证号")
    add.add_argument("--certificate-expires", type=_day, metavar="YYYY-MM-DD")
    add.add_argument(
        "--exam-passed", type=_day, metavar="YYYY-MM-DD", help="公安机关考试 passed on"
    )
    add.add_argument("--trained", type=_day, metavar="YYYY-MM-DD", help="employer's training")
    add.add_argument("--born", type=_day, required=True, metavar="YYYY-MM-DD")
    add.add_argument("--beat", help="patrol beat (巡逻区域)")
    add.add_argument(
        "--shift", type=_shift, metavar="HH:MM-HH:MM", help="daily, Beijing time; may wrap"
    )
    add.add_argument("--position", type=_position, metavar="LAT,LON", help="last known position")
    add.add_argument("--inactive", action="store_true", help="store, but do not count or assign")
    add.add_argument("--replace", type=uuid.UUID, metavar="STAFF_ID", help="overwrite this one")

    listing = commands.add_parser("list", help="show the staff and whether each qualifies")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    listing.add_argument("--on", type=_day, metavar="YYYY-MM-DD", help="judge on (default: today)")

    importing = commands.add_parser(
        "import",
        help="import staff from a CSV file, all rows or none",
        description=CSV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    importing.add_argument("file", help="the CSV file, - for stdin")
    importing.add_argument(
        "--encoding", default="utf-8-sig", help="the file's encoding (default: UTF-8)"
    )

    propose = commands.add_parser(
        "propose",
        help="rank the patrol guards for an alarm at an account's site, and why not the others",
        description="The patrol guards who may be sent to the account's site now (qualified, "
        "on shift, on the site's beat), nearest first, then by open assignments; every other "
        "guard with the reasons.",
    )
    propose.add_argument("account", help="the account whose site it is")
    propose.add_argument(
        "--at", type=_moment, metavar="TIME", help="ISO 8601 (default: now; no offset: Beijing)"
    )
    propose.add_argument("--json", action="store_true", help="JSON instead of tables")

    rules = subparsers.add_parser(
        "rules",
        help="the regulations the centre is held to: staffing, classification, response plans",
    )
    topics = rules.add_subparsers(dest="rules_command", required=True)
    staffing_cmd = topics.add_parser(
        "staffing",
        help="minimum staff by customers served (联网报警运营规范 §5.2 表1)",
        description="With --customers: the minimum staff 表1 requires for that many customers "
        "(no database needed). Without: the centre's compliance now, from its database.",
    )
    staffing_cmd.add_argument("--customers", type=int, metavar="N", help="customers served")
    staffing_cmd.add_argument(
        "--on", type=_day, metavar="YYYY-MM-DD", help="judge staff on (default: today)"
    )
    rules_cli.add_commands(topics)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=BEIJING)


def _shift(text: str) -> tuple[time, time]:
    try:
        return parse_shift(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _position(text: str) -> tuple[float, float]:
    try:
        return parse_position(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    """Run an ``arc staff`` or ``arc rules`` subcommand; return the exit status."""
    if args.command == "rules" and args.rules_command in rules_cli.COMMANDS:
        return rules_cli.run(args)
    if args.command == "rules" and args.customers is not None:
        return _requirement(args.customers)
    name = "rules staffing" if args.command == "rules" else f"staff {args.staff_command}"
    try:
        settings = Settings()
    except ValidationError as error:
        _fail(name, f"configuration: {error}")
        return 1
    try:
        if args.command == "rules":
            return asyncio.run(_status(settings, args.on))
        if args.staff_command == "add":
            return asyncio.run(_add(settings, _staff_in(args), args.replace))
        if args.staff_command == "list":
            return asyncio.run(_list(settings, as_json=args.json, on=args.on))
        if args.staff_command == "propose":
            return asyncio.run(_propose(settings, args.account, args.at, as_json=args.json))
        return _import(settings, args.file, args.encoding)
    except ValidationError as error:
        for item in error.errors():
            field = _FLAGS.get(str(item["loc"][0]), "input") if item["loc"] else "input"
            _fail(name, f"{field}: {item['msg'].removeprefix('Value error, ')}")
        return 1
    except runtime.DatabaseUnavailable as error:
        _fail(name, str(error))
        return 1


def _fail(command: str, message: str) -> None:
    print(f"arc {command}: {message}", file=sys.stderr)


def _print_json(data: object) -> None:
    # One line, as the README shows it; Chinese as is, not \u escapes.
    print(json.dumps(data, ensure_ascii=False))


def _requirement(customers: int) -> int:
    if customers < 0:
        _fail("rules staffing", f"--customers must be 0 or more, got {customers}")
        return 2
    _print_json(staffing.requirement_json(customers))
    return 0


def _database(settings: Settings) -> runtime.AdminConnection:
    return runtime.admin_connection(settings, application_name="arc-staff")


async def _status(settings: Settings, on: date | None) -> int:
    day = on or service.today()
    async with _database(settings) as conn:
        status = await service.staffing_status(conn=conn, on=day)
    _print_json({"on": day.isoformat(), "rule": staffing.RULE, **status.to_json()})
    return 0


def _staff_in(args: argparse.Namespace) -> StaffIn:
    shift = args.shift or (None, None)
    position = args.position or (None, None)
    return StaffIn.model_validate(
        {
            "name": args.name,
            "category": args.category,
            "certificate_no": args.certificate,
            "certificate_expires": args.certificate_expires,
            "exam_passed_on": args.exam_passed,
            "trained_on": args.trained,
            "date_of_birth": args.born,
            "beat": args.beat,
            "shift_start": shift[0],
            "shift_end": shift[1],
            "latitude": position[0],
            "longitude": position[1],
            "active": not args.inactive,
        }
    )


async def _add(settings: Settings, staff: StaffIn, replace: uuid.UUID | None) -> int:
    async with _database(settings) as conn:
        try:
            if replace is None:
                out = await service.add_staff(conn=conn, staff=staff, actor=audit.cli_actor())
            else:
                out = await service.replace_staff(
                    conn=conn, staff_id=replace, staff=staff, actor=audit.cli_actor()
                )
        except service.StaffError as error:
            _fail("staff add", str(error))
            return 1
    done = "added" if replace is None else "replaced"
    print(f"staff {out.staff_id} {done}: {out.name}, {out.category.value}, {_eligibility(out)}")
    return 0


def _eligibility(out: StaffOut) -> str:
    if out.eligible:
        return "eligible"
    return "not eligible: " + "; ".join(out.ineligible_reasons)


async def _list(settings: Settings, *, as_json: bool, on: date | None) -> int:
    day = on or service.today()
    async with _database(settings) as conn:
        staff = await service.list_staff(conn=conn, on=day)
    if as_json:
        data = [s.model_dump(mode="json") for s in staff]
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    rows = [("STAFF ID", "NAME", "CATEGORY", "CERTIFICATE", "SHIFT", "BEAT", "ELIGIBLE")]
    notes: dict[int, Sequence[str]] = {}
    for s in staff:
        if s.ineligible_reasons:
            notes[len(rows)] = s.ineligible_reasons
        rows.append(
            (
                str(s.staff_id),
                s.name,
                s.category.value,
                s.certificate_no or "-",
                s.shift or "-",
                s.beat or "-",
                "yes" if s.eligible else "no",
            )
        )
    print_table(rows, notes)
    counts = service.count_eligible(staff, day)
    eligible = sum(counts.values())
    by_category = ", ".join(f"{c.value} {n}" for c, n in counts.items())
    print(f"{len(staff)} staff, {eligible} eligible on {day} ({by_category})")
    return 0


async def _propose(settings: Settings, account: str, at: datetime | None, *, as_json: bool) -> int:
    moment = at or datetime.now(UTC)
    async with _database(settings) as conn:
        try:
            ranking = await service.propose_guards(conn=conn, account=account, now=moment)
        except service.UnknownAccount as error:
            _fail("staff propose", str(error))
            return 1
    local = moment.astimezone(BEIJING)
    if as_json:
        data = {
            "account": account,
            "at": moment.isoformat(),
            "proposals": [
                {
                    "staff_id": str(p.staff.staff_id),
                    "name": p.staff.name,
                    "distance_m": None if p.distance_m is None else round(p.distance_m),
                    "load": p.load,
                    "shift": p.staff.shift,
                    "beat": p.staff.beat,
                }
                for p in ranking.proposals
            ],
            "excluded": [
                {"staff_id": str(e.staff.staff_id), "name": e.staff.name, "reasons": e.reasons}
                for e in ranking.excluded
            ],
        }
        _print_json(data)
        return 0
    print(f"account {account}, {local:%Y-%m-%d %H:%M} 北京时间 Beijing time")
    rows = [("RANK", "NAME", "STAFF ID", "DISTANCE", "OPEN", "SHIFT", "BEAT")]
    for index, p in enumerate(ranking.proposals, start=1):
        distance = "unknown" if p.distance_m is None else f"{p.distance_m / 1000:.1f} km"
        rows.append(
            (
                str(index),
                p.staff.name,
                str(p.staff.staff_id),
                distance,
                str(p.load),
                p.staff.shift or "-",
                p.staff.beat or "-",
            )
        )
    print_table(rows)
    print(f"{len(ranking.proposals)} proposed (建议派遣)")
    if ranking.excluded:
        print()
        excluded = [("NOT PROPOSED", "STAFF ID", "SHIFT", "BEAT")]
        notes: dict[int, Sequence[str]] = {}
        for e in ranking.excluded:
            notes[len(excluded)] = e.reasons
            excluded.append(
                (e.staff.name, str(e.staff.staff_id), e.staff.shift or "-", e.staff.beat or "-")
            )
        print_table(excluded, notes)
        print(f"{len(ranking.excluded)} not proposed (不予派遣), each with the reasons")
    return 0


def _import(settings: Settings, path: str, encoding: str) -> int:
    try:
        text, digest = read_text(path, encoding)
    except UnreadableFile as error:
        _fail("staff import", str(error))
        return 1
    return asyncio.run(_import_text(settings, path, text, digest))


async def _import_text(settings: Settings, path: str, text: str, digest: str) -> int:
    async with _database(settings) as conn:
        try:
            result = await service.import_csv(
                conn=conn, text=text, actor=audit.cli_actor(), file_sha256=digest, source=path
            )
        except ImportRejected as error:
            count = len(error.problems)
            _fail(
                "staff import",
                f"{path}: {count} bad row{'s' if count != 1 else ''}, nothing imported",
            )
            for problem in error.problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        status = await service.staffing_status(conn=conn)
    print(
        f"imported {result.total} staff from {path}: {result.added} added, "
        f"{result.updated} updated; {_summary(status)}"
    )
    return 0


def _summary(status: staffing.Compliance) -> str:
    if status.compliant:
        return f"compliant with {staffing.RULE} for {status.customers} customers"
    return f"short of {staffing.RULE} for {status.customers} customers: {status.shortfall_text()}"
