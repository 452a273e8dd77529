"""`arc account site | zone | keyholders | schedule | show`: an account's site, by command.

Each command changes one part of the site, audited, and prints what is now
recorded; ``show`` prints all of it (``--json`` for scripts). Errors name the
option and the rule. Exit status: 0 done, 1 refused, 2 wrong usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson
from pydantic import ValidationError

from arc import audit, runtime
from arc.accounts import sites
from arc.accounts.models import (
    TECHNOLOGY_NAMES_ZH,
    KeyholderIn,
    SiteIn,
    SiteOut,
    Technology,
    ZoneIn,
)
from arc.accounts.schedule import SYNTAX, ScheduleError, parse_schedule
from arc.accounts.service import AccountError
from arc.config import Settings
from arc.guards.models import parse_position
from arc.terminal import print_table

COMMANDS = ("site", "zone", "keyholders", "schedule", "show")

# Model fields as the options name them, for error messages.
_FLAGS = {
    "address": "--address",
    "latitude": "--position",
    "longitude": "--position",
    "beat": "--beat",
    "zone": "ZONE",
    "name": "--name",
    "technology": "--technology",
}


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the site subcommands to ``arc account``."""
    site = commands.add_parser(
        "site",
        help="record the site's address, position and patrol beat",
        description="Record where the account's premises are. Options not given keep "
        'their value; an empty one ("") clears it.',
    )
    site.add_argument("account", help="the account (any letter case)")
    site.add_argument("--address", help="street address, as a guard would look for it")
    site.add_argument(
        "--position",
        type=_position,
        metavar="LAT,LON",
        help='WGS-84 degrees, e.g. 39.9087,116.4605 ("" clears it)',
    )
    site.add_argument("--beat", help="patrol beat (巡逻区域), as the guards' beats are named")

    zone = commands.add_parser(
        "zone",
        help="record a zone's name and detector technology",
        description="Record one zone as the panel reports it (003 and 3 are one zone). "
        "Two zones of different technologies confirm a burglary as two-technology.",
    )
    zone.add_argument("account")
    zone.add_argument("zone", help="zone number or id as the panel sends it")
    zone.add_argument("--name", default="", help="where it is, e.g. 后门")
    zone.add_argument(
        "--technology",
        choices=[t.value for t in Technology],
        help="detector technology (required unless --remove)",
    )
    zone.add_argument("--remove", action="store_true", help="forget the zone's record")

    keyholders = commands.add_parser(
        "keyholders",
        help="replace the keyholders (紧急联系人), in call order",
        description="Replace the list of keyholders; they are called in the order given.",
    )
    keyholders.add_argument("account")
    group = keyholders.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--set",
        action="append",
        dest="keyholders",
        type=_keyholder,
        metavar="NAME,PHONE[,RELATION]",
        help="one keyholder; repeat in call order",
    )
    group.add_argument("--clear", action="store_true", help="remove every keyholder")

    schedule = commands.add_parser(
        "schedule",
        help="replace the open hours (the premises are disarmed), Beijing time",
        description=f"Replace the open hours; {SYNTAX}. Days not named are closed all "
        "day. A window past midnight is written as two, e.g. 'fri 20:00-24:00' "
        "'sat 00:00-02:00'. Outside the open hours the site must be armed: the "
        "dispatcher opens 未按时布防 / 非时段撤防 incidents.",
    )
    schedule.add_argument("account")
    schedule.add_argument("lines", nargs="*", metavar="LINE", help='e.g. "mon-fri 08:00-18:00"')
    schedule.add_argument("--clear", action="store_true", help="no schedule: not supervised")

    show = commands.add_parser("show", help="print the account, its site, zones, keyholders")
    show.add_argument("account")
    show.add_argument("--json", action="store_true", help="JSON instead of tables")


def _position(text: str) -> tuple[float, ...]:
    if not text.strip():
        return ()  # cleared
    try:
        return parse_position(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _keyholder(text: str) -> KeyholderIn:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(
            f"write a keyholder as NAME,PHONE or NAME,PHONE,RELATION, got {text!r}"
        )
    try:
        return KeyholderIn(name=parts[0], phone=parts[1], relation=parts[2] if parts[2:] else "")
    except ValidationError as error:
        item = error.errors()[0]
        raise argparse.ArgumentTypeError(
            f"{item['loc'][0] if item['loc'] else 'keyholder'}: "
            f"{item['msg'].removeprefix('Value error, ')}"
        ) from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a site subcommand; return the exit status."""
    command = args.account_command
    try:
        return asyncio.run(_run(args, settings))
    except ValidationError as error:
        for item in error.errors():
            field = _FLAGS.get(str(item["loc"][0]), "input") if item["loc"] else "input"
            _fail(command, f"{field}: {item['msg'].removeprefix('Value error, ')}")
        return 1
    except (AccountError, ScheduleError) as error:
        _fail(command, str(error))
        return 1
    except runtime.DatabaseUnavailable as error:
        _fail(command, str(error))
        return 1


def _fail(command: str, message: str) -> None:
    print(f"arc account {command}: {message}", file=sys.stderr)


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    command = args.account_command
    if command == "zone" and not args.remove and args.technology is None:
        _fail("zone", "--technology is required (or --remove)")
        return 2
    if command == "schedule" and bool(args.lines) == bool(args.clear):
        _fail("schedule", f"give the open hours or --clear, not both or neither; {SYNTAX}")
        return 2
    # Parse before connecting: a typo is reported without touching the database.
    schedule = parse_schedule(args.lines) if command == "schedule" and args.lines else None
    zone = None
    if command == "zone" and not args.remove:
        zone = ZoneIn(zone=args.zone, name=args.name, technology=args.technology)
    actor = audit.cli_actor()
    async with runtime.admin_connection(settings, application_name="arc-account") as conn:
        if command == "site":
            current = await sites.get_site(conn=conn, account=args.account)
            out = await sites.set_site(
                conn=conn, account=args.account, site=_merged(current, args), actor=actor
            )
            print(f"account {out.account.account} site: {_where(out)}")
        elif command == "zone":
            if zone is None:
                removed = await sites.remove_zone(
                    conn=conn, account=args.account, zone=args.zone, actor=actor
                )
                print(f"zone {args.zone} {'removed' if removed else 'was not recorded'}")
            else:
                stored = await sites.set_zone(
                    conn=conn, account=args.account, zone=zone, actor=actor
                )
                print(f"zone {stored.zone} recorded: {_zone_text(stored)}")
        elif command == "keyholders":
            given = [] if args.clear else list(args.keyholders)
            await sites.set_keyholders(
                conn=conn, account=args.account, keyholders=given, actor=actor
            )
            print(f"{len(given)} keyholder{'s' if len(given) != 1 else ''} recorded, in call order")
        elif command == "schedule":
            await sites.set_schedule(
                conn=conn, account=args.account, schedule=schedule, actor=actor
            )
            if schedule is None:
                print("schedule removed: open/close not supervised")
            else:
                print("schedule (北京时间 Beijing time): " + "; ".join(schedule.lines()))
        else:
            shown = await sites.show_site(conn=conn, account=args.account)
            if args.json:
                data = shown.model_dump(mode="json")
                sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
            else:
                _print_site(shown)
    return 0


def _merged(current: SiteIn, args: argparse.Namespace) -> SiteIn:
    data = current.model_dump()
    if args.address is not None:
        data["address"] = args.address
    if args.beat is not None:
        data["beat"] = args.beat
    if args.position is not None:
        data["latitude"], data["longitude"] = args.position or (None, None)
    return SiteIn.model_validate(data)


def _where(site: SiteOut) -> str:
    position = (
        "position unknown"
        if site.latitude is None or site.longitude is None
        else f"{site.latitude:.6f},{site.longitude:.6f}"
    )
    return f"{site.address or '(no address)'}; {position}; beat {site.beat or '-'}"


def _zone_text(zone: ZoneIn) -> str:
    return f"{zone.name or '-'}, {zone.technology.value} {TECHNOLOGY_NAMES_ZH[zone.technology]}"


def _print_site(site: SiteOut) -> None:
    a = site.account
    link = f"link test {a.link_test_seconds} s" if a.link_test_seconds else "no link test"
    state = "enabled" if a.enabled else "disabled"
    print(f"account {a.account}  {a.name or '-'}  ({link}, {state})")
    print(f"site: {_where(site)}")
    print()
    rows = [("ZONE", "NAME", "TECHNOLOGY")]
    rows += [(z.zone, z.name or "-", _zone_text(z).split(", ", 1)[1]) for z in site.zones]
    print_table(rows)
    print(f"{len(site.zones)} zone{'s' if len(site.zones) != 1 else ''}")
    print()
    people = [("CALL", "KEYHOLDER", "PHONE", "RELATION")]
    people += [
        (str(i), k.name, k.phone, k.relation or "-") for i, k in enumerate(site.keyholders, 1)
    ]
    print_table(people)
    print(f"{len(site.keyholders)} keyholder{'s' if len(site.keyholders) != 1 else ''}")
    print()
    if site.schedule:
        print("open hours (北京时间 Beijing time; armed outside them):")
        for line in site.schedule:
            print(f"  {line}")
    else:
        print("open hours: none recorded (open/close not supervised)")
