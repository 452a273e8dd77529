"""``arc up --demo``: a small demonstration centre, seeded idempotently.

Four panels, as a centre would have them: two plain, one with an AES-128 key
typed as ASCII text (Ajax style), one with a hex key (DSC style); link tests
every 60 to 3,600 s. The keys are public demonstration keys, written in the
README: never use them for a real panel. Running it again changes nothing.

Staff first, so that the panels are onboarded within 联网报警运营规范 §5.2 表1
(REGULATION R1): for up to 100 customers, 10 patrol guards on beats around
Beijing with day and night shifts, 10 duty operators and 20 designers and
installers, all qualified; plus one patrol guard whose 保安员证 has expired,
to show that such a guard is listed but neither counted nor assigned (R2).
Demo staff are recognised by their certificate numbers. Each account has its
site (address and position on a guard's beat, zones with their detector
technologies, keyholders, open hours); parts missing are added on every run,
parts present are left as they are.
"""

from __future__ import annotations

from datetime import date, time

from pydantic import SecretStr

from arc import db
from arc.accounts import sites
from arc.accounts.models import AccountIn, KeyholderIn, SiteIn, Technology, ZoneIn, zone_key
from arc.accounts.schedule import parse_schedule
from arc.accounts.service import add_account, key_box, list_accounts
from arc.config import Settings
from arc.db import Connection
from arc.guards import service as staff_service
from arc.guards.models import StaffIn
from arc.guards.staffing import Category

DEMO_ACCOUNTS = (
    AccountIn(account="1234", name="演示：便利店 (plain)", link_test_seconds=600),
    AccountIn(account="5678", name="演示：银行网点 (plain)", link_test_seconds=60),
    AccountIn(
        account="A1B2",
        name="演示：珠宝店 (AES-128, ASCII key)",
        key=SecretStr("ascii:3BD7E66AA9E2F190"),
        link_test_seconds=120,
    ),
    AccountIn(
        account="C3D4",
        name="演示：仓库 (AES-128, hex key)",
        key=SecretStr("hex:000102030405060708090A0B0C0D0E0F"),
        link_test_seconds=3600,
    ),
)


# Each demo account's site: address, position (on a guard beat), zones with
# their detectors, keyholders in call order, open hours (Beijing time).
_T = Technology
DEMO_SITES: dict[str, tuple[SiteIn, list[ZoneIn], list[KeyholderIn], list[str]]] = {
    "1234": (
        SiteIn(
            address="北京市朝阳区建国门外大街 1 号 底商 3 号",
            latitude=39.9088,
            longitude=116.4590,
            beat="朝阳-国贸",
        ),
        [
            ZoneIn(zone="001", name="前门", technology=_T.DOOR_CONTACT),
            ZoneIn(zone="002", name="店堂", technology=_T.PIR),
            ZoneIn(zone="003", name="后门", technology=_T.DOOR_CONTACT),
            ZoneIn(zone="004", name="收银台", technology=_T.PANIC_BUTTON),
        ],
        [
            KeyholderIn(name="刘店长", phone="13800138001", relation="店长 manager"),
            KeyholderIn(name="王老板", phone="13900139002", relation="业主 owner"),
        ],
        ["daily 07:00-23:00"],
    ),
    "5678": (
        SiteIn(
            address="北京市西城区金融大街 10 号",
            latitude=39.9160,
            longitude=116.3600,
            beat="西城-金融街",
        ),
        [
            ZoneIn(zone="001", name="金库门", technology=_T.DOOR_CONTACT),
            ZoneIn(zone="002", name="金库墙", technology=_T.VIBRATION),
            ZoneIn(zone="003", name="营业厅", technology=_T.DUAL_TECH),
            ZoneIn(zone="004", name="柜台", technology=_T.PANIC_BUTTON),
        ],
        [
            KeyholderIn(name="赵行长", phone="13700137003", relation="行长 branch manager"),
            KeyholderIn(name="保卫科", phone="010-6651 2345", relation="保卫科 security office"),
        ],
        ["mon-fri 09:00-17:00", "sat 10:00-15:00", "sun closed"],
    ),
    "A1B2": (
        SiteIn(
            address="北京市东城区王府井大街 255 号 一层",
            latitude=39.9142,
            longitude=116.4110,
            beat="东城-王府井",
        ),
        [
            ZoneIn(zone="1", name="橱窗", technology=_T.GLASS_BREAK),
            ZoneIn(zone="2", name="展厅", technology=_T.PIR),
            ZoneIn(zone="3", name="保险柜", technology=_T.VIBRATION),
            ZoneIn(zone="4", name="卷帘门", technology=_T.DOOR_CONTACT),
        ],
        [KeyholderIn(name="陈经理", phone="13600136004", relation="店长 manager")],
        ["daily 10:00-22:00"],
    ),
    "C3D4": (
        SiteIn(
            address="北京市朝阳区望京东园 7 号 仓库 B",
            latitude=39.9960,
            longitude=116.4730,
            beat="朝阳-望京",
        ),
        [
            ZoneIn(zone="001", name="大门", technology=_T.DOOR_CONTACT),
            ZoneIn(zone="002", name="库区", technology=_T.BEAM),
            ZoneIn(zone="003", name="库区", technology=_T.MICROWAVE),
            ZoneIn(zone="009", name="配电间", technology=_T.SMOKE),
        ],
        [
            KeyholderIn(name="孙主管", phone="13500135005", relation="仓库主管 supervisor"),
            KeyholderIn(name="值班室", phone="010-8470 0000", relation="值班室 duty room"),
        ],
        ["mon-sat 08:00-18:00"],
    ),
}


_DAY, _NIGHT = (time(8), time(20)), (time(20), time(8))
# Patrol guards: name, beat, shift, position (WGS-84, near the beat).
_PATROL = (
    ("张伟", "朝阳-国贸", _DAY, (39.9087, 116.4605)),
    ("王芳", "朝阳-国贸", _NIGHT, (39.9125, 116.4551)),
    ("李强", "朝阳-望京", _DAY, (39.9967, 116.4708)),
    ("刘洋", "朝阳-望京", _NIGHT, (39.9921, 116.4803)),
    ("陈静", "海淀-中关村", _DAY, (39.9834, 116.3162)),
    ("杨磊", "海淀-中关村", _NIGHT, (39.9790, 116.3098)),
    ("赵敏", "东城-王府井", _DAY, (39.9149, 116.4108)),
    ("黄勇", "东城-王府井", _NIGHT, (39.9172, 116.4074)),
    ("周杰", "西城-金融街", _DAY, (39.9155, 116.3590)),
    ("吴霞", "西城-金融街", _NIGHT, (39.9203, 116.3547)),
)
_OPERATORS = ("徐丽", "孙浩", "马超", "朱琳", "胡斌", "郭婷", "何军", "高燕", "林峰", "罗娜")
_INSTALLERS = (
    "梁涛", "宋佳", "郑凯", "谢芳", "韩冰", "唐亮", "冯雪", "于洋", "董鹏", "萧然",
    "程晨", "曹阳", "袁帅", "邓颖", "许诺", "傅强", "沈悦", "曾毅", "彭博", "吕薇",
)  # fmt: skip
_VALID_UNTIL = date(2035, 12, 31)


def _qualified(index: int, name: str, category: Category, **extra: object) -> StaffIn:
    return StaffIn.model_validate(
        {
            "name": name,
            "category": category,
            "certificate_no": f"京2019{index:06d}",
            "certificate_expires": _VALID_UNTIL,
            "exam_passed_on": date(2019, 3, 1 + index % 28),
            "trained_on": date(2019, 4, 1 + index % 28),
            "date_of_birth": date(1980 + index % 20, 1 + index % 12, 1 + index % 28),
            **extra,
        }
    )


def demo_staff() -> list[StaffIn]:
    """The demonstration staff: enough for 100 customers, and one guard who does not count."""
    staff = [
        _qualified(
            i,
            name,
            Category.PATROL_RESPONSE,
            beat=beat,
            shift_start=shift[0],
            shift_end=shift[1],
            latitude=position[0],
            longitude=position[1],
        )
        for i, (name, beat, shift, position) in enumerate(_PATROL, start=1)
    ]
    staff += [
        _qualified(100 + i, name, Category.DUTY_OPERATORS)
        for i, name in enumerate(_OPERATORS, start=1)
    ]
    staff += [
        _qualified(200 + i, name, Category.DESIGN_INSTALLATION)
        for i, name in enumerate(_INSTALLERS, start=1)
    ]
    expired = _qualified(
        99,
        "钱进",
        Category.PATROL_RESPONSE,
        beat="朝阳-国贸",
        shift_start=time(8),
        shift_end=time(20),
    )
    staff.append(expired.model_copy(update={"certificate_expires": date(2024, 6, 30)}))
    return staff


async def _seed_staff(conn: Connection) -> str:
    present = {s.certificate_no for s in await staff_service.list_staff(conn=conn)}
    for member in demo_staff():
        if member.certificate_no not in present:
            await staff_service.add_staff(conn=conn, staff=member, actor="arc up --demo")
    listed = await staff_service.list_staff(conn=conn)
    return f"demo: staff {len(listed)} ({sum(s.eligible for s in listed)} eligible)"


async def seed(admin_dsn: SecretStr, settings: Settings) -> list[str]:
    """Add the demo staff and accounts that are missing; return lines to print."""
    box = key_box(settings.master_key)
    conn = await db.connect(admin_dsn)
    try:
        staff_line = await _seed_staff(conn)
        existing = {a.account for a in await list_accounts(conn=conn)}
        for account in DEMO_ACCOUNTS:
            if account.account not in existing:
                await add_account(
                    conn=conn,
                    box=box,
                    account=account,
                    actor="arc up --demo",
                    # The demo staff cover these four; this is used (and audited)
                    # only when the data directory serves many more customers
                    # already, which must not stop the demonstration from starting.
                    staffing_override="arc up --demo on a centre short of staff already",
                )
        await _seed_sites(conn)
    finally:
        await conn.close()
    return [staff_line, "demo: accounts " + ", ".join(a.account for a in DEMO_ACCOUNTS)]


async def _seed_sites(conn: Connection) -> None:
    """Fill in each demo account's site parts that are missing (an edit by hand stays)."""
    actor = "arc up --demo"
    for account, (site, zones, keyholders, schedule) in DEMO_SITES.items():
        shown = await sites.show_site(conn=conn, account=account)
        if shown.site_updated_at is None:
            await sites.set_site(conn=conn, account=account, site=site, actor=actor)
        recorded = {zone_key(z.zone) for z in shown.zones}
        for zone in zones:
            if zone_key(zone.zone) not in recorded:
                await sites.set_zone(conn=conn, account=account, zone=zone, actor=actor)
        if not shown.keyholders:
            await sites.set_keyholders(
                conn=conn, account=account, keyholders=keyholders, actor=actor
            )
        if not shown.schedule:
            await sites.set_schedule(
                conn=conn, account=account, schedule=parse_schedule(schedule), actor=actor
            )
