"""Staff and 表1 against a real PostgreSQL: records, counts, onboarding refused or overridden."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import date, time, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from arc import db
from arc.accounts import service as accounts
from arc.accounts.models import AccountIn
from arc.guards import service
from arc.guards.models import StaffIn
from arc.guards.staffing import BANDS, Category
from tests.integration.staff_helpers import add_qualified

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MASTER = "master key of the test centre, 32 characters at least"
BOX = accounts.key_box(MASTER)
ACTOR = "test:admin"
P, D, N = Category.PATROL_RESPONSE, Category.DUTY_OPERATORS, Category.DESIGN_INSTALLATION
FIRST_BAND = {c: BANDS[0].minimum(c) for c in Category}  # 10, 10, 20: up to 100 customers


@pytest_asyncio.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    connection = await db.connect(database_url)
    try:
        await db.migrate(conn=connection)
        yield connection
    finally:
        await connection.close()


def guard(name: str = "张伟", **changes: object) -> StaffIn:
    data: dict[str, object] = {
        "name": name,
        "category": "patrol_response",
        "certificate_no": "京2019000001",
        "certificate_expires": date(2999, 12, 31),
        "exam_passed_on": date(2019, 3, 1),
        "trained_on": date(2019, 4, 1),
        "date_of_birth": date(1990, 5, 20),
    }
    return StaffIn.model_validate(data | changes)


async def serve(
    conn: asyncpg.Connection[asyncpg.Record], count: int, *, enabled: bool = True
) -> None:
    """``count`` more accounts, straight into the table (the customers served)."""
    first = await conn.fetchval("SELECT count(*) FROM accounts")
    await conn.execute(
        "INSERT INTO accounts (account, enabled)"
        " SELECT to_hex(65536 + n), $3 FROM generate_series($1 + 1, $1 + $2) AS n",
        first,
        count,
        enabled,
    )


async def audit_rows(
    conn: asyncpg.Connection[asyncpg.Record],
) -> list[tuple[str, dict[str, object]]]:
    rows = await conn.fetch("SELECT action, details FROM audit_log ORDER BY chain_seq")
    return [(r["action"], json.loads(r["details"])) for r in rows]


# --- the records --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_add_replace_list_and_audit(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    added = await service.add_staff(
        conn=conn,
        staff=guard(beat="朝阳-国贸", shift_start=time(20), shift_end=time(8), latitude=39.9087,
                    longitude=116.4605),
        actor=ACTOR,
    )  # fmt: skip
    assert added.eligible and added.ineligible_reasons == () and added.shift == "20:00-08:00"
    assert added.position_at is not None  # a position given without a time: known now
    with pytest.raises(
        service.StaffExists, match=f"京2019000001 belongs to staff {added.staff_id}"
    ):
        await service.add_staff(
            conn=conn, staff=guard("王芳", certificate_no="京2019000001"), actor=ACTOR
        )
    replaced = await service.replace_staff(
        conn=conn,
        staff_id=added.staff_id,
        staff=guard(certificate_expires=date(2020, 1, 1)),
        actor=ACTOR,
    )
    assert not replaced.eligible and "保安员证已过期" in replaced.ineligible_reasons[0]
    assert replaced.created_at == added.created_at and replaced.updated_at > added.updated_at
    assert replaced.latitude is None and replaced.beat is None  # replace is every field
    with pytest.raises(service.StaffNotFound):
        await service.replace_staff(conn=conn, staff_id=uuid.uuid4(), staff=guard(), actor=ACTOR)

    listed = await service.list_staff(conn=conn, on=date(2019, 12, 31))
    assert [(s.name, s.eligible) for s in listed] == [("张伟", True)]  # not yet expired then
    rows = await audit_rows(conn)
    assert [action for action, _ in rows] == ["staff.add", "staff.replace"]
    assert rows[0][1]["certificate_no"] == "京2019000001" and rows[0][1]["has_position"] is True
    assert "39.9087" not in json.dumps(rows)  # where a guard was is not kept for good

    # The dispatcher's role reads the staff, and changes nothing.
    await conn.execute("SET ROLE arc_app")
    assert len(await service.list_staff(conn=conn)) == 1
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await service.add_staff(conn=conn, staff=guard("王芳", certificate_no=None,
                                certificate_expires=None), actor=ACTOR)  # fmt: skip


@pytest.mark.asyncio
async def test_the_table_refuses_what_the_model_refuses(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    head = "INSERT INTO staff (staff_id, name, category, date_of_birth"
    values = "VALUES (gen_random_uuid(), 'x', 'patrol_response', DATE '1990-01-01'"
    for statement in (
        f"{head}) VALUES (gen_random_uuid(), 'x', 'cook', DATE '1990-01-01')",
        f"{head}, certificate_no) {values}, '京2019000001')",  # no expiry date
        f"{head}, shift_start) {values}, TIME '08:00')",  # no end
        f"{head}, latitude) {values}, 39.9)",  # no longitude
        f"{head}, latitude, longitude) {values}, 91, 116)",
        f"{head}, position_at) {values}, now())",  # a time without a position
    ):
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(statement)


# --- counting and compliance --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_compliance_at_band_edges_counts_only_qualified_staff(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    await add_qualified(conn, FIRST_BAND)
    today = service.today()
    kinds: list[dict[str, object]] = [
        {"certificate_expires": today - timedelta(days=1)},
        {"date_of_birth": today - timedelta(days=17 * 365)},
        {"exam_passed_on": None},
        {"trained_on": None},
        {"active": False},
        {"certificate_no": None, "certificate_expires": None},
    ]
    serial = 0
    for changes in kinds:  # each kind of person who does not qualify, in every category
        for category in Category:
            serial += 1
            person = {"category": category, "certificate_no": f"京2020{serial:06d}"} | changes
            await service.add_staff(
                conn=conn, staff=guard(f"不合格{serial}", **person), actor=ACTOR
            )
    assert await service.eligible_counts(conn=conn) == FIRST_BAND
    listed = await service.list_staff(conn=conn)
    assert sum(not s.eligible for s in listed) == 18

    await serve(conn, 100)
    await serve(conn, 7, enabled=False)  # not served: not customers
    status = await service.staffing_status(conn=conn)
    assert (status.customers, status.band.label, status.compliant, status.headroom) == (
        100,
        "0-100",
        True,
        0,
    )
    assert status.customers_per_patrol_guard == 10.0
    over = await service.staffing_status(conn=conn, extra_customers=1)
    assert (over.band.label, over.compliant) == ("101-500", False)
    assert {s.category: s.shortfall for s in over.short} == {P: 10, D: 5, N: 5}


@pytest.mark.asyncio
async def test_onboarding_is_refused_with_the_rule_and_writes_nothing(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    await add_qualified(conn, FIRST_BAND)
    await serve(conn, 100)
    with pytest.raises(service.StaffingRefused) as caught:
        await accounts.add_account(
            conn=conn, box=BOX, account=AccountIn(account="ABCD"), actor=ACTOR
        )
    message = str(caught.value)
    assert message.startswith("联网报警运营规范 §5.2 表1: refused to serve 1 customer more: ")
    assert "serving 101 customers (band 101-500) takes more qualified staff (R2)" in message
    assert "现场处置巡逻 patrol_response: 20 required, 10 qualified, 10 short" in message
    assert "人工值守 duty_operators: 15 required, 10 qualified, 5 short" in message
    assert "设计施工 design_installation: 25 required, 20 qualified, 5 short" in message
    with pytest.raises(service.StaffingRefused):
        await accounts.import_csv(conn=conn, box=BOX, text="account\nABCD\nABCE\n", actor=ACTOR)
    assert await conn.fetchval("SELECT count(*) FROM accounts") == 100
    assert await audit_rows(conn) == []

    # What serves no one more passes: a disabled account, an existing one imported again,
    # a file that enables one and disables another.
    await accounts.add_account(
        conn=conn, box=BOX, account=AccountIn(account="ABCD", enabled=False), actor=ACTOR
    )
    with pytest.raises(service.StaffingRefused):  # enabling it would
        await accounts.add_account(
            conn=conn, box=BOX, account=AccountIn(account="ABCD"), actor=ACTOR, replace=True
        )
    await accounts.import_csv(conn=conn, box=BOX, text="account,name\n10001,again\n", actor=ACTOR)
    swap = "account,enabled\nABCD,true\n10001,false\n"
    await accounts.import_csv(conn=conn, box=BOX, text=swap, actor=ACTOR)
    assert await service.customers_served(conn=conn) == 100
    actions = [a for a, _ in await audit_rows(conn)]
    assert actions == ["account.add", "account.import", "account.import"]


@pytest.mark.asyncio
async def test_an_override_proceeds_and_is_audited_with_the_shortfall(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    await add_qualified(conn, FIRST_BAND)
    await serve(conn, 99)
    # Within the band: no override is needed, and none is recorded.
    await accounts.add_account(
        conn=conn, box=BOX, account=AccountIn(account="AAA1"), actor=ACTOR, staffing_override="x"
    )
    with pytest.raises(ValueError, match="needs a reason"):
        await accounts.add_account(
            conn=conn,
            box=BOX,
            account=AccountIn(account="AAA2"),
            actor=ACTOR,
            staffing_override=" ",
        )
    await accounts.add_account(
        conn=conn,
        box=BOX,
        account=AccountIn(account="AAA2"),
        actor=ACTOR,
        staffing_override="bank branch opening, two guards start Monday",
    )
    result = await accounts.import_csv(
        conn=conn, box=BOX, text="account\nAAA3\nAAA4\n", actor=ACTOR, staffing_override="pilot"
    )
    assert result.added == 2 and await service.customers_served(conn=conn) == 103
    rows = await audit_rows(conn)
    assert [a for a, _ in rows] == [
        "account.add",
        "account.staffing_override",
        "account.add",
        "account.staffing_override",
        "account.import",
    ]
    first = rows[1][1]
    assert first == {
        "rule": "联网报警运营规范 §5.2 表1",
        "reason": "bank branch opening, two guards start Monday",
        "added": 1,
        "customers": 101,
        "band": "101-500",
        "shortfall": {"patrol_response": 10, "duty_operators": 5, "design_installation": 5},
        "required": {"patrol_response": 20, "duty_operators": 15, "design_installation": 25},
        "have": {"patrol_response": 10, "duty_operators": 10, "design_installation": 20},
    }
    assert (rows[3][1]["reason"], rows[3][1]["added"], rows[3][1]["customers"]) == ("pilot", 2, 103)


@pytest.mark.asyncio
async def test_two_onboardings_cannot_both_take_the_last_place(
    conn: asyncpg.Connection[asyncpg.Record], database_url: str
) -> None:
    await add_qualified(conn, FIRST_BAND)
    await serve(conn, 99)  # room for one more
    other = await db.connect(database_url)
    try:
        async with conn.transaction():
            await accounts.add_account(
                conn=conn, box=BOX, account=AccountIn(account="AAA1"), actor=ACTOR
            )
            # Not committed yet: the other administrator's onboarding must wait for it...
            second = asyncio.create_task(
                accounts.add_account(
                    conn=other, box=BOX, account=AccountIn(account="AAA2"), actor=ACTOR
                )
            )
            await asyncio.sleep(0.5)
            assert not second.done()
        # ...and then count the first one.
        with pytest.raises(service.StaffingRefused, match="101 customers .band 101-500"):
            await asyncio.wait_for(second, 10)
    finally:
        await other.close()
    assert await service.customers_served(conn=conn) == 100


# --- import -------------------------------------------------------------------------------------

STAFF_CSV = "\n".join(
    (
        "\ufeffname,category,certificate,certificate_expires,exam_passed,trained,born,"
        "beat,shift,latitude,longitude",
        "张伟,patrol_response,京2019000001,2999-12-31,2019-03-01,2019-04-01,1990-05-20,"
        "朝阳-国贸,08:00-20:00,39.9087,116.4605",
        "王芳,duty_operators,,,2019-03-01,2019-04-01,1992-01-02,,,,",
        "",
    )
)


@pytest.mark.asyncio
async def test_staff_import_is_all_or_nothing_and_matches_by_certificate(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    result = await service.import_csv(conn=conn, text=STAFF_CSV, actor=ACTOR)
    assert (result.added, result.updated) == (2, 0)
    staff = {s.name: s for s in await service.list_staff(conn=conn)}
    assert staff["张伟"].eligible and staff["张伟"].shift == "08:00-20:00"
    assert "无保安员证" in staff["王芳"].ineligible_reasons[0]

    # The roster again, without positions: 张伟 matched by certificate, his position kept.
    roster = "name,category,certificate_no,certificate_expires,date_of_birth,active\n"
    roster += "张伟,patrol_response,京2019000001,2999-12-31,1990-05-20,false\n"
    again = await service.import_csv(conn=conn, text=roster, actor=ACTOR)
    assert (again.added, again.updated) == (0, 1)
    zhang = next(s for s in await service.list_staff(conn=conn) if s.name == "张伟")
    assert zhang.staff_id == staff["张伟"].staff_id and zhang.latitude == 39.9087
    assert not zhang.active and zhang.exam_passed_on is None  # the rest is the file's

    bad = (
        "staff_id,name,category,certificate_no,certificate_expires,date_of_birth,shift\n"
        f"{uuid.uuid4()},赵敏,patrol_response,,,1990-01-01,\n"
        ",黄勇,cook,,,1990-01-01,\n"
        ",李强,patrol_response,京2021000001,,1990-01-01,\n"
        ",刘洋,patrol_response,,,1990-01-01,8-20\n"
        ",陈静,patrol_response,京2021000002,2999-01-01,1990-01-01,\n"
        ",杨磊,patrol_response,京2021000002,2999-01-01,1990-01-01,\n"
    )
    with pytest.raises(service.ImportRejected) as caught:
        await service.import_csv(conn=conn, text=bad, actor=ACTOR)
    problems = [str(p) for p in caught.value.problems]
    assert [p.split(":")[0] for p in problems] == [f"line {n}" for n in (2, 3, 4, 5, 7)]
    assert "no member of staff has the id" in problems[0]
    assert "category" in problems[1] and "give both or neither" in problems[2]
    assert "shift: shift must be written HH:MM-HH:MM" in problems[3]
    assert problems[4] == "line 7: the same person as on line 6"
    assert len(await service.list_staff(conn=conn)) == 2
    assert [a for a, _ in await audit_rows(conn)] == ["staff.import", "staff.import"]


# --- the command line ---------------------------------------------------------------------------


async def arc(database_url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARC_")}
    env |= {"ARC_DATABASE_URL": database_url, "ARC_MASTER_KEY": MASTER}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arc.cli",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.asyncio
async def test_the_staff_and_rules_commands(
    conn: asyncpg.Connection[asyncpg.Record], database_url: str, tmp_path: Path
) -> None:
    await add_qualified(conn, {P: 9, D: 10, N: 20})  # one patrol guard short of band 1
    code, out, err = await arc(database_url, "account", "add", "1234")
    assert code == 1 and out == ""
    assert "arc account add: 联网报警运营规范 §5.2 表1: refused to serve 1 customer more" in err
    assert "patrol_response: 10 required, 9 qualified, 1 short" in err
    assert "--staffing-override REASON" in err

    code, out, err = await arc(
        database_url, "staff", "add", "--name", "张伟", "--category", "patrol_response",
        "--certificate", "京2019000001", "--certificate-expires", "2999-12-31",
        "--exam-passed", "2019-03-01", "--trained", "2019-04-01", "--born", "1990-05-20",
        "--beat", "朝阳-国贸", "--shift", "20:00-08:00", "--position", "39.9087,116.4605",
    )  # fmt: skip
    assert (code, err) == (0, "") and out.endswith(": 张伟, patrol_response, eligible\n")
    code, out, err = await arc(
        database_url, "staff", "add", "--name", "钱进", "--category", "patrol_response",
        "--born", "1990-05-20", "--certificate", "12",
    )  # fmt: skip
    assert code == 1 and "--certificate: certificate number (保安员证号) must be" in err
    code, out, err = await arc(database_url, "staff", "add", "--name", "x", "--category", "cook")
    assert code == 2 and "invalid choice: 'cook'" in err

    csv = tmp_path / "staff.csv"
    csv.write_text(STAFF_CSV.replace("京2019000001", "京2019000002"), encoding="utf-8")
    code, out, err = await arc(database_url, "staff", "import", str(csv))
    assert (code, err) == (0, "")
    assert out.startswith(f"imported 2 staff from {csv}: 2 added, 0 updated; compliant")

    code, table, err = await arc(database_url, "staff", "list")
    assert code == 0
    lines = table.splitlines()
    assert lines[0].split() == ["STAFF", "ID", "NAME", "CATEGORY", "CERTIFICATE", "SHIFT", "BEAT",
                                "ELIGIBLE"]  # fmt: skip
    assert any("20:00-08:00" in line and "朝阳-国贸" in line for line in lines)
    assert any(line.startswith("    - no security-guard certificate") for line in lines)
    assert lines[-1].startswith("42 staff, 41 eligible on ")
    assert lines[-1].endswith("(patrol_response 11, duty_operators 10, design_installation 20)")

    code, out, err = await arc(database_url, "account", "add", "1234")
    assert (code, err) == (0, "")
    await serve(conn, 100)
    code, out, err = await arc(
        database_url, "account", "add", "5678", "--staffing-override", "opening day"
    )
    assert code == 0 and err.startswith("arc account add: warning: 102 customers served, short")
    code, out, err = await arc(database_url, "account", "add", "9999", "--staffing-override", "")
    assert code == 2 and "give the reason" in err

    code, out, err = await arc(database_url, "rules", "staffing")
    assert (code, err) == (0, "") and len(out.splitlines()) == 1
    status = json.loads(out)
    assert (
        status["on"] == service.today().isoformat()
        and status["rule"] == "联网报警运营规范 §5.2 表1"
    )
    assert (status["customers"], status["band"], status["compliant"]) == (102, "101-500", False)
    assert status["patrol_response"] == {"required": 20, "have": 11, "shortfall": 9}
    assert status["headroom"] == 0 and status["customers_per_patrol_guard"] == 9.27
    overrides = await conn.fetch(
        "SELECT actor, details->>'reason' AS reason FROM audit_log"
        " WHERE action = 'account.staffing_override'"
    )
    assert [(r["actor"].startswith("cli"), r["reason"]) for r in overrides] == [
        (True, "opening day")
    ]


@pytest.mark.asyncio
async def test_a_row_made_by_other_means_is_still_listed_and_judged(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    # An old system's certificate number that the input model would refuse ("A1",
    # too short): stored all the same, it must not break the list.
    await conn.execute(
        "INSERT INTO staff (staff_id, name, category, certificate_no, certificate_expires,"
        " exam_passed_on, trained_on, date_of_birth) VALUES (gen_random_uuid(), '老周',"
        " 'patrol_response', 'A1', '2099-01-01', '2020-01-01', '2020-02-01', '1980-01-01')"
    )
    [listed] = await service.list_staff(conn=conn)
    assert listed.name == "老周" and listed.category is Category.PATROL_RESPONSE
    assert listed.eligible  # R2 judges the dates, not the number's shape
    assert (await service.eligible_counts(conn=conn))[Category.PATROL_RESPONSE] == 1
