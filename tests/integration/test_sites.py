"""Accounts' sites against a real PostgreSQL: stored, constrained, audited, and by command."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import date, datetime, time

import asyncpg
import orjson
import pytest
import pytest_asyncio

from arc import db
from arc.accounts import sites
from arc.accounts.models import KeyholderIn, SiteIn, Technology, ZoneIn
from arc.accounts.schedule import parse_schedule
from arc.demo import DEMO_SITES, _seed_sites
from arc.guards import service as staff_service
from arc.guards.models import StaffIn
from arc.guards.staffing import Category
from arc.model import BEIJING

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ACTOR = "test:admin"
ADDRESS = "北京市朝阳区建国门外大街 1 号"
MORNING = datetime(2026, 12, 2, 10, 30, tzinfo=BEIJING)


@pytest_asyncio.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    connection = await db.connect(database_url)
    try:
        await db.migrate(conn=connection)
        # Straight into the table: onboarding is tested in test_accounts.py.
        await connection.execute(
            "INSERT INTO accounts (account, name, link_test_seconds) VALUES"
            " ('1234', '便利店', 600), ('5678', '银行网点', NULL),"
            " ('A1B2', '珠宝店', 120), ('C3D4', '仓库', 3600)"
        )
        yield connection
    finally:
        await connection.close()


async def audit_actions(conn: asyncpg.Connection[asyncpg.Record]) -> list[str]:
    rows = await conn.fetch("SELECT action FROM audit_log ORDER BY chain_seq")
    return [r["action"] for r in rows]


@pytest.mark.asyncio
async def test_a_site_its_zones_keyholders_and_hours_are_stored_and_audited(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    site = SiteIn(address="北京市朝阳区建国门外大街 1 号", latitude=39.9088, longitude=116.459)
    out = await sites.set_site(conn=conn, account="a1b2", site=site, actor=ACTOR)
    assert (out.account.account, out.address, out.beat) == ("A1B2", site.address, None)
    await sites.set_zone(
        conn=conn, account="A1B2", zone=ZoneIn(zone="003", technology=Technology.PIR), actor=ACTOR
    )
    # "3" is zone "003": recorded once, in the spelling given last.
    await sites.set_zone(
        conn=conn,
        account="A1B2",
        zone=ZoneIn(zone="3", name="展厅", technology=Technology.DUAL_TECH),
        actor=ACTOR,
    )
    await sites.set_zone(
        conn=conn,
        account="A1B2",
        zone=ZoneIn(zone="10", name="后门", technology=Technology.DOOR_CONTACT),
        actor=ACTOR,
    )
    keyholders = [
        KeyholderIn(name="陈经理", phone="13600136004", relation="店长"),
        KeyholderIn(name="值班室", phone="010-8470 0000"),
    ]
    await sites.set_keyholders(conn=conn, account="A1B2", keyholders=keyholders, actor=ACTOR)
    schedule = parse_schedule(["mon-fri 08:00-18:00", "sat 09:00-12:00"])
    await sites.set_schedule(conn=conn, account="A1B2", schedule=schedule, actor=ACTOR)
    shown = await sites.show_site(conn=conn, account="A1B2")
    assert [(z.zone, z.name, z.technology) for z in shown.zones] == [
        ("3", "展厅", Technology.DUAL_TECH),
        ("10", "后门", Technology.DOOR_CONTACT),
    ]
    assert shown.keyholders == tuple(keyholders)
    assert shown.schedule == ("mon-fri 08:00-18:00", "sat 09:00-12:00", "sun closed")
    assert await sites.load_zone_technologies(conn=conn) == {
        "A1B2": {"3": Technology.DUAL_TECH, "10": Technology.DOOR_CONTACT}
    }
    assert await sites.load_schedules(conn=conn) == {"A1B2": schedule}
    assert await audit_actions(conn) == [
        "account.site",
        "account.zone",
        "account.zone",
        "account.zone",
        "account.keyholders",
        "account.schedule",
    ]
    # Phone numbers are masked in the audit log, which every auditor reads.
    details = await conn.fetchval(
        "SELECT details FROM audit_log WHERE action = 'account.keyholders'"
    )
    assert orjson.loads(details)["keyholders"][0]["phone"] == "*******6004"
    # Replacing them replaces the list, in order; clearing the schedule unsupervises.
    await sites.set_keyholders(conn=conn, account="A1B2", keyholders=keyholders[::-1], actor=ACTOR)
    await sites.set_schedule(conn=conn, account="A1B2", schedule=None, actor=ACTOR)
    shown = await sites.show_site(conn=conn, account="A1B2")
    assert shown.keyholders == tuple(keyholders[::-1]) and shown.schedule == ()
    assert await sites.remove_zone(conn=conn, account="A1B2", zone="0010", actor=ACTOR)
    assert not await sites.remove_zone(conn=conn, account="A1B2", zone="10", actor=ACTOR)
    with pytest.raises(sites.AccountNotFound, match="no account FFFF"):
        await sites.set_site(conn=conn, account="FFFF", site=site, actor=ACTOR)


@pytest.mark.asyncio
async def test_the_tables_refuse_what_the_models_refuse_and_tell_the_dispatcher(
    conn: asyncpg.Connection[asyncpg.Record], database_url: str
) -> None:
    bad = [
        "INSERT INTO account_sites (account, latitude) VALUES ('1234', 39.9)",
        "INSERT INTO account_sites (account, latitude, longitude) VALUES ('1234', 91, 116)",
        "INSERT INTO account_zones (account, zone, technology) VALUES ('1234', '1', 'laser')",
        "INSERT INTO account_zones (account, zone, technology) VALUES ('1234', '1 2', 'pir')",
        "INSERT INTO account_keyholders (account, position, name, phone)"
        " VALUES ('1234', 1, '王', 'call me')",
        "INSERT INTO account_schedules (account, weekday, opens, closes) VALUES ('1234', 8, 0, 60)",
        "INSERT INTO account_schedules (account, weekday, opens, closes)"
        " VALUES ('1234', 1, 600, 500)",
        "INSERT INTO account_schedules (account, weekday, opens, closes)"
        " VALUES ('1234', 1, 600, NULL)",
    ]
    for statement in bad:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(statement)
    await conn.execute(
        "INSERT INTO account_zones (account, zone, technology) VALUES ('1234', '003', 'pir')"
    )
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(
            "INSERT INTO account_zones (account, zone, technology) VALUES ('1234', '3', 'pir')"
        )
    # The dispatcher (arc_app) reads and is told; it cannot write.
    listener = await asyncpg.connect(database_url)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("arc_rules", lambda *args: heard.put_nowait(str(args[-1])))
    try:
        await sites.set_zone(
            conn=conn,
            account="1234",
            zone=ZoneIn(zone="4", technology=Technology.BEAM),
            actor=ACTOR,
        )
        async with asyncio.timeout(5):
            assert await heard.get() == "account_zones"
    finally:
        await listener.close()
    grants = await conn.fetch(
        "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
        " WHERE grantee = 'arc_app' AND table_name LIKE 'account\\_%' ORDER BY 1, 2"
    )
    assert {(r["table_name"], r["privilege_type"]) for r in grants} == {
        (t, "SELECT")
        for t in ("account_keyholders", "account_schedules", "account_sites", "account_zones")
    }


@pytest.mark.asyncio
async def test_the_demo_sites_are_seeded_once(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    await _seed_sites(conn)
    first = await audit_actions(conn)
    await _seed_sites(conn)
    assert await audit_actions(conn) == first  # idempotent: nothing written again
    shown = await sites.show_site(conn=conn, account="5678")
    assert shown.beat == "西城-金融街" and len(shown.zones) == 4
    assert shown.schedule == ("mon-fri 09:00-17:00", "sat 10:00-15:00", "sun closed")
    assert set(DEMO_SITES) == {"1234", "5678", "A1B2", "C3D4"}


# --- the command line ---------------------------------------------------------------------------


async def arc(database_url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARC_")}
    env["ARC_DATABASE_URL"] = database_url
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
async def test_the_site_commands(
    conn: asyncpg.Connection[asyncpg.Record], database_url: str
) -> None:
    code, out, err = await arc(
        database_url, "account", "site", "1234", "--address", "北京市朝阳区建国门外大街 1 号",
        "--position", "39.9088,116.4590", "--beat", "朝阳-国贸",
    )  # fmt: skip
    assert (code, err) == (0, ""), err
    assert out == f"account 1234 site: {ADDRESS}; 39.908800,116.459000; beat 朝阳-国贸\n"
    # Options not given keep their value; an empty one clears.
    code, out, _ = await arc(database_url, "account", "site", "1234", "--position", "")
    assert out == f"account 1234 site: {ADDRESS}; position unknown; beat 朝阳-国贸\n"
    code, out, err = await arc(
        database_url, "account", "zone", "1234", "001",
        "--name", "前门", "--technology", "door_contact",
    )  # fmt: skip
    assert (code, out) == (0, "zone 001 recorded: 前门, door_contact 门磁\n"), err
    code, out, err = await arc(
        database_url, "account", "keyholders", "1234",
        "--set", "刘店长,13800138001,店长", "--set", "王老板,139 0013 9002",
    )  # fmt: skip
    assert (code, out) == (0, "2 keyholders recorded, in call order\n"), err
    code, out, err = await arc(
        database_url, "account", "schedule", "1234", "mon-fri 08:00-18:00", "sat 09:00-12:00"
    )
    assert code == 0, err
    assert out == (
        "schedule (北京时间 Beijing time): mon-fri 08:00-18:00; sat 09:00-12:00; sun closed\n"
    )
    code, out, err = await arc(database_url, "account", "show", "1234")
    assert code == 0, err
    assert "001   前门  door_contact 门磁" in out
    assert "1     刘店长     13800138001    店长" in out
    assert "  mon-fri 08:00-18:00\n  sat 09:00-12:00\n  sun closed\n" in out
    code, out, _ = await arc(database_url, "account", "show", "1234", "--json")
    shown = orjson.loads(out)
    assert shown["beat"] == "朝阳-国贸" and shown["keyholders"][1]["phone"] == "139 0013 9002"

    # Errors name the option and the rule; nothing is written.
    before = await audit_actions(conn)
    for args, message in [
        (
            ("schedule", "1234", "mon-fri 08:00-12:00 11:00-13:00"),
            "arc account schedule: 营业时间 open/close schedule: mon: windows 08:00-12:00 and "
            "11:00-13:00 overlap",
        ),
        (("zone", "1234", "0x1!", "--technology", "pir"), "arc account zone: ZONE: zone must be"),
        (("site", "FFFF", "--beat", "x"), "arc account site: no account FFFF"),
        (("site", "1234", "--position", "north"), "position must be written LAT,LON"),
        (("site", "1234", "--position", "99,116"), "--position: Input should be less than"),
        (("keyholders", "1234", "--set", "王,abc"), "phone: phone must be digits"),
        (("zone", "1234", "5"), "--technology is required (or --remove)"),
    ]:
        code, out, err = await arc(database_url, "account", *args)
        assert code in (1, 2) and out == "", (args, out)
        assert message in err, (args, err)
    assert await audit_actions(conn) == before


# --- proposing guards for the site ------------------------------------------------------------


def guard(name: str, beat: str, position: tuple[float, float] | None, **more: object) -> StaffIn:
    data: dict[str, object] = {
        "name": name,
        "category": Category.PATROL_RESPONSE,
        "certificate_no": f"京2019{sum(map(ord, name)):06d}",
        "certificate_expires": date(2035, 12, 31),
        "exam_passed_on": date(2019, 3, 1),
        "trained_on": date(2019, 4, 1),
        "date_of_birth": date(1990, 5, 20),
        "beat": beat,
        "shift_start": time(8),
        "shift_end": time(20),
        "latitude": None if position is None else position[0],
        "longitude": None if position is None else position[1],
    }
    return StaffIn.model_validate(data | more)


@pytest.mark.asyncio
async def test_guards_are_proposed_for_the_site_nearest_first_with_every_exclusion(
    conn: asyncpg.Connection[asyncpg.Record], database_url: str
) -> None:
    await sites.set_site(
        conn=conn,
        account="1234",
        site=SiteIn(address=ADDRESS, latitude=39.9088, longitude=116.4590, beat="朝阳-国贸"),
        actor=ACTOR,
    )
    added = {}
    for member in (
        guard("王芳", "朝阳-国贸", (39.9125, 116.4551)),
        guard("张伟", "朝阳-国贸", (39.9087, 116.4605)),
        guard("赵敏", "朝阳-国贸", None),
        guard("李强", "朝阳-望京", (39.9967, 116.4708)),
        guard("钱进", "朝阳-国贸", (39.9088, 116.4590), certificate_expires=date(2024, 6, 30)),
        guard("刘洋", "朝阳-国贸", (39.9088, 116.4590), shift_start=time(20), shift_end=time(8)),
    ):
        stored = await staff_service.add_staff(conn=conn, staff=member, actor=ACTOR)
        added[stored.name] = stored.staff_id
    # 张伟 is on another incident: his load shows, it does not outrank distance.
    await conn.execute(
        "INSERT INTO incidents (incident_id, shard, account, event_class, grade, status, title,"
        " opened_at, updated_at, guard, signal_count, restored, confirmed, escalation_level,"
        " state) VALUES (gen_random_uuid(), 0, '5678', 'burglary', 2, 'dispatched', 't',"
        " now(), now(), $1, 1, false, false, 0, '{}')",
        str(added["张伟"]),
    )
    ranking = await staff_service.propose_guards(conn=conn, account="1234", now=MORNING)
    assert [(p.staff.name, p.load) for p in ranking.proposals] == [
        ("张伟", 1),
        ("王芳", 0),
        ("赵敏", 0),  # position unknown: after every known one
    ]
    assert ranking.proposals[0].distance_m is not None and ranking.proposals[0].distance_m < 200
    reasons = {e.staff.name: e.reason for e in ranking.excluded}
    assert reasons.keys() == {"刘洋", "李强", "钱进"}
    assert reasons["刘洋"] == "off shift at 10:30 Beijing time (shift 20:00-08:00)"
    assert reasons["李强"] == "not on beat 朝阳-国贸 (beat 朝阳-望京)"
    assert "expired on 2024-06-30 (保安员证已过期)" in reasons["钱进"]
    with pytest.raises(staff_service.UnknownAccount):
        await staff_service.propose_guards(conn=conn, account="FFFF", now=MORNING)

    code, out, err = await arc(database_url, "staff", "propose", "1234", "--at", "2026-12-02T10:30")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "account 1234, 2026-12-02 10:30 北京时间 Beijing time"
    assert lines[2].startswith("1     张伟") and "0.1 km" in lines[2] and "朝阳-国贸" in lines[2]
    assert "3 proposed (建议派遣)" in out and "3 not proposed (不予派遣)" in out
    assert "    - not on beat 朝阳-国贸 (beat 朝阳-望京)" in out
    code, out, _ = await arc(database_url, "staff", "propose", "1234", "--json")
    assert code == 0 and set(orjson.loads(out)) == {"account", "at", "proposals", "excluded"}
    code, out, err = await arc(database_url, "staff", "propose", "FFFF")
    assert (code, out, err) == (1, "", "arc staff propose: no account FFFF\n")
