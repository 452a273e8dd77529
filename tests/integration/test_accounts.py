"""Accounts against a real PostgreSQL: stored sealed, imported all-or-nothing, cached live."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
from pydantic import SecretStr

from arc import db
from arc.accounts import service
from arc.accounts.cache import AccountCache
from arc.accounts.models import AccountIn
from arc.secrets import MasterKeyMismatch
from protocols.dc09 import build_frame, format_timestamp
from protocols.dc09_crypto import Dc09Key, encrypt
from protocols.dc09_receiver import AccountSettings, DriftAction, TimestampPolicy, receive
from protocols.errors import Response
from tests.integration.staff_helpers import staff_fully

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MASTER = "master key of the test centre, 32 characters at least"
BOX = service.key_box(MASTER)
HEX_KEY = "00112233445566778899AABBCCDDEEFF"
ASCII_KEY = "3BD7E66AA9E2F190"
NOW = datetime(2024, 1, 25, 11, 2, 40, tzinfo=UTC)
DEFAULT = TimestampPolicy()
ACTOR = "test:admin"


@pytest_asyncio.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    connection = await db.connect(database_url)
    try:
        await db.migrate(conn=connection)
        await staff_fully(connection)  # these tests are not about staffing (test_guards.py is)
        yield connection
    finally:
        await connection.close()


def sealed_frame(account: str, data: str, key: Dc09Key, when: datetime = NOW) -> bytes:
    text = data.encode() + b"]" + format_timestamp(when)
    sealed = encrypt(text, key, random.Random(1).randbytes)
    return build_frame(b'"*SIA-DCS"0373L0#%s[%s' % (account.encode(), sealed))


async def audit_actions(conn: asyncpg.Connection[asyncpg.Record]) -> list[str]:
    rows = await conn.fetch("SELECT action FROM audit_log ORDER BY chain_seq")
    return [r["action"] for r in rows]


# --- add, list, replace ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_add_list_and_replace(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    out = await service.add_account(
        conn=conn,
        box=BOX,
        account=AccountIn(account="1234", name="北京 银行", key=SecretStr(f"hex:{HEX_KEY}")),
        actor=ACTOR,
    )
    assert (out.account, out.name, out.has_key, out.key_format) == (
        "1234",
        "北京 银行",
        True,
        "hex",
    )
    assert "key" not in out.model_dump()  # no key material in what is shown
    await service.add_account(
        conn=conn, box=BOX, account=AccountIn(account="00ab", link_test_seconds=90), actor=ACTOR
    )

    with pytest.raises(service.AccountExists, match="account 1234 already exists"):
        await service.add_account(
            conn=conn, box=BOX, account=AccountIn(account="1234"), actor=ACTOR
        )
    # Differing in case only is the same account number: refused even with replace.
    with pytest.raises(service.AccountExists, match="00AB differs only in letter case.*00ab"):
        await service.add_account(
            conn=conn, box=BOX, account=AccountIn(account="00AB"), actor=ACTOR, replace=True
        )

    replaced = await service.add_account(
        conn=conn,
        box=BOX,
        account=AccountIn(account="1234", name="new name", link_test_seconds=300),
        actor=ACTOR,
        replace=True,
    )
    assert (replaced.name, replaced.has_key, replaced.link_test_seconds) == ("new name", False, 300)
    assert replaced.created_at == out.created_at and replaced.updated_at > out.updated_at

    listed = await service.list_accounts(conn=conn)
    assert [(a.account, a.has_key, a.link_test_seconds) for a in listed] == [
        ("00ab", False, 90),
        ("1234", False, 300),
    ]
    assert await audit_actions(conn) == ["account.add", "account.add", "account.replace"]
    details = await conn.fetchval("SELECT details FROM audit_log WHERE chain_seq = 1")
    assert HEX_KEY.lower() not in details.lower() and '"has_key": true' in details


@pytest.mark.asyncio
async def test_the_key_is_stored_sealed(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    for account, spec in (("1234", f"hex:{HEX_KEY}"), ("AAAA", f"ascii:{ASCII_KEY}")):
        await service.add_account(
            conn=conn, box=BOX, account=AccountIn(account=account, key=SecretStr(spec)), actor=ACTOR
        )
    rows = await conn.fetch("SELECT account, key_ciphertext, key_format FROM accounts")
    stored = {r["account"]: (bytes(r["key_ciphertext"]), r["key_format"]) for r in rows}
    for account, key_bytes in (("1234", bytes.fromhex(HEX_KEY)), ("AAAA", ASCII_KEY.encode())):
        ciphertext, _ = stored[account]
        assert key_bytes not in ciphertext
        assert key_bytes.hex().encode() not in ciphertext.hex().encode()
        assert BOX.open(ciphertext, context=account.encode()) == key_bytes
    assert stored["1234"][1] == "hex" and stored["AAAA"][1] == "ascii"
    # Copied to another account's row, a sealed key does not open there.
    await conn.execute(
        "UPDATE accounts SET key_ciphertext = $1 WHERE account = 'AAAA'", stored["1234"][0]
    )
    loader = service.SettingsLoader(BOX, DEFAULT)
    loaded = await loader.load(conn)
    assert "AAAA" not in loaded and "another account" in loader.skipped["AAAA"]
    assert loaded["1234"].key == Dc09Key.parse(f"hex:{HEX_KEY}")


@pytest.mark.asyncio
async def test_the_table_refuses_what_the_models_refuse(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    for statement in (
        "INSERT INTO accounts (account) VALUES ('12')",
        "INSERT INTO accounts (account) VALUES ('12G4')",
        "INSERT INTO accounts (account, key_ciphertext) VALUES ('1234', '\\x00')",
        "INSERT INTO accounts (account, link_test_seconds) VALUES ('1234', 0)",
        "INSERT INTO accounts (account, drift_action) VALUES ('1234', 'ignore')",
        "INSERT INTO accounts (account, timestamp_ahead) VALUES ('1234', 'NaN')",
    ):
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(statement)


# --- import ------------------------------------------------------------------------------------

GOOD_CSV = f"""\ufeffaccount,name,key,link_test_seconds,utc_offset_minutes,drift_action
1234,北京分行,hex:{HEX_KEY},90,,
AAAA,"Shop, ground floor",ascii:{ASCII_KEY},,480,flag
00BEEF,,,3600,,
"""


@pytest.mark.asyncio
async def test_import_a_good_file(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    # An existing account is updated in the file's columns; others keep their values.
    await service.add_account(
        conn=conn,
        box=BOX,
        account=AccountIn(account="00BEEF", name="kept", timestamp_ahead=5.0, enabled=False),
        actor=ACTOR,
    )
    result = await service.import_csv(conn=conn, box=BOX, text=GOOD_CSV, actor=ACTOR)
    assert (result.added, result.updated, result.total) == (2, 1, 3)
    accounts = {a.account: a for a in await service.list_accounts(conn=conn)}
    assert accounts["1234"].name == "北京分行" and accounts["1234"].key_format == "hex"
    assert accounts["AAAA"].name == "Shop, ground floor"
    assert (accounts["AAAA"].utc_offset_minutes, accounts["AAAA"].drift_action) == (
        480,
        DriftAction.FLAG,
    )
    beef = accounts["00BEEF"]
    assert (beef.name, beef.link_test_seconds, beef.has_key) == ("", 3600, False)
    assert (beef.timestamp_ahead, beef.enabled) == (5.0, False)  # not in the file: kept

    # One audit row for the whole import, with the file's digest.
    assert await audit_actions(conn) == ["account.add", "account.import"]
    details = json.loads(await conn.fetchval("SELECT details FROM audit_log WHERE chain_seq = 2"))
    assert details["sha256"] == result.sha256 and (details["added"], details["updated"]) == (2, 1)

    # Imported again (the old system's export, once more): all updated, nothing added.
    again = await service.import_csv(conn=conn, box=BOX, text=GOOD_CSV, actor=ACTOR)
    assert (again.added, again.updated) == (0, 3)


BAD_CSV = f"""account,name,key,link_test_seconds
1234,ok,hex:{HEX_KEY},60
12,too short,,
AAAA,ok,,

AAAB,bad key,hex:{HEX_KEY[:30]},
AAAC,ok,ascii:{ASCII_KEY},
aaaa,duplicate of line 4,,-5
"""


@pytest.mark.asyncio
async def test_import_with_bad_rows_imports_nothing_and_names_every_line(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    with pytest.raises(service.ImportRejected) as caught:
        await service.import_csv(conn=conn, box=BOX, text=BAD_CSV, actor=ACTOR)
    problems = caught.value.problems
    assert [p.line for p in problems] == [3, 6, 8]
    assert "account must be 3 to 16 hex digits" in problems[0].reason
    assert "32, 48 or 64 hex digits (AES-128/192/256), got 30" in problems[1].reason
    assert "link_test_seconds" in problems[2].reason and "'-5'" in problems[2].reason
    message = str(caught.value)
    assert message.startswith("3 bad rows, nothing imported")
    assert HEX_KEY[:30] not in message and ASCII_KEY not in message
    assert await conn.fetchval("SELECT count(*) FROM accounts") == 0
    assert await audit_actions(conn) == []


@pytest.mark.asyncio
async def test_import_refuses_case_variants_and_duplicates(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    await service.add_account(conn=conn, box=BOX, account=AccountIn(account="ABCD"), actor=ACTOR)
    text = "account\nabcd\n1234\n1234\n"
    with pytest.raises(service.ImportRejected) as caught:
        await service.import_csv(conn=conn, box=BOX, text=text, actor=ACTOR)
    assert [str(p) for p in caught.value.problems] == [
        "line 2: account abcd differs only in letter case from existing ABCD",
        "line 4: account 1234 is also on line 3",
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "line 1: the file is empty"),
        ("account,name\n", "line 1: the file has a header but no accounts"),
        ("acount,name\n1234,x\n", "line 1: the header has no 'account' column"),
        ("account,colour\n1234,red\n", "line 1: unknown column 'colour'"),
        ("account,name\n1234,x,extra\n", "line 2: 3 values, but the header has 2 columns"),
        ('account,name\n1234,"open\n', "line 2: not valid CSV"),
    ],
)
def test_import_file_problems(text: str, reason: str) -> None:
    parsed = service.parse_csv(text)
    assert str(parsed.problems[0]).startswith(reason)


# --- what the receiver gets --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_loaded_settings_decrypt_frames(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    await service.import_csv(conn=conn, box=BOX, text=GOOD_CSV, actor=ACTOR)
    await service.add_account(
        conn=conn,
        box=BOX,
        account=AccountIn(account="0FF", key=SecretStr(f"hex:{HEX_KEY}"), enabled=False),
        actor=ACTOR,
    )
    settings = await service.load_settings(conn=conn, box=BOX, default_policy=DEFAULT)
    assert set(settings) == {"1234", "AAAA", "00BEEF"}  # the disabled one is not served
    assert settings["00BEEF"] == AccountSettings()
    aaaa = settings["AAAA"]
    assert aaaa.utc_offset == timedelta(hours=8)
    assert aaaa.timestamps == TimestampPolicy(plain=DriftAction.FLAG, encrypted=DriftAction.FLAG)

    for account, key in (("1234", f"hex:{HEX_KEY}"), ("AAAA", f"ascii:{ASCII_KEY}")):
        assert settings[account].key == Dc09Key.parse(key)
        offset = settings[account].utc_offset
        raw = sealed_frame(account, f"#{account}|Nri1/BA012", Dc09Key.parse(key), NOW + offset)
        reception = receive(raw, now=NOW, accounts=settings.get)
        assert reception.response is Response.ACK, reception.error
        assert reception.message is not None and reception.message.events[0].code == "BA"

    single = await service.load_account(conn=conn, box=BOX, account="1234", default_policy=DEFAULT)
    assert single == settings["1234"]
    for absent in ("0FF", "9999"):
        assert (
            await service.load_account(conn=conn, box=BOX, account=absent, default_policy=DEFAULT)
            is None
        )


@pytest.mark.asyncio
async def test_a_wrong_master_key_refuses_the_whole_load(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    await service.import_csv(conn=conn, box=BOX, text=GOOD_CSV, actor=ACTOR)
    with pytest.raises(MasterKeyMismatch, match="none of the 2 account keys"):
        await service.load_settings(
            conn=conn, box=service.key_box("some other master key"), default_policy=DEFAULT
        )


# --- the cache ---------------------------------------------------------------------------------


async def eventually(predicate: Callable[[], bool], within: float = 2.0) -> float:
    """Wait until ``predicate()`` is true; return how long it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > within:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.01)
    return loop.time() - start


@pytest.mark.asyncio
async def test_cache_follows_changes_and_survives_a_lost_connection(
    conn: asyncpg.Connection[asyncpg.Record], database_url: str
) -> None:
    await service.add_account(conn=conn, box=BOX, account=AccountIn(account="1111"), actor=ACTOR)
    cache = AccountCache(box=BOX, refresh_seconds=30, debounce_seconds=0.05)
    await cache.start(database_url)
    try:
        assert cache.get("1111") == AccountSettings() and cache.get("2222") is None

        # Added on another connection: announced by NOTIFY, well before the refresh.
        await service.add_account(
            conn=conn,
            box=BOX,
            account=AccountIn(account="2222", key=SecretStr(f"hex:{HEX_KEY}")),
            actor=ACTOR,
        )
        await eventually(lambda: cache.get("2222") is not None)
        assert cache.get("2222") == AccountSettings(key=Dc09Key.parse(f"hex:{HEX_KEY}"))

        # A burst of changes is one reload.
        before = cache.reloads
        for _ in range(20):
            await conn.execute("SELECT pg_notify('arc_accounts', '')")
        await eventually(lambda: cache.reloads > before)
        await asyncio.sleep(0.3)
        assert cache.reloads == before + 1

        # Its connection killed: the accounts stay served, and it comes back.
        terminated = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'arc-account-cache' AND datname = current_database()"
        )
        assert terminated == 1
        await eventually(lambda: cache.reconnects == 1, within=5)
        assert cache.get("1111") is not None and cache.get("2222") is not None
        await service.add_account(
            conn=conn, box=BOX, account=AccountIn(account="3333"), actor=ACTOR
        )
        await eventually(lambda: cache.get("3333") is not None)

        # Disabled: no longer served.
        await conn.execute("UPDATE accounts SET enabled = false WHERE account = '1111'")
        await eventually(lambda: cache.get("1111") is None)
    finally:
        await cache.stop()
    assert not cache.connected and cache.get("2222") is not None


class Proxy:
    """A TCP relay to PostgreSQL that can be cut (connections dropped, new ones refused)."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._url = parts
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    @property
    def url(self) -> str:
        netloc = f"{self._url.username}:{self._url.password}@127.0.0.1:{self.port}"
        return urlunsplit(self._url._replace(netloc=netloc))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.transport.abort()

        await asyncio.gather(
            pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True
        )


@pytest.mark.asyncio
async def test_cache_keeps_its_accounts_while_the_database_is_away(
    conn: asyncpg.Connection[asyncpg.Record], database_url: str
) -> None:
    await service.add_account(conn=conn, box=BOX, account=AccountIn(account="1111"), actor=ACTOR)
    proxy = Proxy(database_url)
    await proxy.start()
    cache = AccountCache(box=BOX, debounce_seconds=0.01, reconnect_min=0.05, reconnect_max=0.2)
    await cache.start(proxy.url)
    try:
        await proxy.cut()  # the connection drops and reconnecting fails, again and again
        await eventually(lambda: not cache.connected)
        await asyncio.sleep(1.0)
        assert cache.get("1111") is not None and cache.reconnects == 0
        await service.add_account(
            conn=conn, box=BOX, account=AccountIn(account="2222"), actor=ACTOR
        )  # announced while the cache is away: the reload after reconnecting has it
        await proxy.start()
        await eventually(lambda: cache.reconnects == 1, within=5)
        assert cache.get("2222") is not None
    finally:
        await cache.stop()
        await proxy.cut()


@pytest.mark.asyncio
async def test_cache_start_fails_without_a_database() -> None:
    cache = AccountCache(box=BOX)
    with pytest.raises(OSError):
        await cache.start("postgresql://nobody:x@127.0.0.1:1/nothing")


# --- the command line --------------------------------------------------------------------------


async def arc(database_url: str, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARC_")}
    env |= {"ARC_DATABASE_URL": database_url, "ARC_MASTER_KEY": MASTER}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arc.cli",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def no_key_in(*texts: str) -> None:
    for text in texts:
        for secret in (HEX_KEY, HEX_KEY.lower(), ASCII_KEY, HEX_KEY[:30]):
            assert secret not in text


@pytest.mark.asyncio
async def test_the_account_commands(
    conn: asyncpg.Connection[asyncpg.Record], database_url: str, tmp_path: Path
) -> None:
    code, out, err = await arc(database_url, "account", "add", "1234", "--key", f"hex:{HEX_KEY}")
    assert (code, err) == (0, "")
    assert out == "account 1234 added: key hex, no link test\n"
    code, out2, err2 = await arc(database_url, "account", "add", "1234", "--name", "x")
    assert code == 1 and "account 1234 already exists; add --replace" in err2
    code, out3, err3 = await arc(
        database_url,
        "account",
        "add",
        "AAAA",
        "--key",
        "-",
        "--name",
        "北京分行",
        "--link-test",
        "90",
        stdin=f"ascii:{ASCII_KEY}\n".encode(),
    )
    assert code == 0 and out3 == "account AAAA added: key ascii, link test every 90 s\n"
    code, out4, err4 = await arc(
        database_url, "account", "add", "1234", "--replace", "--link-test", "60"
    )
    assert code == 0 and out4 == "account 1234 replaced: no key, link test every 60 s\n"
    code, out5, err5 = await arc(database_url, "account", "add", "BBBB", "--key", "hex:0011")
    assert code == 1 and "--key: hex key must be 32, 48 or 64 hex digits" in err5
    code, out6, err6 = await arc(database_url, "account", "add", "XYZ")
    assert code == 1 and "ACCOUNT: account must be 3 to 16 hex digits" in err6

    code, table, err7 = await arc(database_url, "account", "list")
    assert code == 0
    lines = table.splitlines()
    assert lines[0].split() == ["ACCOUNT", "NAME", "KEY", "LINK", "TEST", "ENABLED"]
    assert lines[1].split() == ["1234", "no", "60", "s", "yes"]
    assert lines[2].split() == ["AAAA", "北京分行", "yes", "(ascii)", "90", "s", "yes"]
    assert lines[-1] == "2 accounts"
    code, listed, err8 = await arc(database_url, "account", "list", "--json")
    assert code == 0
    data = json.loads(listed)
    assert [(a["account"], a["has_key"], a["key_format"]) for a in data] == [
        ("1234", False, None),
        ("AAAA", True, "ascii"),
    ]

    good = tmp_path / "good.csv"
    good.write_text(GOOD_CSV, encoding="utf-8")
    code, out9, err9 = await arc(database_url, "account", "import", str(good))
    assert (code, err9) == (0, "")
    assert out9 == f"imported 3 accounts from {good}: 1 added, 2 updated\n"
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_CSV, encoding="utf-8")
    code, out10, err10 = await arc(database_url, "account", "import", str(bad))
    assert code == 1 and out10 == ""
    err_lines = err10.splitlines()
    assert err_lines[0] == f"arc account import: {bad}: 3 bad rows, nothing imported"
    assert [line.split(":")[0].strip() for line in err_lines[1:]] == [
        "line 3",
        "line 6",
        "line 8",
    ]
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("account,name\n5678,北京分行\n".encode("gb18030"))
    code, out11, err11 = await arc(database_url, "account", "import", str(gbk))
    assert code == 1 and "--encoding gb18030" in err11
    code, out12, err12 = await arc(
        database_url, "account", "import", "--encoding", "gb18030", str(gbk)
    )
    assert code == 0, err12

    no_key_in(
        out, err, out2, err2, out3, err3, out4, err4, out5, err5, out6, err6, table, err7,
        listed, err8, out9, err9, out10, err10, out11, err11, out12, err12,
    )  # fmt: skip
    check = await db.connect(database_url)
    try:
        count = await check.fetchval("SELECT count(*) FROM accounts")
        actors = await check.fetch("SELECT DISTINCT actor FROM audit_log")
    finally:
        await check.close()
    assert count == 4
    assert all(r["actor"].startswith("cli") for r in actors)


@pytest.mark.asyncio
async def test_the_application_role_reads_but_does_not_change(
    conn: asyncpg.Connection[asyncpg.Record],
) -> None:
    await service.import_csv(conn=conn, box=BOX, text=GOOD_CSV, actor=ACTOR)
    await conn.execute("SET ROLE arc_app")  # what the receiver connects as
    settings = await service.load_settings(conn=conn, box=BOX, default_policy=DEFAULT)
    assert set(settings) == {"1234", "AAAA", "00BEEF"}
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("UPDATE accounts SET enabled = false")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await service.add_account(
            conn=conn, box=BOX, account=AccountIn(account="9999"), actor=ACTOR
        )
