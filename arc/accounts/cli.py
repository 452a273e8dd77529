"""`arc account add | list | import`: the served panels, managed from the command line.

The site behind an account (``site``, ``zone``, ``keyholders``, ``schedule``,
``show``) has its commands in ``arc.accounts.site_cli``.

Keys are read from the command line, stdin (``--key -``, which keeps them out
of the process list and shell history) or the import file, and are never
printed back. Serving more customers than the qualified staff allow
(联网报警运营规范 §5.2 表1) is refused unless ``--staffing-override REASON``
says why. Exit status: 0 done, 1 refused (bad input, duplicate, staff short,
database error), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson
from pydantic import SecretStr, ValidationError

from arc import audit, runtime
from arc.accounts import service, site_cli
from arc.accounts.models import AccountIn, AccountOut
from arc.config import Settings
from arc.db import Connection
from arc.guards.service import StaffingRefused, staffing_status
from arc.guards.staffing import RULE
from arc.imports import ImportRejected, UnreadableFile, read_text
from arc.secrets import SecretBox
from arc.terminal import print_table
from protocols.dc09_receiver import DriftAction

# Documented once, shown by `arc account import --help`.
CSV_HELP = """\
The file is CSV (comma-separated, UTF-8; --encoding gb18030 for a file saved by
Chinese Excel as "CSV" rather than "CSV UTF-8") with a header row naming its
columns, in any order; only `account` is required:

  account             3-16 hex digits, as the panel sends it
  name                the customer or site
  key                 hex:<32|48|64 hex digits> or ascii:<16|24|32 characters>
  link_test_seconds   expected link-test interval (empty: not supervised)
  utc_offset_minutes  for panels that send local time (Beijing: 480)
  timestamp_ahead     accepted clock drift, seconds (empty: the centre's +20)
  timestamp_behind    (empty: the centre's -40)
  drift_action        nak or flag, outside the window (empty: the default)
  enabled             true or false (empty: true)

An empty cell means the column's default. Every row is checked before anything
is written: one bad row and nothing is imported, and every bad line is listed.
Accounts already in the database are updated with the file's values in the
columns the file has (other columns keep theirs), so the export of an old
system can be imported again until the cut-over; accounts not in the file are
left alone. A file that would leave the qualified staff short of 联网报警运营规范
§5.2 表1 for the customers then served is refused, unless --staffing-override
gives the reason (written to the audit log with the shortfall)."""


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``account`` and its subcommands to the ``arc`` parser."""
    account = subparsers.add_parser(
        "account",
        help="add, list and import the accounts (panels) the centre serves",
        description="Manage the accounts the centre serves. Keys are stored encrypted "
        "under ARC_MASTER_KEY and never shown.",
    )
    commands = account.add_subparsers(dest="account_command", required=True)

    add = commands.add_parser("add", help="add an account, or replace it with --replace")
    add.add_argument("account", help="DC-09 account: 3-16 hex digits, as the panel sends it")
    add.add_argument(
        "--key",
        metavar="hex:KEY|ascii:KEY|-",
        help="AES key as hex digits or as the ASCII text typed into the panel; "
        "- reads it from stdin (keeps it out of the process list)",
    )
    add.add_argument("--name", default="", help="customer or site name")
    add.add_argument("--link-test", type=int, metavar="SECONDS", help="expected link-test interval")
    add.add_argument(
        "--utc-offset",
        type=int,
        default=0,
        metavar="MINUTES",
        help="for panels that send local time, not UTC (Beijing: 480)",
    )
    add.add_argument("--timestamp-ahead", type=float, metavar="SECONDS")
    add.add_argument("--timestamp-behind", type=float, metavar="SECONDS")
    add.add_argument(
        "--drift-action",
        choices=[a.value for a in DriftAction],
        help="outside the timestamp window: nak (the panel resends) or flag (accept)",
    )
    add.add_argument("--disabled", action="store_true", help="store it, but do not serve it")
    add.add_argument("--replace", action="store_true", help="overwrite an existing account")
    _override_option(add)

    listing = commands.add_parser("list", help="show the accounts (never their keys)")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")

    importing = commands.add_parser(
        "import",
        help="import accounts from a CSV file, all rows or none",
        description=CSV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    importing.add_argument("file", help="the CSV file, - for stdin")
    importing.add_argument(
        "--encoding", default="utf-8-sig", help="the file's encoding (default: UTF-8)"
    )
    _override_option(importing)
    site_cli.add_commands(commands)


def _override_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--staffing-override",
        type=_reason,
        metavar="REASON",
        help="serve the new customers even if the staff fall short of 联网报警运营规范 "
        "§5.2 表1; the reason and the shortfall are written to the audit log",
    )


def _reason(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("give the reason for overriding the staffing rule")
    return text.strip()


def run(args: argparse.Namespace) -> int:
    """Run an ``arc account`` subcommand; return the exit status."""
    command = args.account_command
    try:
        settings = Settings()
    except ValidationError as error:
        _fail(command, f"configuration: {error}")
        return 1
    if command in site_cli.COMMANDS:
        return site_cli.run(args, settings)
    try:
        if command == "add":
            account = _account_in(args)
            return asyncio.run(
                _add(settings, account, replace=args.replace, override=args.staffing_override)
            )
        if command == "list":
            return asyncio.run(_list(settings, as_json=args.json))
        return _import(settings, args.file, args.encoding, args.staffing_override)
    except StaffingRefused as error:
        _fail(command, f"{error}. {_STAFFING_HINT}")
        return 1
    except ValidationError as error:
        for item in error.errors():
            field = "--" + str(item["loc"][0]).replace("_", "-") if item["loc"] else "input"
            if field == "--account":
                field = "ACCOUNT"
            _fail(command, f"{field}: {item['msg'].removeprefix('Value error, ')}")
        return 1
    except runtime.DatabaseUnavailable as error:
        _fail(command, str(error))
        return 1


def _account_in(args: argparse.Namespace) -> AccountIn:
    spec = args.key
    if spec == "-":
        spec = sys.stdin.readline().rstrip("\r\n")
    return AccountIn(
        account=args.account,
        name=args.name,
        key=SecretStr(spec) if spec else None,
        link_test_seconds=args.link_test,
        utc_offset_minutes=args.utc_offset,
        timestamp_ahead=args.timestamp_ahead,
        timestamp_behind=args.timestamp_behind,
        drift_action=args.drift_action,
        enabled=not args.disabled,
    )


def _fail(command: str, message: str) -> None:
    print(f"arc account {command}: {message}", file=sys.stderr)


def _database(settings: Settings) -> runtime.AdminConnection:
    return runtime.admin_connection(settings, application_name="arc-account")


def _box(settings: Settings) -> SecretBox:
    return service.key_box(settings.master_key)


_STAFFING_HINT = (
    "Add qualified staff (arc staff add, arc staff import), or give the reason to "
    "serve them regardless: --staffing-override REASON (audited)"
)


async def _add(
    settings: Settings, account: AccountIn, *, replace: bool, override: str | None
) -> int:
    async with _database(settings) as conn:
        try:
            out = await service.add_account(
                conn=conn,
                box=_box(settings),
                account=account,
                actor=audit.cli_actor(),
                replace=replace,
                staffing_override=override,
            )
        except service.AccountExists as error:
            hint = "; add --replace to overwrite it" if error.account == error.existing else ""
            _fail("add", f"{error}{hint}")
            return 1
        if override is not None:
            await _warn_if_short(conn, "add")
    created = out.created_at == out.updated_at
    print(f"account {out.account} {'added' if created else 'replaced'}: {_summary(out)}")
    return 0


async def _warn_if_short(conn: Connection, command: str) -> None:
    # An override is a decision someone answers for: say what it let through.
    status = await staffing_status(conn=conn)
    if not status.compliant:
        _fail(
            command,
            f"warning: {status.customers} customers served, short of {RULE}: "
            f"{status.shortfall_text()} (override recorded in the audit log)",
        )


def _summary(out: AccountOut) -> str:
    parts = [
        f"key {out.key_format}" if out.has_key and out.key_format else "no key",
        f"link test every {out.link_test_seconds} s" if out.link_test_seconds else "no link test",
    ]
    if not out.enabled:
        parts.append("disabled")
    return ", ".join(parts)


async def _list(settings: Settings, *, as_json: bool) -> int:
    async with _database(settings) as conn:
        accounts = await service.list_accounts(conn=conn)
    if as_json:
        data = [a.model_dump(mode="json") for a in accounts]
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    rows = [("ACCOUNT", "NAME", "KEY", "LINK TEST", "ENABLED")]
    for a in accounts:
        rows.append(
            (
                a.account,
                a.name,
                f"yes ({a.key_format})" if a.has_key and a.key_format else "no",
                f"{a.link_test_seconds} s" if a.link_test_seconds else "-",
                "yes" if a.enabled else "no",
            )
        )
    print_table(rows)
    print(f"{len(accounts)} account{'s' if len(accounts) != 1 else ''}")
    return 0


def _import(settings: Settings, path: str, encoding: str, override: str | None) -> int:
    try:
        text, digest = read_text(path, encoding)
    except UnreadableFile as error:
        _fail("import", str(error))
        return 1
    return asyncio.run(_import_text(settings, path, text, digest, override))


async def _import_text(
    settings: Settings, path: str, text: str, digest: str, override: str | None
) -> int:
    async with _database(settings) as conn:
        try:
            result = await service.import_csv(
                conn=conn,
                box=_box(settings),
                text=text,
                actor=audit.cli_actor(),
                file_sha256=digest,
                source=path,
                staffing_override=override,
            )
        except ImportRejected as error:
            count = len(error.problems)
            plural = "s" if count != 1 else ""
            _fail("import", f"{path}: {count} bad row{plural}, nothing imported")
            for problem in error.problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        if override is not None:
            await _warn_if_short(conn, "import")
    plural = "s" if result.total != 1 else ""
    print(
        f"imported {result.total} account{plural} from {path}: "
        f"{result.added} added, {result.updated} updated"
    )
    return 0
