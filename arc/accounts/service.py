"""Accounts in the database: add, list, import, and the receiver's in-memory view of them.

Every change is audited (``arc.audit.record``) in the transaction that makes it,
and the table's trigger tells receivers to reload (NOTIFY arc_accounts) when it
commits. Keys are sealed with ``key_box(master_key)`` bound to the account id.
A change that serves more customers passes the staffing check of 表1 (R1,
``arc.guards.service.check_onboarding``) in that transaction first.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
from pydantic import SecretStr, ValidationError

from arc import audit
from arc.accounts.models import AccountIn, AccountOut
from arc.db import Connection
from arc.guards.service import check_onboarding
from arc.imports import ImportRejected, ImportResult, RowProblem, record_import
from arc.secrets import MasterKeyMismatch, SecretBox, SecretError
from protocols.dc09_crypto import Dc09Key, KeyFormat
from protocols.dc09_receiver import AccountSettings, DriftAction, TimestampPolicy
from protocols.errors import ProtocolError

logger = logging.getLogger(__name__)

# HKDF info of the account-key box: a box of another purpose never opens as one.
ACCOUNT_KEYS = b"arc/accounts/dc09-key/v1"

# The CSV columns `import_csv` reads, in the order `arc account` documents them.
CSV_COLUMNS = (
    "account",
    "name",
    "key",
    "link_test_seconds",
    "utc_offset_minutes",
    "timestamp_ahead",
    "timestamp_behind",
    "drift_action",
    "enabled",
)
# Database columns each CSV column sets when an existing account is updated.
_UPDATES = {
    "name": ("name",),
    "key": ("key_ciphertext", "key_format"),
    "link_test_seconds": ("link_test_seconds",),
    "utc_offset_minutes": ("utc_offset_minutes",),
    "timestamp_ahead": ("timestamp_ahead",),
    "timestamp_behind": ("timestamp_behind",),
    "drift_action": ("drift_action",),
    "enabled": ("enabled",),
}
_WRITE_COLUMNS = (
    "account",
    "name",
    "key_ciphertext",
    "key_format",
    "link_test_seconds",
    "utc_offset_minutes",
    "timestamp_ahead",
    "timestamp_behind",
    "drift_action",
    "enabled",
)
_ARRAY_TYPES = ("text", "text", "bytea", "text", "int4", "int4", "float8", "float8", "text", "bool")
_OUT_COLUMNS = ", ".join((*_WRITE_COLUMNS, "created_at", "updated_at"))
_LOAD_COLUMNS = (
    "account, key_ciphertext, key_format, utc_offset_minutes, "
    "timestamp_ahead, timestamp_behind, drift_action"
)
# Building settings is CPU work on the receiver's event loop (about 20 us a keyed
# account, most of it setting up its AES contexts): let the loop run every so many
# rows, so that a reload of 10,000 accounts never stalls the receiver for more than ~10 ms.
_YIELD_EVERY = 500
_PLAIN = AccountSettings()  # shared by every account with no key and no overrides


def key_box(master_key: SecretStr | str) -> SecretBox:
    """The box account keys are sealed in, under ``master_key`` (``Settings.master_key``)."""
    return SecretBox(master_key, purpose=ACCOUNT_KEYS)


def _context(account: str) -> bytes:
    # The associated data: a key sealed for one account does not open for another.
    return account.encode("ascii")


class AccountError(Exception):
    """An account change that was refused."""


class AccountExists(AccountError):
    """The account (or one differing only in letter case) exists already."""

    def __init__(self, account: str, existing: str) -> None:
        if account == existing:
            message = f"account {account} already exists"
        else:
            message = f"account {account} differs only in letter case from existing {existing}"
        super().__init__(message)
        self.account = account
        self.existing = existing


def _key_columns(box: SecretBox, account: AccountIn) -> tuple[bytes | None, str | None]:
    key = account.dc09_key()
    if key is None:
        return None, None
    return box.seal(key.key, context=_context(account.account)), key.representation.value


def _row_values(box: SecretBox, account: AccountIn) -> tuple[Any, ...]:
    ciphertext, key_format = _key_columns(box, account)
    return (
        account.account,
        account.name,
        ciphertext,
        key_format,
        account.link_test_seconds,
        account.utc_offset_minutes,
        account.timestamp_ahead,
        account.timestamp_behind,
        None if account.drift_action is None else account.drift_action.value,
        account.enabled,
    )


def _audit_details(account: AccountIn) -> dict[str, Any]:
    # What changed, never the key: only whether there is one and its format.
    key = account.dc09_key()
    return {
        "name": account.name,
        "has_key": key is not None,
        "key_format": None if key is None else key.representation.value,
        "link_test_seconds": account.link_test_seconds,
        "utc_offset_minutes": account.utc_offset_minutes,
        "timestamp_ahead": account.timestamp_ahead,
        "timestamp_behind": account.timestamp_behind,
        "drift_action": None if account.drift_action is None else account.drift_action.value,
        "enabled": account.enabled,
    }


def _out(row: asyncpg.Record) -> AccountOut:
    return AccountOut(
        account=row["account"],
        name=row["name"],
        has_key=row["key_ciphertext"] is not None,
        key_format=row["key_format"],
        link_test_seconds=row["link_test_seconds"],
        utc_offset_minutes=row["utc_offset_minutes"],
        timestamp_ahead=row["timestamp_ahead"],
        timestamp_behind=row["timestamp_behind"],
        drift_action=row["drift_action"],
        enabled=row["enabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def add_account(
    *,
    conn: Connection,
    box: SecretBox,
    account: AccountIn,
    actor: str,
    replace: bool = False,
    staffing_override: str | None = None,
) -> AccountOut:
    """Add an account; with ``replace``, overwrite an existing one (every field).

    An account that makes the centre serve one more customer (a new enabled
    one, or a disabled one enabled) is refused with ``StaffingRefused`` when
    the staff would then fall short of 表1 (R1), unless ``staffing_override``
    gives the reason, which is audited with the shortfall.
    """
    values = _row_values(box, account)
    columns = ", ".join(_WRITE_COLUMNS)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in _WRITE_COLUMNS[1:])
    async with conn.transaction():
        # As import_csv: one account writer at a time, so that the customers
        # counted by the staffing check stay the count until this commits.
        await conn.execute("LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE")
        row = await conn.fetchrow(
            "SELECT account, enabled FROM accounts WHERE upper(account) = upper($1)",
            account.account,
        )
        existing = None if row is None else row["account"]
        if existing is not None and (existing != account.account or not replace):
            raise AccountExists(account.account, existing)
        served_before = row is not None and row["enabled"]
        await check_onboarding(
            conn=conn,
            added=int(account.enabled) - int(served_before),
            actor=actor,
            subject=f"account:{account.account}",
            override=staffing_override,
        )
        conflict = f"ON CONFLICT (account) DO UPDATE SET {sets}" if replace else ""
        try:
            row = await conn.fetchrow(
                f"INSERT INTO accounts ({columns}) VALUES ({params}) {conflict} "  # noqa: S608 - fixed column names
                f"RETURNING {_OUT_COLUMNS}",
                *values,
            )
        except asyncpg.UniqueViolationError:
            # Another administrator added it (or its case variant) since the check above.
            raise AccountExists(account.account, account.account) from None
        assert row is not None  # noqa: S101 - INSERT ... RETURNING returns its row
        await audit.record(
            conn=conn,
            actor=actor,
            action="account.replace" if existing is not None else "account.add",
            subject=f"account:{account.account}",
            details=_audit_details(account),
        )
    return _out(row)


async def list_accounts(*, conn: Connection) -> list[AccountOut]:
    """Every account, ordered by account id."""
    rows = await conn.fetch(f"SELECT {_OUT_COLUMNS} FROM accounts ORDER BY account")  # noqa: S608
    return [_out(row) for row in rows]


# --- CSV import ---------------------------------------------------------------------------------


@dataclass(slots=True)
class ParsedCsv:
    """An import file read and checked: its columns, valid rows (with lines) and problems."""

    columns: tuple[str, ...] = ()
    rows: list[tuple[int, AccountIn]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def _column_name(cell: str) -> str:
    # "Link test seconds", "link-test-seconds" and "link_test_seconds" are one column.
    return "_".join(cell.strip().lower().replace("-", " ").split())


def _reason(error: ValidationError, cells: dict[str, str]) -> str:
    reasons = []
    for item in error.errors():
        column = str(item["loc"][0]) if item["loc"] else "row"
        message = item["msg"].removeprefix("Value error, ")
        # Echo what was given, except the key (secret) and the account (its message does).
        if column not in ("key", "account", "name") and column in cells:
            message += f" (got {cells[column]!r})"
        reasons.append(f"{column}: {message}")
    return "; ".join(reasons)


def parse_csv(text: str) -> ParsedCsv:
    """Read and validate every row of an import file without touching the database."""
    parsed = ParsedCsv()
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    header: list[str] | None = None
    seen: dict[str, int] = {}  # upper-cased account -> line it is on
    line = 1  # where the next record starts (a quoted cell may span lines)
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue  # blank line
            if header is None:
                header = [_column_name(cell) for cell in record]
                parsed.problems.extend(_header_problems(header, start))
                if parsed.problems:
                    return parsed  # the rows cannot be read against a wrong header
                parsed.columns = tuple(header)
                continue
            if len(record) != len(header):
                parsed.problems.append(
                    RowProblem(
                        start,
                        f"{len(record)} values, but the header has {len(header)} columns",
                    )
                )
                continue
            cells = dict(zip(header, record, strict=True))
            # Empty cell: the column's default (no key, not supervised, enabled, ...).
            data = {
                name: (value if name == "key" else value.strip())
                for name, value in cells.items()
                if value.strip()
            }
            try:
                account = AccountIn.model_validate(data)
            except ValidationError as error:
                parsed.problems.append(RowProblem(start, _reason(error, cells)))
                continue
            first = seen.setdefault(account.account.upper(), start)
            if first != start:
                parsed.problems.append(
                    RowProblem(start, f"account {account.account} is also on line {first}")
                )
                continue
            parsed.rows.append((start, account))
    except csv.Error as error:
        parsed.problems.append(
            RowProblem(reader.line_num, f"not valid CSV ({error}); reading stopped here")
        )
    if header is None:
        parsed.problems.append(RowProblem(1, "the file is empty: expected a header row"))
    elif not parsed.rows and not parsed.problems:
        parsed.problems.append(RowProblem(1, "the file has a header but no accounts"))
    return parsed


def _header_problems(header: list[str], line: int) -> Iterable[RowProblem]:
    known = ", ".join(CSV_COLUMNS)
    if "account" not in header:
        yield RowProblem(line, f"the header has no 'account' column (columns: {known})")
    for position, name in enumerate(header):
        if name not in CSV_COLUMNS:
            yield RowProblem(line, f"unknown column {name!r} (columns: {known})")
        elif name in header[:position]:
            yield RowProblem(line, f"column {name!r} appears twice")


async def import_csv(
    *,
    conn: Connection,
    box: SecretBox,
    text: str,
    actor: str,
    file_sha256: str | None = None,
    source: str | None = None,
    staffing_override: str | None = None,
) -> ImportResult:
    """Import accounts from CSV: all rows or none; existing accounts are updated.

    Only the columns the file has are written to existing accounts; absent
    columns keep their values (new accounts get the defaults). Accounts not in
    the file are left alone. ``file_sha256`` is the digest of the file's bytes
    for the audit row (default: of ``text`` as UTF-8); ``source`` names it.
    A file that makes the centre serve more customers is refused as
    ``add_account`` refuses one account (``StaffingRefused``, or overridden).
    """
    parsed = parse_csv(text)
    if parsed.problems and not parsed.rows:
        raise ImportRejected(parsed.problems)
    digest = file_sha256 or hashlib.sha256(text.encode()).hexdigest()
    async with conn.transaction():
        # Serialise with other writers (not with readers: SELECT is not blocked),
        # so that "exists" below stays true until commit.
        await conn.execute("LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE")
        existing = {
            row["account"].upper(): (row["account"], row["enabled"])
            for row in await conn.fetch("SELECT account, enabled FROM accounts")
        }
        problems = list(parsed.problems)
        updated = served = 0  # served: the change in enabled accounts
        sets_enabled = "enabled" in parsed.columns
        for line, account in parsed.rows:
            current, enabled = existing.get(account.account.upper(), (None, False))
            if current is None:
                served += account.enabled
                continue
            if current != account.account:
                problems.append(RowProblem(line, str(AccountExists(account.account, current))))
            if sets_enabled:
                served += int(account.enabled) - int(enabled)
            updated += 1
        if problems:
            raise ImportRejected(problems)
        await check_onboarding(
            conn=conn,
            added=served,
            actor=actor,
            subject="accounts",
            override=staffing_override,
        )
        await _write_rows(conn, box, parsed)
        return await record_import(
            conn=conn,
            actor=actor,
            action="account.import",
            subject="accounts",
            source=source,
            sha256=digest,
            columns=parsed.columns,
            added=len(parsed.rows) - updated,
            updated=updated,
        )


async def _write_rows(conn: Connection, box: SecretBox, parsed: ParsedCsv) -> None:
    # One statement for the whole file: the arrays are zipped back into rows by unnest.
    rows = [_row_values(box, account) for _, account in parsed.rows]
    arrays = [list(column) for column in zip(*rows, strict=True)]
    params = ", ".join(f"${i}::{t}[]" for i, t in enumerate(_ARRAY_TYPES, start=1))
    sets = [f"{c} = EXCLUDED.{c}" for name in parsed.columns for c in _UPDATES.get(name, ())]
    conflict = f"DO UPDATE SET {', '.join(sets)}" if sets else "DO NOTHING"
    await conn.execute(
        f"INSERT INTO accounts ({', '.join(_WRITE_COLUMNS)}) "  # noqa: S608 - fixed column names
        f"SELECT * FROM unnest({params}) ON CONFLICT (account) {conflict}",
        *arrays,
    )


# --- the receiver's view ------------------------------------------------------------------------


class SettingsLoader:
    """Turns account rows into ``AccountSettings``, reusing what an earlier load decrypted.

    A reload after one account changed then decrypts that account only: rows are
    compared whole (a re-sealed key has a new nonce, so any key change shows).
    """

    def __init__(self, box: SecretBox, default_policy: TimestampPolicy) -> None:
        self._box = box
        self._default = default_policy
        self._memo: dict[str, tuple[tuple[Any, ...], AccountSettings]] = {}
        self._policies: dict[tuple[Any, ...], TimestampPolicy] = {}
        self.skipped: dict[str, str] = {}  # account -> why it is not served (last load)

    async def load(self, conn: Connection) -> dict[str, AccountSettings]:
        """Every enabled account, by account id."""
        rows = await conn.fetch(f"SELECT {_LOAD_COLUMNS} FROM accounts WHERE enabled")  # noqa: S608
        return await self.build(rows)

    async def build(self, rows: Sequence[asyncpg.Record]) -> dict[str, AccountSettings]:
        """Settings of ``rows`` (the columns of ``load``); damaged keys are skipped and logged."""
        result: dict[str, AccountSettings] = {}
        memo: dict[str, tuple[tuple[Any, ...], AccountSettings]] = {}
        skipped: dict[str, str] = {}
        keyed = mismatched = 0
        old = self._memo
        for count, row in enumerate(rows, start=1):
            if count % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            values = tuple(row)
            account = values[0]
            if values[1] is not None:
                keyed += 1
            previous = old.get(account)
            if previous is not None and previous[0] == values:
                settings = previous[1]
            else:
                try:
                    settings = self._settings(*values)
                except MasterKeyMismatch as error:
                    mismatched += 1
                    skipped[account] = str(error)
                    continue
                except (SecretError, ProtocolError) as error:
                    skipped[account] = str(error)
                    continue
            result[account] = settings
            memo[account] = (values, settings)
        if mismatched and mismatched == keyed:
            # Not one key opens: this process has the wrong master key. Refuse the
            # whole load rather than serve every encrypted panel with DUH.
            raise MasterKeyMismatch(
                f"none of the {keyed} account keys opens with this ARC_MASTER_KEY; "
                "it is not the key they were stored with"
            )
        for account, reason in skipped.items():
            if self.skipped.get(account) != reason:  # once per account, not every reload
                logger.error("account %s is not served: its key does not open: %s", account, reason)
        self._memo, self.skipped = memo, skipped
        return result

    def _settings(
        self,
        account: str,
        ciphertext: bytes | None,
        key_format: str | None,
        utc_offset_minutes: int,
        ahead: float | None,
        behind: float | None,
        drift_action: str | None,
    ) -> AccountSettings:
        key = None
        if ciphertext is not None:
            plaintext = self._box.open(ciphertext, context=_context(account))
            # The table's CHECK gives every key its format.
            key = Dc09Key(plaintext, KeyFormat(key_format or "hex"))
        timestamps = None
        if ahead is not None or behind is not None or drift_action is not None:
            timestamps = self._policy(ahead, behind, drift_action)
        if key is None and timestamps is None and not utc_offset_minutes:
            return _PLAIN
        return AccountSettings(key, timestamps, timedelta(minutes=utc_offset_minutes))

    def _policy(
        self, ahead: float | None, behind: float | None, drift_action: str | None
    ) -> TimestampPolicy:
        # Accounts with the same overrides share one (frozen) policy object.
        spec = (ahead, behind, drift_action)
        policy = self._policies.get(spec)
        if policy is None:
            default = self._default
            # One action for the account, plain and encrypted alike: an account
            # set to "flag" is a panel that cannot resynchronise its clock.
            action = None if drift_action is None else DriftAction(drift_action)
            policy = TimestampPolicy(
                ahead=default.ahead if ahead is None else ahead,
                behind=default.behind if behind is None else behind,
                plain=default.plain if action is None else action,
                encrypted=default.encrypted if action is None else action,
            )
            self._policies[spec] = policy
        return policy


async def load_settings(
    *, conn: Connection, box: SecretBox, default_policy: TimestampPolicy
) -> dict[str, AccountSettings]:
    """Every enabled account, decrypted into what the DC-09 receiver needs, by account id."""
    return await SettingsLoader(box, default_policy).load(conn)


async def load_account(
    *, conn: Connection, box: SecretBox, account: str, default_policy: TimestampPolicy
) -> AccountSettings | None:
    """One enabled account's settings (None if it is absent or disabled)."""
    row = await conn.fetchrow(
        f"SELECT {_LOAD_COLUMNS} FROM accounts WHERE account = $1 AND enabled",  # noqa: S608
        account,
    )
    if row is None:
        return None
    return SettingsLoader(box, default_policy)._settings(*tuple(row))
