"""``arc up --demo``: a small demonstration centre, seeded idempotently.

Four panels, as a centre would have them: two plain, one with an AES-128 key
typed as ASCII text (Ajax style), one with a hex key (DSC style); link tests
every 60 to 3,600 s. The keys are public demonstration keys, written in the
README: never use them for a real panel. Running it again changes nothing.
"""

from __future__ import annotations

from pydantic import SecretStr

from arc import db
from arc.accounts.models import AccountIn
from arc.accounts.service import add_account, key_box, list_accounts
from arc.config import Settings

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


async def seed(admin_dsn: SecretStr, settings: Settings) -> list[str]:
    """Add the demo accounts that are missing; return lines to print."""
    box = key_box(settings.master_key)
    conn = await db.connect(admin_dsn)
    try:
        existing = {a.account for a in await list_accounts(conn=conn)}
        for account in DEMO_ACCOUNTS:
            if account.account not in existing:
                await add_account(conn=conn, box=box, account=account, actor="arc up --demo")
    finally:
        await conn.close()
    return ["demo: accounts " + ", ".join(a.account for a in DEMO_ACCOUNTS)]
