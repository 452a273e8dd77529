"""The receive path end to end: DC-09 over TCP/UDP → ACK → broker → signal_log.

The real receiver and log writer run in this process against the embedded
PostgreSQL and broker; frames are sent over real sockets on loopback.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest
import pytest_asyncio
from pydantic import SecretStr

from arc import db
from arc.accounts.models import AccountIn
from arc.accounts.service import add_account, key_box
from arc.config import AckPolicy, Settings
from arc.ingest.service import run_receiver
from arc.logwriter.service import run_logwriter
from arc.process import HOLD_SENDS, RELEASE_SENDS
from arc.runtime import with_credentials
from protocols.dc09 import parse_frame
from protocols.dc09_crypto import Dc09Key, decrypt
from tests.integration.staff_helpers import staff_fully
from tests.integration.up_helpers import plain_frame, sealed_frame
from tests.integration.up_helpers import tcp_exchange as exchange_tcp
from tests.integration.up_helpers import udp_exchange as exchange_udp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ASCII_KEY = "3BD7E66AA9E2F190"
MASTER = SecretStr("m" * 40)
APP_PASSWORD = "app-test-password"  # noqa: S105 - a test database's role


@dataclass
class Centre:
    admin_dsn: str
    host: str
    port: int
    admin: asyncpg.Connection[asyncpg.Record]

    async def rows(self, sql: str, *args: object) -> list[asyncpg.Record]:
        return await self.admin.fetch(sql, *args)

    async def wait_rows(self, sql: str, *args: object, count: int, within: float = 15) -> list:
        async with asyncio.timeout(within):
            while True:
                rows = await self.rows(sql, *args)
                if len(rows) >= count:
                    return rows
                await asyncio.sleep(0.1)


async def _start(
    database_url: str, kafka_bootstrap: str, policy: AckPolicy, *, ack_timeout: float = 10.0
) -> AsyncIterator[Centre]:
    admin = await db.connect(database_url)
    await db.migrate(conn=admin)
    await staff_fully(admin)
    await admin.execute(f"ALTER ROLE arc_app LOGIN PASSWORD '{APP_PASSWORD}'")
    box = key_box(MASTER)
    for account in (
        AccountIn(account="1234", name="plain"),
        AccountIn(account="A1B2", name="aes", key=SecretStr("ascii:" + ASCII_KEY)),
    ):
        await add_account(conn=admin, box=box, account=account, actor="test")
    app_dsn = with_credentials(SecretStr(database_url), "arc_app", APP_PASSWORD)
    settings = Settings(
        database_url=app_dsn,
        kafka_bootstrap=kafka_bootstrap,
        ack_policy=policy,
        dc09_port=0,
        master_key=MASTER,
        ack_timeout=ack_timeout,
    )
    prefix = f"test.{uuid.uuid4().hex[:10]}."
    lines: list[str] = []
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def serving(word: str) -> None:
        async with asyncio.timeout(30):
            while not any(x.startswith(word) for x in lines):
                for task in tasks:
                    if task.done():
                        task.result()  # raises what stopped it
                await asyncio.sleep(0.05)

    # The log writer first: both set a handler for this process's SIGUSR2 (its
    # LOG_STARTS_OVER, the receiver's RELEASE_SENDS), the last one set is the
    # one called, and the held-send test needs the receiver's.
    writer = asyncio.create_task(
        run_logwriter(settings, stop, announce=lines.append, topic_prefix=prefix)
    )
    tasks.append(writer)
    await serving("logwriter:")
    receiver = asyncio.create_task(
        run_receiver(settings, stop, announce=lines.append, topic_prefix=prefix)
    )
    tasks.append(receiver)
    await serving("dc09:")
    match = re.search(r"tcp://([\d.]+):(\d+)", next(x for x in lines if x.startswith("dc09:")))
    assert match is not None
    try:
        yield Centre(database_url, match[1], int(match[2]), admin)
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await asyncio.gather(writer, receiver)
        await admin.close()


@pytest_asyncio.fixture
async def centre(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Centre]:
    async for running in _start(database_url, kafka_bootstrap, AckPolicy.DATABASE):
        yield running


def plain(seq: int, account: str, data: str) -> bytes:
    return plain_frame(seq, account, data, datetime.now(UTC))


def sealed(seq: int, account: str, data: str, key: Dc09Key) -> bytes:
    return sealed_frame(seq, account, data, key, datetime.now(UTC))


async def tcp_exchange(centre: Centre, payload: bytes) -> bytes:
    return await exchange_tcp(centre.port, payload)


async def udp_exchange(centre: Centre, payload: bytes) -> bytes:
    return await exchange_udp(centre.port, payload)


SIGNALS_OF = "SELECT * FROM signal_log WHERE account = $1 ORDER BY received_at, chain_seq"


@pytest.mark.asyncio
async def test_plain_tcp_frame_is_acked_after_it_is_in_the_log(centre: Centre) -> None:
    reply = await tcp_exchange(centre, plain(7, "1234", "Nri1/BA012"))
    answer = parse_frame(reply)
    assert answer.header.token == "ACK"
    assert (answer.header.sequence, answer.header.account) == ("0007", "1234")
    # Ack policy "database": the row is committed before the ACK left.
    rows = await centre.rows(SIGNALS_OF, "1234")
    assert len(rows) == 1
    row = rows[0]
    assert (row["code"], row["zone"], row["partition_no"], row["event_class"]) == (
        "BA",
        "012",
        "1",
        "burglary",
    )
    assert (row["transport"], row["message_id"], row["sequence"]) == ("tcp", "SIA-DCS", "0007")
    assert row["raw"].startswith(b"\n") and b"Nri1/BA012" in row["raw"]
    assert row["peer"].startswith("127.0.0.1:")
    assert row["dedup_key"] is not None and len(row["hash"]) == 32


@pytest.mark.asyncio
async def test_encrypted_udp_frame_gets_an_encrypted_ack(centre: Centre) -> None:
    key = Dc09Key.parse("ascii:" + ASCII_KEY)
    reply = await udp_exchange(centre, sealed(42, "A1B2", "Nri2/FA003", key))
    answer = parse_frame(reply)
    assert answer.header.token == "*ACK" and answer.header.sequence == "0042"
    assert b"]_" in decrypt(answer.content, key)  # the pad, "]" and our timestamp
    rows = await centre.rows(SIGNALS_OF, "A1B2")
    assert [(r["code"], r["zone"], r["encrypted"], r["transport"]) for r in rows] == [
        ("FA", "003", True, "udp")
    ]


@pytest.mark.asyncio
async def test_a_retransmission_is_acked_again_and_stored_once(centre: Centre) -> None:
    message = plain(8, "1234", "Nri1/BA013")
    for _ in range(3):
        assert parse_frame(await tcp_exchange(centre, message)).header.token == "ACK"
    rows = await centre.rows(SIGNALS_OF, "1234")
    assert len(rows) == 1


@pytest.mark.asyncio
async def test_every_report_of_a_block_is_one_signal(centre: Centre) -> None:
    reply = await tcp_exchange(centre, plain(9, "1234", "Nri1/BA001/BA002/TA003"))
    assert parse_frame(reply).header.token == "ACK"
    rows = await centre.rows(SIGNALS_OF, "1234")
    assert [(r["code"], r["zone"]) for r in rows] == [("BA", "001"), ("BA", "002"), ("TA", "003")]
    assert len({r["signal_id"] for r in rows}) == 3


@pytest.mark.asyncio
async def test_bad_input_is_answered_and_quarantined_with_its_bytes(centre: Centre) -> None:
    good = plain(10, "1234", "Nri1/BA001")
    broken = good[:1] + b"0000" + good[5:]  # CRC replaced
    nak = parse_frame(await tcp_exchange(centre, broken))
    assert nak.header.token == "NAK"
    unknown = plain(11, "9999", "Nri1/BA001")
    duh = parse_frame(await tcp_exchange(centre, unknown))
    assert duh.header.token == "DUH"
    rows = await centre.wait_rows("SELECT * FROM quarantine ORDER BY received_at", count=2)
    assert [(r["response"], r["raw"]) for r in rows] == [("NAK", broken), ("DUH", unknown)]
    assert "CRC" in rows[0]["reason"] and "9999" in rows[1]["reason"]
    assert await centre.rows("SELECT 1 FROM signal_log") == []


@pytest.mark.asyncio
async def test_frames_on_one_connection_are_answered_in_order(centre: Centre) -> None:
    reader, writer = await asyncio.open_connection(centre.host, centre.port)
    try:
        writer.write(b"".join(plain(n, "1234", f"Nri1/BA{n:03d}") for n in range(1, 21)))
        await writer.drain()
        sequences = []
        async with asyncio.timeout(30):
            for _ in range(20):
                sequences.append(parse_frame(await reader.readuntil(b"\r")).header.sequence)
    finally:
        writer.close()
        await writer.wait_closed()
    assert sequences == [f"{n:04d}" for n in range(1, 21)]
    assert len(await centre.rows(SIGNALS_OF, "1234")) == 20


@pytest.mark.asyncio
async def test_broker_ack_policy(database_url: str, kafka_bootstrap: str) -> None:
    async for running in _start(database_url, kafka_bootstrap, AckPolicy.BROKER):
        reply = await tcp_exchange(running, plain(3, "1234", "Nri1/BA001"))
        assert parse_frame(reply).header.token == "ACK"
        # Acknowledged once the broker had it; the log writer stores it soon after.
        rows = await running.wait_rows(SIGNALS_OF, "1234", count=1)
        assert rows[0]["code"] == "BA"


@pytest.mark.asyncio
async def test_held_sends_wait_for_release_and_fail_past_the_ack_timeout(
    database_url: str, kafka_bootstrap: str
) -> None:
    """What ``arc up`` relies on while it replaces the embedded broker (arc.embedded.rotation).

    The signals reach the receiver's handlers, not the log writer's (see _start).
    """
    async for running in _start(database_url, kafka_bootstrap, AckPolicy.DATABASE, ack_timeout=2):
        os.kill(os.getpid(), HOLD_SENDS)  # the receiver runs in this process
        await asyncio.sleep(0.1)
        held = asyncio.create_task(tcp_exchange(running, plain(11, "1234", "Nri1/BA021")))
        await asyncio.sleep(1.0)
        assert not held.done()
        assert await running.rows(SIGNALS_OF, "1234") == []  # not even produced yet
        os.kill(os.getpid(), RELEASE_SENDS)
        assert parse_frame(await held).header.token == "ACK"
        assert len(await running.rows(SIGNALS_OF, "1234")) == 1
        # Held past the ACK timeout: no answer and nothing stored; the panel's retry is.
        os.kill(os.getpid(), HOLD_SENDS)
        message = plain(12, "1234", "Nri1/BA022")
        with pytest.raises(TimeoutError):
            await exchange_tcp(running.port, message, within=3.0)
        assert len(await running.rows(SIGNALS_OF, "1234")) == 1
        os.kill(os.getpid(), RELEASE_SENDS)
        assert parse_frame(await tcp_exchange(running, message)).header.token == "ACK"
        assert [r["zone"] for r in await running.rows(SIGNALS_OF, "1234")] == ["021", "022"]
