"""The DC-09 panel simulator against a small receiver built on ARC's real codec.

The receiver here is ``protocols.dc09_receiver.receive`` behind asyncio TCP
and UDP servers on 127.0.0.1, with modes that misbehave the ways a receiver
can: dropping answers, hanging up, NAKing, answering the wrong message.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import socket
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from loadtest import receive_bench
from loadtest.simulator import (
    DEFAULT_KEY,
    LedgerEntry,
    SimulatorConfig,
    check_loopback,
    main,
    percentile,
    run,
    write_ledger,
)
from protocols.dc09 import FrameSplitter, build_ack, build_duh, build_nak
from protocols.dc09_crypto import Dc09Key
from protocols.dc09_receiver import AccountSettings, Reception, receive
from protocols.errors import Response

pytestmark = [pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[1]
KEY = Dc09Key.parse(DEFAULT_KEY)
OTHER_KEY = Dc09Key.parse("ascii:0123456789ABCDEF")
_rnd = random.Random(5)


class Receiver:
    """Answers chunks with the real codec, then bends the answer by ``mode``.

    Modes: ack, drop_first (no answer to a message's first transmission),
    hangup_first (TCP: close the connection instead), nak, duh, silent,
    double (every ACK sent twice), wrong_seq, wrong_account, wrong_key
    (*ACK sealed with another key), plain_ack (plain ACK to an encrypted message).
    """

    def __init__(self, mode: str, accounts: list[str], aes: bool) -> None:
        self.mode = mode
        settings = AccountSettings(key=KEY if aes else None)
        self.table = dict.fromkeys(accounts, settings)
        # (account, sequence) -> every transmission of that message, as received
        self.received: defaultdict[tuple[str, str], list[bytes]] = defaultdict(list)
        # (account, sequence, device time) of every message answered with a genuine ACK
        self.acked: list[tuple[str, str, str]] = []

    def answer(self, chunk: bytes) -> tuple[bytes, bool]:
        """The bytes to send back, and whether to hang up instead."""
        now = datetime.now(UTC)
        reception = receive(chunk, now=now, accounts=self.table.get)
        frame = reception.frame
        if frame is None:
            return reception.reply, False
        header = frame.header
        account = header.account
        if account is None:
            return reception.reply, False
        transmissions = self.received[(account, header.sequence)]
        transmissions.append(chunk)
        mode = self.mode
        if mode == "silent":
            return b"", False
        if mode == "nak":
            return build_nak(now), False
        if mode == "duh":
            return build_duh(frame, account), False
        if mode in ("drop_first", "hangup_first") and len(transmissions) == 1:
            return b"", mode == "hangup_first"
        if reception.response is not Response.ACK:
            return reception.reply, False
        key = KEY if header.encrypted else None
        if mode == "wrong_seq":
            wrong = f"{int(header.sequence) % 9999 + 1:04d}"
            frame = frame._replace(header=header._replace(sequence=wrong))
        elif mode == "wrong_account":
            account = "X" + account
        elif mode == "wrong_key":
            key = OTHER_KEY
        elif mode == "plain_ack":
            key = None
        if mode in ("wrong_seq", "wrong_account", "wrong_key", "plain_ack"):
            return build_ack(frame, account, now=now, key=key, random_bytes=_rnd.randbytes), False
        self._record(reception)
        return reception.reply * (2 if mode == "double" else 1), False

    def _record(self, reception: Reception) -> None:
        message = reception.message
        assert message is not None and reception.frame is not None
        stamp = message.content.timestamp
        assert stamp is not None
        self.acked.append((message.account, reception.frame.header.sequence, stamp.isoformat()))


class _TcpServer(asyncio.Protocol):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.splitter = FrameSplitter()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        for chunk in self.splitter.feed(data):
            reply, hang_up = self.receiver.answer(chunk)
            if hang_up:
                self.transport.close()
                return
            if reply:
                self.transport.write(reply)


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        splitter = FrameSplitter()
        for chunk in splitter.feed(data) + splitter.flush():
            reply, _ = self.receiver.answer(chunk)
            if reply:
                # Two frames (mode "double") go as two datagrams, as a receiver would.
                for frame in FrameSplitter().feed(reply):
                    self.transport.sendto(frame, addr)


@asynccontextmanager
async def dc09_server(
    mode: str = "ack", *, aes: bool = False, panels: int = 5, prefix: str = "S"
) -> AsyncIterator[tuple[Receiver, int]]:
    """The receiver on 127.0.0.1, TCP and UDP on one port number; yields it and the port."""
    accounts = [f"{prefix}{n:05d}" for n in range(1, panels + 1)]
    receiver = Receiver(mode, accounts, aes)
    loop = asyncio.get_running_loop()
    for _attempt in range(10):
        server = await loop.create_server(lambda: _TcpServer(receiver), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpServer(receiver), local_addr=("127.0.0.1", port)
            )
        except OSError:
            server.close()
            await server.wait_closed()
            continue
        break
    else:
        pytest.fail("no port free for both TCP and UDP")
    try:
        yield receiver, port
    finally:
        udp.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0)  # let the transports close their sockets


def config(port: int, **changes: object) -> SimulatorConfig:
    base = SimulatorConfig(port=port, panels=5, seconds=0.5, ack_timeout=0.5, retries=2, seed=1)
    return replace(base, **changes)  # type: ignore[arg-type]


def ledger_keys(ledger: list[LedgerEntry]) -> list[tuple[str, str, str]]:
    return [(e.account, e.sequence, e.device_time) for e in ledger]


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", ["tcp", "udp", "mixed"])
@pytest.mark.parametrize("aes", [False, True], ids=["plain", "aes"])
async def test_every_message_is_acked(transport: str, aes: bool) -> None:
    async with dc09_server(aes=aes) as (receiver, port):
        result = await run(config(port, transport=transport, aes=aes))
    assert result.sent > 20
    assert result.acked == result.sent == len(result.ledger)
    assert result.failed == result.retransmissions == result.stray == result.nak == 0
    keys = ledger_keys(result.ledger)
    assert len(set(keys)) == len(keys)
    # The ledger is exactly what the receiver ACKed.
    assert sorted(keys) == sorted(receiver.acked)
    kinds = {e.message_type for e in result.ledger}
    assert kinds == {"NULL", "SIA-DCS", "ADM-CID"}
    assert {e.transport for e in result.ledger} == (
        {"tcp", "udp"} if transport == "mixed" else {transport}
    )
    assert all(e.encrypted is aes for e in result.ledger)
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms
    assert result.acked_per_second > 0
    for entry in result.ledger:
        if entry.message_type == "NULL":
            assert entry.data == ""
        else:
            assert entry.data.startswith(f"#{entry.account}|")
        assert datetime.fromisoformat(entry.device_time).tzinfo is not None


@pytest.mark.asyncio
async def test_during_a_run_the_collector_walks_neither_what_was_there_nor_the_ledger() -> None:
    # A full collection walking them was measured as ACK latency, growing with the run.
    async with dc09_server() as (_receiver, port):
        running = asyncio.create_task(run(config(port, seconds=1.0)))
        await asyncio.sleep(0.7)
        frozen_while_running = gc.get_freeze_count()
        gc.collect()
        tracked_entries = sum(isinstance(o, LedgerEntry) for o in gc.get_objects())
        result = await running
    assert frozen_while_running > 1_000 and gc.get_freeze_count() == 0
    assert len(result.ledger) > 20 and tracked_entries == 0  # plain tuples until the end
    assert gc.is_tracked(result.ledger[0])  # the result's entries are ordinary objects


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("mode", "transport"),
    [("drop_first", "tcp"), ("drop_first", "udp"), ("hangup_first", "tcp")],
)
@pytest.mark.parametrize("aes", [False, True], ids=["plain", "aes"])
async def test_lost_answer_means_same_bytes_again(mode: str, transport: str, aes: bool) -> None:
    async with dc09_server(mode, aes=aes) as (receiver, port):
        cfg = config(port, transport=transport, aes=aes, ack_timeout=0.2, reconnect_delay=0.02)
        result = await run(cfg)
    assert result.sent > 5
    assert result.failed == 0
    assert result.acked == result.sent == result.retransmissions
    if mode == "hangup_first":
        assert result.disconnects == result.sent
    for transmissions in receiver.received.values():
        assert len(transmissions) == 2
        assert transmissions[0] == transmissions[1]  # same sequence, timestamp, bytes
    keys = ledger_keys(result.ledger)
    assert len(set(keys)) == len(keys) == result.acked
    assert sorted(keys) == sorted(receiver.acked)
    assert all(e.retransmissions == 1 for e in result.ledger)
    if mode == "drop_first":
        assert all(e.latency >= 0.2 for e in result.ledger)  # includes the wait


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["nak", "duh"])
@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_refused_messages_are_retried_then_failed(mode: str, transport: str) -> None:
    async with dc09_server(mode) as (receiver, port):
        result = await run(config(port, transport=transport, count=10, retries=2))
    assert result.sent == result.failed == 10
    assert result.acked == 0 and result.ledger == []
    assert result.retransmissions == 20
    assert getattr(result, mode) == 30
    assert len(receiver.received) == 10
    for transmissions in receiver.received.values():
        assert len(transmissions) == 3 and len(set(transmissions)) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("mode", "aes"),
    [
        ("wrong_seq", False),
        ("wrong_seq", True),
        ("wrong_account", False),
        ("wrong_key", True),
        ("plain_ack", True),
    ],
)
async def test_answers_to_other_messages_are_not_acks(mode: str, aes: bool) -> None:
    async with dc09_server(mode, aes=aes) as (_receiver, port):
        result = await run(config(port, aes=aes, ack_timeout=0.2, retries=1, count=10))
    assert result.acked == 0 and result.ledger == []
    assert result.sent == result.failed == 10
    assert result.stray == 20  # every transmission's answer
    assert result.timeouts == 20


@pytest.mark.asyncio
async def test_duplicate_ack_is_stray() -> None:
    async with dc09_server("double") as (_receiver, port):
        result = await run(config(port))
    assert result.acked == result.sent > 0 and result.failed == 0
    assert result.acked - 5 <= result.stray <= result.acked
    assert len(result.ledger) == result.acked


@pytest.mark.asyncio
async def test_sequence_wraps_from_9999_to_0001() -> None:
    async with dc09_server() as (_receiver, port):
        result = await run(config(port, panels=1, count=4, first_sequence=9998))
    assert [e.sequence for e in result.ledger] == ["9998", "9999", "0001", "0002"]


@pytest.mark.asyncio
async def test_count_bounds_the_run() -> None:
    async with dc09_server() as (_receiver, port):
        result = await run(config(port, count=25, seconds=10))
    assert result.sent == result.acked == 25
    assert result.elapsed < 5


@pytest.mark.asyncio
async def test_open_loop_rate() -> None:
    async with dc09_server() as (_receiver, port):
        result = await run(config(port, panels=4, rate=40, seconds=1.0))
    # 4 panels at one message per 0.1 s each, for 1 s.
    assert 36 <= result.sent <= 41
    assert result.acked == result.sent


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_silent_receiver_run_stops_in_time(transport: str) -> None:
    async with dc09_server("silent") as (_receiver, port):
        cfg = config(port, transport=transport, ack_timeout=0.2, retries=2)
        began = time.monotonic()
        result = await run(cfg)
        wall = time.monotonic() - began
    assert wall < cfg.hard_limit
    # The last message may start just before the end and use all its retries.
    assert wall < cfg.seconds + cfg.ack_timeout * (cfg.retries + 1) + 1.0
    assert result.sent == result.failed == 5  # one message per panel, all given up
    assert result.timeouts == 15 and result.ledger == []


@pytest.mark.asyncio
async def test_nothing_listening_run_stops_in_time() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = config(port, seconds=0.5, reconnect_delay=0.05)
    began = time.monotonic()
    result = await run(cfg)
    wall = time.monotonic() - began
    assert wall < cfg.seconds + 2.0
    assert result.sent == 0 and result.connect_failures >= 5


@pytest.mark.parametrize("host", ["10.0.0.1", "192.168.1.10", "8.8.8.8", "0.0.0.0", "example.com"])  # noqa: S104
def test_non_loopback_host_refused(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimulatorConfig(port=9000, host=host)
    with pytest.raises(ValueError, match="loopback"):
        receive_bench.resolve_target(f"{host}:9000")
    with pytest.raises(SystemExit) as exit_info:
        main(["--host", host, "--port", "9000"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("host", "used"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.3.2.1", "127.3.2.1"),
        ("::1", "::1"),
        ("localhost", "127.0.0.1"),
    ],
)
def test_loopback_hosts_accepted(host: str, used: str) -> None:
    assert check_loopback(host) == used
    assert SimulatorConfig(port=9000, host=host).host == used


def test_bad_settings_refused() -> None:
    with pytest.raises(ValueError, match="key"):
        SimulatorConfig(port=9000, aes=True, key="ascii:short")
    with pytest.raises(ValueError, match="transport"):
        SimulatorConfig(port=9000, transport="sctp")
    with pytest.raises(ValueError, match="seconds"):
        SimulatorConfig(port=9000, seconds=0)
    assert SimulatorConfig(port=9000, seconds=10, ack_timeout=2, retries=3).hard_limit == 23


def test_percentile() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile(values, 100) == 100 and percentile([], 50) == 0


@pytest.mark.asyncio
async def test_cli_prints_json_and_writes_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    async with dc09_server(aes=True, panels=3) as (receiver, port):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "loadtest.simulator",
            "--port", str(port),
            "--panels", "3",
            "--seconds", "0.5",
            "--aes",
            "--json",
            "--ledger", str(ledger),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(30):
            out, _ = await proc.communicate()
    assert proc.returncode == 0
    summary = json.loads(out)
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert summary["acked"] == len(lines) == len(receiver.acked) > 0
    assert summary["failed"] == 0
    assert {(x["account"], x["sequence"], x["device_time"]) for x in lines} == set(receiver.acked)
    assert set(lines[0]) == {
        "account", "sequence", "device_time", "message_type", "data", "encrypted",
        "transport", "first_sent", "latency", "retransmissions",
    }  # fmt: skip


def test_write_ledger_empty(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    assert write_ledger(path, []) == 0 and path.read_text() == ""


@pytest.mark.asyncio
@pytest.mark.parametrize("aes", [False, True], ids=["plain", "aes"])
async def test_pysiaalarm_reference(aes: bool) -> None:
    # pysiaalarm reads hex accounts only and needs an "R" field to answer properly.
    cfg = SimulatorConfig(
        port=1, panels=5, seconds=1.5, aes=aes, account_prefix="A", receiver="0", transport="mixed"
    )
    report = await receive_bench.bench("pysiaalarm", cfg)
    result = report.result
    assert result.acked > 0 and result.failed == 0
    assert result.acked == result.sent == len(result.ledger)
    assert result.stray == 0
    assert report.server_cpu_percent is not None and report.server_cpu_percent > 0


@pytest.mark.asyncio
async def test_pysiaalarm_none_receiver_ack_is_refused() -> None:
    # Without an "R" field pysiaalarm 3.2.2 answers '"ACK"0001NoneL0#...' (its
    # issue #88); that is no DC-09 frame and no ACK.
    cfg = SimulatorConfig(port=1, panels=1, count=2, ack_timeout=0.3, retries=0, account_prefix="A")
    result = (await receive_bench.bench("pysiaalarm", cfg)).result
    assert result.acked == 0 and result.failed == 2
    assert result.malformed == result.stray == 2
