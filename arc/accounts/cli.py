"""`arc account add | list | import`: the served panels, managed from the command line.

Keys are read from the command line, stdin (``--key -``, which keeps them out
of the process list and shell history) or the import file, and are never
printed back. Exit status: 0 done, 1 refused (bad input, duplicate, database
error), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import sys
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
from pydantic import SecretStr, ValidationError

from arc import db, runtime
from arc.accounts import service
from arc.accounts.models import AccountIn, AccountOut
from arc.config import Settings
from arc.embedded._process import EmbeddedServiceError
from arc.secrets import SecretBox
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
left alone."""


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


def run(args: argparse.Namespace) -> int:
    """Run an ``arc account`` subcommand; return the exit status."""
    command = args.account_command
    try:
        settings = Settings()
    except ValidationError as error:
        _fail(command, f"configuration: {error}")
        return 1
    try:
        if command == "add":
            account = _account_in(args)
            return asyncio.run(_add(settings, account, replace=args.replace))
        if command == "list":
            return asyncio.run(_list(settings, as_json=args.json))
        return _import(settings, args.file, args.encoding)
    except ValidationError as error:
        for item in error.errors():
            field = "--" + str(item["loc"][0]).replace("_", "-") if item["loc"] else "input"
            if field == "--account":
                field = "ACCOUNT"
            _fail(command, f"{field}: {item['msg'].removeprefix('Value error, ')}")
        return 1
    except _DatabaseUnavailable as error:
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


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "cli"


class _DatabaseUnavailable(Exception):
    """The centre's database could not be opened or migrated."""


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """One owner's connection to the centre's database, migrated."""
    try:
        async with runtime.admin_database(settings) as dsn:
            conn = await db.connect(dsn, application_name="arc-account")
            try:
                yield conn
            finally:
                await conn.close()
    # The DSN is never in these messages: it may carry a password.
    except (OSError, TimeoutError, asyncpg.PostgresConnectionError, EmbeddedServiceError) as error:
        raise _DatabaseUnavailable(f"cannot open the database: {error}") from None
    except db.MigrationError as error:
        raise _DatabaseUnavailable(f"the database schema: {error}") from None


def _box(settings: Settings) -> SecretBox:
    return service.key_box(settings.master_key)


async def _add(settings: Settings, account: AccountIn, *, replace: bool) -> int:
    async with _database(settings) as conn:
        try:
            out = await service.add_account(
                conn=conn, box=_box(settings), account=account, actor=_actor(), replace=replace
            )
        except service.AccountExists as error:
            hint = "; add --replace to overwrite it" if error.account == error.existing else ""
            _fail("add", f"{error}{hint}")
            return 1
    created = out.created_at == out.updated_at
    print(f"account {out.account} {'added' if created else 'replaced'}: {_summary(out)}")
    return 0


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
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip())
    print(f"{len(accounts)} account{'s' if len(accounts) != 1 else ''}")
    return 0


def _width(text: str) -> int:
    # Chinese characters take two columns each on a terminal.
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _import(settings: Settings, path: str, encoding: str) -> int:
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as handle:
                data = handle.read()
    except OSError as error:
        _fail("import", f"cannot read {path}: {error.strerror}")
        return 1
    try:
        text = data.decode(encoding)
    except LookupError:
        _fail("import", f"unknown encoding {encoding!r}")
        return 1
    except UnicodeDecodeError as error:
        _fail(
            "import",
            f"{path} is not {encoding} text (byte {error.start}); a file saved by Chinese "
            "Excel may need --encoding gb18030",
        )
        return 1
    digest = hashlib.sha256(data).hexdigest()
    return asyncio.run(_import_text(settings, path, text, digest))


async def _import_text(settings: Settings, path: str, text: str, digest: str) -> int:
    async with _database(settings) as conn:
        try:
            result = await service.import_csv(
                conn=conn,
                box=_box(settings),
                text=text,
                actor=_actor(),
                file_sha256=digest,
                source=path,
            )
        except service.ImportRejected as error:
            count = len(error.problems)
            plural = "s" if count != 1 else ""
            _fail("import", f"{path}: {count} bad row{plural}, nothing imported")
            for problem in error.problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
    plural = "s" if result.total != 1 else ""
    print(
        f"imported {result.total} account{plural} from {path}: "
        f"{result.added} added, {result.updated} updated"
    )
    return 0
