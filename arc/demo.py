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
Demo staff are recognised by their certificate numbers.
"""

from __future__ import annotations

from datetime import date, time

from pydantic import SecretStr

from arc import db
from arc.accounts.models import AccountIn
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
    finally:
        await conn.close()
    return [staff_line, "demo: accounts " + ", ".join(a.account for a in DEMO_ACCOUNTS)]
