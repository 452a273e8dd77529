"""Staff in the database: add, replace, list, import; counts and compliance against 表1.

Every change is audited (``arc.audit.record``) in the transaction that makes
it. Eligibility (R2) is computed for the day asked about, from the stored
dates; compliance (R1) counts the qualified staff against the enabled
accounts (one account, one customer served).

``check_onboarding`` is the gate that ``arc.accounts.service`` calls before
it serves more customers: it refuses (``StaffingRefused``) when the centre
would fall short of 表1 afterwards, unless the caller gives a reason to
override, which is then audited with the shortfall.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from arc import audit
from arc.db import Connection
from arc.guards import staffing
from arc.guards.assignment import Ranking, rank
from arc.guards.eligibility import ineligibility
from arc.guards.models import Staff, StaffIn, StaffOut, parse_shift
from arc.guards.staffing import Category, Compliance
from arc.imports import ImportRejected, ImportResult, RowProblem, record_import
from arc.model import beijing_day

_WRITE_COLUMNS = (
    "name",
    "category",
    "certificate_no",
    "certificate_expires",
    "exam_passed_on",
    "trained_on",
    "date_of_birth",
    "beat",
    "shift_start",
    "shift_end",
    "latitude",
    "longitude",
    "position_at",
    "active",
)
_POSITION_COLUMNS = ("latitude", "longitude", "position_at")
_ARRAY_TYPES = (
    "uuid",
    "text",
    "text",
    "text",
    "date",
    "date",
    "date",
    "date",
    "text",
    "time",
    "time",
    "float8",
    "float8",
    "timestamptz",
    "bool",
)
_OUT_COLUMNS = ", ".join(("staff_id", *_WRITE_COLUMNS, "created_at", "updated_at"))

# The CSV columns `import_csv` reads, in the order `arc staff import` documents them.
CSV_COLUMNS = (
    "staff_id",
    "name",
    "category",
    "certificate_no",
    "certificate_expires",
    "exam_passed_on",
    "trained_on",
    "date_of_birth",
    "beat",
    "shift",
    "latitude",
    "longitude",
    "active",
)
# The names of `arc staff add`'s options are accepted as column names too.
_CSV_ALIASES = {
    "certificate": "certificate_no",
    "exam_passed": "exam_passed_on",
    "trained": "trained_on",
    "born": "date_of_birth",
}
_CSV_REQUIRED = ("name", "category", "date_of_birth")


class StaffError(Exception):
    """A staff change that was refused."""


class StaffExists(StaffError):
    """The certificate number belongs to another member of staff already."""

    def __init__(self, certificate_no: str, holder: uuid.UUID | None) -> None:
        whose = f"staff {holder}" if holder is not None else "another member of staff"
        super().__init__(f"certificate {certificate_no} belongs to {whose} already")
        self.certificate_no = certificate_no
        self.holder = holder


class StaffNotFound(StaffError):
    """No member of staff has that id."""

    def __init__(self, staff_id: uuid.UUID) -> None:
        super().__init__(f"no member of staff has the id {staff_id}")
        self.staff_id = staff_id


class UnknownAccount(LookupError):
    """No account has that id (in any letter case): there is no site to propose guards for."""

    def __init__(self, account: str) -> None:
        super().__init__(f"no account {account}")
        self.account = account


class StaffingRefused(Exception):
    """Serving more customers would leave the centre short of 表1 (R1); nothing was written."""

    def __init__(self, compliance: Compliance, added: int) -> None:
        super().__init__(
            f"{staffing.RULE}: refused to serve {_customers(added)} more: serving "
            f"{_customers(compliance.customers)} (band {compliance.band.label}) takes more "
            f"qualified staff (R2) than the centre has: {compliance.shortfall_text()}"
        )
        self.compliance = compliance
        self.added = added


def _customers(count: int) -> str:
    return f"{count} customer{'s' if count != 1 else ''}"


def today() -> date:
    """The Beijing calendar day now: the day eligibility is judged on by default."""
    return beijing_day(datetime.now(UTC))


def _values(staff: StaffIn) -> tuple[Any, ...]:
    return (
        staff.name,
        staff.category.value,
        staff.certificate_no,
        staff.certificate_expires,
        staff.exam_passed_on,
        staff.trained_on,
        staff.date_of_birth,
        staff.beat,
        staff.shift_start,
        staff.shift_end,
        staff.latitude,
        staff.longitude,
        staff.position_at,
        staff.active,
    )


def _audit_details(staff: StaffIn) -> dict[str, Any]:
    # What eligibility rests on, for an inspector; not where the guard was.
    return {
        "name": staff.name,
        "category": staff.category.value,
        "certificate_no": staff.certificate_no,
        "certificate_expires": _iso(staff.certificate_expires),
        "exam_passed_on": _iso(staff.exam_passed_on),
        "trained_on": _iso(staff.trained_on),
        "date_of_birth": staff.date_of_birth.isoformat(),
        "beat": staff.beat,
        "shift": staff.shift,
        "has_position": staff.latitude is not None,
        "active": staff.active,
    }


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _staff(row: asyncpg.Record) -> Staff:
    # Not validated again: the input model's format rules (a certificate number's
    # shape, a plausible birth date) are for what people type; a stored row
    # passed the table's constraints, and one entered by other means (an old
    # import, a hand-made row) must still be listed, counted and judged by R2.
    return Staff.model_construct(**{**dict(row), "category": Category(row["category"])})


def out(staff: Staff, on: date) -> StaffOut:
    """``staff`` with their eligibility on ``on``."""
    reasons = ineligibility(staff, on)
    return StaffOut.model_construct(
        **dict(staff), eligible=not reasons, ineligible_reasons=tuple(reasons)
    )


# A position given without its time was known when it is stored.
_POSITION_AT = (
    "COALESCE(${n}::timestamptz, CASE WHEN ${lat}::float8 IS NULL THEN NULL ELSE now() END)"
)


async def add_staff(*, conn: Connection, staff: StaffIn, actor: str) -> StaffOut:
    """Add a member of staff; return them with their eligibility today."""
    staff_id = uuid.uuid4()
    values = _values(staff)
    params = [f"${i}" for i in range(2, len(values) + 2)]
    params[12] = _POSITION_AT.format(n=14, lat=12)
    async with conn.transaction():
        try:
            async with conn.transaction():  # a savepoint: _exists can still query
                row = await conn.fetchrow(
                    f"INSERT INTO staff (staff_id, {', '.join(_WRITE_COLUMNS)}) "  # noqa: S608 - fixed names
                    f"VALUES ($1, {', '.join(params)}) RETURNING {_OUT_COLUMNS}",
                    staff_id,
                    *values,
                )
        except asyncpg.UniqueViolationError:
            raise await _exists(conn, staff) from None
        assert row is not None  # noqa: S101 - INSERT ... RETURNING returns its row
        await audit.record(
            conn=conn,
            actor=actor,
            action="staff.add",
            subject=f"staff:{staff_id}",
            details=_audit_details(staff),
        )
    return out(_staff(row), today())


async def replace_staff(
    *, conn: Connection, staff_id: uuid.UUID, staff: StaffIn, actor: str
) -> StaffOut:
    """Overwrite every field of a member of staff; return them with their eligibility today."""
    values = _values(staff)
    sets = [f"{c} = ${i}" for i, c in enumerate(_WRITE_COLUMNS, start=2)]
    sets[12] = "position_at = " + _POSITION_AT.format(n=14, lat=12)
    async with conn.transaction():
        try:
            async with conn.transaction():  # a savepoint: _exists can still query
                row = await conn.fetchrow(
                    f"UPDATE staff SET {', '.join(sets)} WHERE staff_id = $1 "  # noqa: S608 - fixed names
                    f"RETURNING {_OUT_COLUMNS}",
                    staff_id,
                    *values,
                )
        except asyncpg.UniqueViolationError:
            raise await _exists(conn, staff) from None
        if row is None:
            raise StaffNotFound(staff_id)
        await audit.record(
            conn=conn,
            actor=actor,
            action="staff.replace",
            subject=f"staff:{staff_id}",
            details=_audit_details(staff),
        )
    return out(_staff(row), today())


async def _exists(conn: Connection, staff: StaffIn) -> StaffExists:
    # Called after the failed statement's savepoint rolled back: the transaction is usable.
    number = staff.certificate_no or ""
    holder = await conn.fetchval(
        "SELECT staff_id FROM staff WHERE upper(certificate_no) = upper($1)", number
    )
    return StaffExists(number, holder)


async def list_staff(*, conn: Connection, on: date | None = None) -> list[StaffOut]:
    """Every member of staff, by name, with their eligibility on ``on`` (default: today)."""
    day = on or today()
    rows = await conn.fetch(f"SELECT {_OUT_COLUMNS} FROM staff ORDER BY name, staff_id")  # noqa: S608
    return [out(_staff(row), day) for row in rows]


def count_eligible(staff: Iterable[Staff], on: date) -> dict[Category, int]:
    """Qualified staff on ``on``, by category (every category present)."""
    counts = dict.fromkeys(Category, 0)
    for member in staff:
        if not ineligibility(member, on):
            counts[member.category] += 1
    return counts


async def eligible_counts(*, conn: Connection, on: date | None = None) -> dict[Category, int]:
    """Staff who qualify on ``on`` (default: today), by category."""
    return count_eligible(await list_staff(conn=conn, on=on), on or today())


async def customers_served(*, conn: Connection) -> int:
    """The customers the centre serves: its enabled accounts."""
    count: int = await conn.fetchval("SELECT count(*) FROM accounts WHERE enabled")
    return count


async def staffing_status(
    *, conn: Connection, on: date | None = None, extra_customers: int = 0
) -> Compliance:
    """The centre's compliance with 表1 on ``on``, with ``extra_customers`` more if given."""
    customers = await customers_served(conn=conn) + extra_customers
    return staffing.compliance(customers, await eligible_counts(conn=conn, on=on))


async def check_onboarding(
    *,
    conn: Connection,
    added: int,
    actor: str,
    subject: str,
    override: str | None = None,
    on: date | None = None,
) -> Compliance | None:
    """Refuse ``added`` more customers that would break 表1, unless ``override`` gives a reason.

    Call it inside the transaction that adds them, after locking ``accounts``
    against other writers (so that two onboardings cannot both pass on the
    same count). An override of a real shortfall is audited as
    ``account.staffing_override`` with the reason and the shortfall. Returns
    the compliance after onboarding (None when nothing is added).
    """
    if override is not None and not override.strip():
        raise ValueError("a staffing override needs a reason")
    if added <= 0:
        return None
    # Staff changes wait until this commits: the staff counted here stay counted.
    await conn.execute("LOCK TABLE staff IN SHARE MODE")
    status = await staffing_status(conn=conn, on=on, extra_customers=added)
    if status.compliant:
        return status
    if override is None:
        raise StaffingRefused(status, added)
    await audit.record(
        conn=conn,
        actor=actor,
        action="account.staffing_override",
        subject=subject,
        details={
            "rule": staffing.RULE,
            "reason": override.strip(),
            "added": added,
            "customers": status.customers,
            "band": status.band.label,
            "shortfall": {s.category.value: s.shortfall for s in status.short},
            "required": {s.category.value: s.required for s in status.categories},
            "have": {s.category.value: s.have for s in status.categories},
        },
    )
    return status


# --- proposing guards for a site ---------------------------------------------------------------


async def report_position(
    *, conn: Connection, staff_id: uuid.UUID, latitude: float, longitude: float, at: datetime
) -> bool:
    """Record where a guard is now (from their phone); False when no such active guard.

    Not audited: a position is what the proposal ranks by, reported every
    minute or so, not a change to the centre's configuration. A report older
    than the one stored is ignored (phones send late after losing signal).
    """
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ValueError(f"not a position: {latitude},{longitude} (WGS-84 degrees)")
    result: str = await conn.execute(
        "UPDATE staff SET latitude = $2, longitude = $3, position_at = $4"
        " WHERE staff_id = $1 AND active AND (position_at IS NULL OR position_at <= $4)",
        staff_id,
        latitude,
        longitude,
        at,
    )
    if result.endswith(" 1"):
        return True
    exists = await conn.fetchval("SELECT active FROM staff WHERE staff_id = $1", staff_id)
    return bool(exists)  # a late report of an active guard is no failure


async def propose_guards(*, conn: Connection, account: str, now: datetime) -> Ranking:
    """Rank the patrol guards for an alarm at ``account``'s site at ``now``, and why not others.

    The site's position and beat come from ``account_sites`` (none recorded:
    guards are not filtered by beat, and those with a position are not
    ordered by distance); a guard's load is the incidents not closed that
    they are dispatched to.
    """
    site = await conn.fetchrow(
        "SELECT a.account, s.latitude, s.longitude, s.beat FROM accounts a"
        " LEFT JOIN account_sites s USING (account) WHERE upper(a.account) = upper($1)",
        account.strip(),
    )
    if site is None:
        raise UnknownAccount(account.strip())
    position = (
        None
        if site["latitude"] is None or site["longitude"] is None
        else (site["latitude"], site["longitude"])
    )
    rows = await conn.fetch(
        "SELECT guard, count(*) AS open FROM incidents"
        " WHERE status <> 'closed' AND guard IS NOT NULL GROUP BY guard"
    )
    load: dict[uuid.UUID, int] = {}
    for row in rows:
        try:
            load[uuid.UUID(row["guard"])] = row["open"]
        except ValueError:
            continue  # not a staff id (hand-made data): it loads nobody
    # Guards only: listing every operator and installer as "not patrol staff" hides the
    # guards the operator needs to see the reasons for.
    staff = [
        s
        for s in await list_staff(conn=conn, on=beijing_day(now))
        if s.category is Category.PATROL_RESPONSE
    ]
    return rank(staff, site_position=position, beat=site["beat"], at=now, open_assignments=load)


# --- CSV import ---------------------------------------------------------------------------------


@dataclass(slots=True)
class ParsedCsv:
    """An import file read and checked: its columns, valid rows (with lines) and problems."""

    columns: tuple[str, ...] = ()
    rows: list[tuple[int, uuid.UUID | None, StaffIn]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def _column_name(cell: str) -> str:
    name = "_".join(cell.strip().lower().replace("-", " ").split())
    return _CSV_ALIASES.get(name, name)


def _row(cells: Mapping[str, str]) -> tuple[uuid.UUID | None, StaffIn]:
    data: dict[str, Any] = {k: v.strip() for k, v in cells.items() if v.strip()}
    staff_id = None
    if "staff_id" in data:
        try:
            staff_id = uuid.UUID(data.pop("staff_id"))
        except ValueError:
            raise ValueError(f"staff_id: not a UUID (got {cells['staff_id']!r})") from None
    if "shift" in data:
        try:
            data["shift_start"], data["shift_end"] = parse_shift(data.pop("shift"))
        except ValueError as error:
            raise ValueError(f"shift: {error}") from None
    return staff_id, StaffIn.model_validate(data)


def _reason(error: ValidationError, cells: Mapping[str, str]) -> str:
    reasons = []
    for item in error.errors():
        column = str(item["loc"][0]) if item["loc"] else "row"
        message = item["msg"].removeprefix("Value error, ")
        if column in cells and column != "name":
            message += f" (got {cells[column]!r})"
        reasons.append(f"{column}: {message}")
    return "; ".join(reasons)


def parse_csv(text: str) -> ParsedCsv:
    """Read and validate every row of a staff file without touching the database."""
    parsed = ParsedCsv()
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    header: list[str] | None = None
    seen: dict[str, int] = {}  # staff id or certificate number -> line it is on
    line = 1
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [_column_name(cell) for cell in record]
                parsed.problems.extend(_header_problems(header, start))
                if parsed.problems:
                    return parsed
                parsed.columns = tuple(header)
                continue
            if len(record) != len(header):
                parsed.problems.append(
                    RowProblem(start, f"{len(record)} values, but the header has {len(header)}")
                )
                continue
            cells = dict(zip(header, record, strict=True))
            try:
                staff_id, staff = _row(cells)
            except ValidationError as error:
                parsed.problems.append(RowProblem(start, _reason(error, cells)))
                continue
            except ValueError as error:
                parsed.problems.append(RowProblem(start, str(error)))
                continue
            keys = [str(staff_id)] if staff_id else []
            keys += [staff.certificate_no] if staff.certificate_no else []
            again = [seen[k] for k in keys if k in seen]
            if again:
                parsed.problems.append(RowProblem(start, f"the same person as on line {again[0]}"))
                continue
            seen.update(dict.fromkeys(keys, start))
            parsed.rows.append((start, staff_id, staff))
    except csv.Error as error:
        parsed.problems.append(
            RowProblem(reader.line_num, f"not valid CSV ({error}); reading stopped here")
        )
    if header is None:
        parsed.problems.append(RowProblem(1, "the file is empty: expected a header row"))
    elif not parsed.rows and not parsed.problems:
        parsed.problems.append(RowProblem(1, "the file has a header but no staff"))
    return parsed


def _header_problems(header: list[str], line: int) -> Iterable[RowProblem]:
    known = ", ".join(CSV_COLUMNS)
    for name in _CSV_REQUIRED:
        if name not in header:
            yield RowProblem(line, f"the header has no {name!r} column (columns: {known})")
    for position, name in enumerate(header):
        if name not in CSV_COLUMNS:
            yield RowProblem(line, f"unknown column {name!r} (columns: {known})")
        elif name in header[:position]:
            yield RowProblem(line, f"column {name!r} appears twice")
    if ("latitude" in header) != ("longitude" in header):
        yield RowProblem(line, "latitude and longitude columns go together")


async def import_csv(
    *,
    conn: Connection,
    text: str,
    actor: str,
    file_sha256: str | None = None,
    source: str | None = None,
) -> ImportResult:
    """Import staff from CSV: all rows or none.

    A row is the same person as an existing member of staff when it gives
    their ``staff_id`` or their certificate number; it then replaces their
    record (the last known position is kept when the file has no position
    columns). Other rows add people. Staff not in the file are left alone.
    """
    parsed = parse_csv(text)
    if parsed.problems and not parsed.rows:
        raise ImportRejected(parsed.problems)
    digest = file_sha256 or hashlib.sha256(text.encode()).hexdigest()
    async with conn.transaction():
        # Serialise with other writers, so that what matched below stays so until commit.
        await conn.execute("LOCK TABLE staff IN SHARE ROW EXCLUSIVE MODE")
        rows = await conn.fetch("SELECT staff_id, upper(certificate_no) AS cert FROM staff")
        ids = {row["staff_id"] for row in rows}
        by_cert = {row["cert"]: row["staff_id"] for row in rows if row["cert"] is not None}
        problems = list(parsed.problems)
        resolved: list[tuple[uuid.UUID, StaffIn]] = []
        claimed: dict[uuid.UUID, int] = {}
        for line, given, staff in parsed.rows:
            holder = by_cert.get(staff.certificate_no.upper()) if staff.certificate_no else None
            if given is not None and given not in ids:
                problems.append(RowProblem(line, f"no member of staff has the id {given}"))
                continue
            if given is not None and holder is not None and holder != given:
                problems.append(
                    RowProblem(line, str(StaffExists(staff.certificate_no or "", holder)))
                )
                continue
            staff_id = given or holder or uuid.uuid4()
            if staff_id in claimed:
                problems.append(RowProblem(line, f"the same person as on line {claimed[staff_id]}"))
                continue
            claimed[staff_id] = line
            resolved.append((staff_id, staff))
        if problems:
            raise ImportRejected(problems)
        updated = sum(staff_id in ids for staff_id, _ in resolved)
        try:
            await _write_rows(conn, resolved, keep_position="latitude" not in parsed.columns)
        except asyncpg.UniqueViolationError:
            # Two people swapping certificate numbers in one file: the index sees one at a time.
            raise ImportRejected(
                [RowProblem(1, "the file moves a certificate number from one person to another")]
            ) from None
        return await record_import(
            conn=conn,
            actor=actor,
            action="staff.import",
            subject="staff",
            source=source,
            sha256=digest,
            columns=parsed.columns,
            added=len(resolved) - updated,
            updated=updated,
        )


async def _write_rows(
    conn: Connection, rows: Sequence[tuple[uuid.UUID, StaffIn]], *, keep_position: bool
) -> None:
    # One statement for the whole file: the arrays are zipped back into rows by unnest.
    values = [(staff_id, *_values(staff)) for staff_id, staff in rows]
    arrays = [list(column) for column in zip(*values, strict=True)]
    params = ", ".join(f"${i}::{t}[]" for i, t in enumerate(_ARRAY_TYPES, start=1))
    columns = ("staff_id", *_WRITE_COLUMNS)
    selected = [
        "COALESCE(position_at, CASE WHEN latitude IS NULL THEN NULL ELSE now() END)"
        if c == "position_at"
        else c
        for c in columns
    ]
    updated = [c for c in _WRITE_COLUMNS if not (keep_position and c in _POSITION_COLUMNS)]
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in updated)
    await conn.execute(
        f"INSERT INTO staff ({', '.join(columns)}) "  # noqa: S608 - fixed column names
        f"SELECT {', '.join(selected)} FROM unnest({params}) AS r({', '.join(columns)}) "
        f"ON CONFLICT (staff_id) DO UPDATE SET {sets}",
        *arrays,
    )
