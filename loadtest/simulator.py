"""DC-09 panel simulator: many alarm panels reporting to one receiver on this machine.

Each panel is one account with one persistent TCP connection (reconnected
after a loss, with a short backoff) or one UDP socket. It sends link tests
(``NULL``) and alarms (SIA-DCS ``Nri1/BA0NN``, ``Nri0/RP0000``, ADM-CID
``1130 01 0NN``), each with the current timestamp and the next sequence number
(0001..9999, wrapping), plain or AES, and has one message in flight: it waits
for the answer before sending the next one, as panels do.

An ACK counts only when it is a genuine frame (CRC and length check out) whose
token is ACK (``*ACK``, decrypting with the key, for an encrypted message),
whose sequence is the one sent and whose account is the panel's. A NAK, a DUH
or no answer within ``ack_timeout`` makes the panel retransmit the same bytes
(same sequence and timestamp) up to ``retries`` times; then the message is
given up and counted as failed. Answers that match nothing are ``stray``.

The ledger lists every message that got a genuine ACK and nothing else: fault
tests compare it with what the receiver stored.

The run always ends by itself, within ``seconds + ack_timeout * (retries + 1)
+ 5`` seconds, and never talks to anything but a loopback address.

    python -m loadtest.simulator --port 9000 --panels 50 --seconds 10 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import ipaddress
import json
import math
import random
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from protocols.dc09 import (
    Frame,
    FrameSplitter,
    build_frame,
    format_timestamp,
    parse_content,
    parse_frame,
)
from protocols.dc09_crypto import Dc09Key, decrypt, encrypt
from protocols.errors import ProtocolError

DEFAULT_KEY = "ascii:3BD7E66AA9E2F190"  # 16 ASCII characters used as key bytes (Ajax style)
TRANSPORTS = ("tcp", "udp", "mixed")
MAX_PANELS = 20_000  # file descriptors, not the protocol, are the limit
# Setting up sockets before the clock starts may take this long; it is part
# of the 5 s of slack in the hard bound.
_SETUP_SECONDS = 2.0
_CLOSE_SECONDS = 1.0
_MAX_BACKOFF = 1.0
_READ_BUFFER = 4096  # answers are < 100 bytes; asyncio's default read buffer is 256 KiB

# Formatted once: per message a tuple index is cheaper than "%04d".
_SEQ_TEXT = tuple(f"{n:04d}" for n in range(10_000))
_SEQ_BYTES = tuple(s.encode() for s in _SEQ_TEXT)

# What a wait for an answer ends with.
_ACK, _NAK, _DUH, _TIMEOUT, _LOST = range(5)

_NULL, _SIA, _CID = b"NULL", b"SIA-DCS", b"ADM-CID"


def check_loopback(host: str) -> str:
    """Return the address to use for ``host``; refuse anything but loopback.

    ``localhost`` becomes 127.0.0.1 rather than being resolved: a hosts file
    could point it elsewhere.
    """
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"refusing to target {host!r}: the simulator only talks to loopback "
            "(127.0.0.0/8, ::1 or localhost)"
        ) from None
    if not address.is_loopback:
        raise ValueError(
            f"refusing to target {host}: the simulator only talks to loopback "
            "(127.0.0.0/8, ::1 or localhost)"
        )
    return host


def account_ids(prefix: str, panels: int) -> list[str]:
    """The panels' accounts: ``prefix`` and a five-digit number from 00001."""
    return [f"{prefix}{n:05d}" for n in range(1, panels + 1)]


@dataclass(frozen=True)
class SimulatorConfig:
    """What to simulate. Validated on creation: a bad value raises ValueError."""

    port: int
    host: str = "127.0.0.1"
    udp_port: int | None = None  # None: the same number as ``port``
    panels: int = 50
    account_prefix: str = "S"
    transport: str = "tcp"  # tcp, udp, or mixed (even panels TCP, odd panels UDP)
    aes: bool = False
    key: str = DEFAULT_KEY
    rate: float = 0.0  # total messages/s over all panels; 0 = as fast as ACKs come back
    seconds: float = 10.0  # no new message after this; retries of the last one may follow
    count: int | None = None  # total messages, if that comes first
    ack_timeout: float = 2.0
    retries: int = 3
    link_test_share: float = 0.25  # fraction of messages that are NULL link tests
    receiver: str | None = None  # "R" field (hex digits) to send, None for none
    line: str = "0"  # "L" field (account prefix digits)
    first_sequence: int = 1
    reconnect_delay: float = 0.1  # first backoff after a lost or refused connection
    seed: int | None = None  # for the message mix and pads; None: random

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", check_loopback(self.host))
        for name in ("port", "udp_port"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 65535:
                raise ValueError(f"{name} must be 1..65535, got {value}")
        if not 1 <= self.panels <= MAX_PANELS:
            raise ValueError(f"panels must be 1..{MAX_PANELS}, got {self.panels}")
        prefix = self.account_prefix
        # Five digits follow; DC-09 accounts have at most 16 characters.
        if len(prefix) > 11 or (prefix and not (prefix.isascii() and prefix.isalnum())):
            raise ValueError("account prefix must be at most 11 ASCII letters or digits")
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        if self.aes:
            try:
                Dc09Key.parse(self.key)
            except ProtocolError as error:  # one kind of refusal for every bad setting
                raise ValueError(f"bad key: {error.reason}") from None
        if not (self.rate >= 0 and math.isfinite(self.rate)):
            raise ValueError("rate must be 0 (closed loop) or a positive number")
        if not (0 < self.seconds <= 86_400):
            raise ValueError("seconds must be positive (and at most a day)")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if not (0 < self.ack_timeout <= 60):
            raise ValueError("ack timeout must be in (0, 60] seconds")
        if not 0 <= self.retries <= 100:
            raise ValueError("retries must be 0..100")
        if not 0 <= self.link_test_share <= 1:
            raise ValueError("link test share must be between 0 and 1")
        if self.receiver is not None and not _is_hex(self.receiver, 1, 6):
            raise ValueError("receiver must be 1 to 6 hex digits")
        if not _is_hex(self.line, 0, 6):
            raise ValueError("line must be up to 6 hex digits")
        if not 1 <= self.first_sequence <= 9999:
            raise ValueError("first sequence must be 1..9999")
        if not 0 < self.reconnect_delay <= _MAX_BACKOFF:
            raise ValueError(f"reconnect delay must be in (0, {_MAX_BACKOFF:g}] seconds")

    @property
    def hard_limit(self) -> float:
        """Seconds after which a run has certainly returned."""
        return self.seconds + self.ack_timeout * (self.retries + 1) + 5.0

    def accounts(self) -> list[str]:
        return account_ids(self.account_prefix, self.panels)


def _is_hex(text: str, low: int, high: int) -> bool:
    return low <= len(text) <= high and all(c in "0123456789ABCDEFabcdef" for c in text)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A message that got a genuine ACK."""

    account: str
    sequence: str  # four digits, as sent
    device_time: str  # the frame's timestamp, ISO 8601 UTC
    message_type: str  # SIA-DCS, ADM-CID or NULL
    data: str  # the data block's text, "" for a link test
    encrypted: bool
    transport: str  # tcp or udp
    first_sent: float  # time.monotonic() of the first transmission
    latency: float  # seconds from the first transmission to the ACK
    retransmissions: int


# A ledger entry while the run goes on (LedgerEntry's fields, in its order): a
# plain tuple of strings and numbers, which the garbage collector stops
# tracking after its first collection.
# LedgerEntry objects (tracked, like any instance) made full collections walk
# the whole ledger, pauses that grew with the run and were measured as ACK
# latency: 120 ms on average four minutes into a soak.
_LedgerRow = tuple[str, str, str, str, str, bool, str, float, float, int]


@dataclass
class SimulatorResult:
    """Counts and latencies of one run, and its ledger."""

    sent: int  # distinct messages transmitted at least once (= acked + failed)
    acked: int
    failed: int
    retransmissions: int
    stray: int  # answers that matched no message in flight (malformed ones included)
    nak: int  # NAKs received for a message in flight
    duh: int  # DUHs received for a message in flight
    malformed: int  # answers that were not a genuine frame (subset of stray)
    timeouts: int  # transmissions that got no valid answer within ack_timeout
    disconnects: int  # TCP connections lost (not closed by us)
    connect_failures: int  # TCP connects or UDP sockets that failed
    elapsed: float  # seconds from the start to the last message resolved
    acked_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    ledger: list[LedgerEntry] = field(repr=False)
    config: SimulatorConfig | None = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """Everything but the ledger, JSON-ready."""
        # Not asdict(self): that would copy the whole ledger first.
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        del out["ledger"], out["config"]
        if self.config is not None:
            cfg = self.config
            out["config"] = {
                "host": cfg.host,
                "port": cfg.port,
                "udp_port": cfg.udp_port,
                "panels": cfg.panels,
                "transport": cfg.transport,
                "aes": cfg.aes,
                "rate": cfg.rate,
                "seconds": cfg.seconds,
                "count": cfg.count,
                "ack_timeout": cfg.ack_timeout,
                "retries": cfg.retries,
            }
        return out


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence; 0 when empty."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def write_ledger(path: Path, entries: Iterable[LedgerEntry]) -> int:
    """Write the ledger as JSON lines; return the number of lines."""
    n = 0
    with path.open("w", encoding="utf-8") as out:
        for entry in entries:
            out.write(json.dumps(asdict(entry), separators=(",", ":")) + "\n")
            n += 1
    return n


class _Stats:
    __slots__ = (
        "sent",
        "acked",
        "failed",
        "retransmissions",
        "stray",
        "nak",
        "duh",
        "malformed",
        "timeouts",
        "disconnects",
        "connect_failures",
        "last_resolved",
    )

    def __init__(self) -> None:
        self.sent = self.acked = self.failed = self.retransmissions = 0
        self.stray = self.nak = self.duh = self.malformed = self.timeouts = 0
        self.disconnects = self.connect_failures = 0
        self.last_resolved = 0.0


class _Clock:
    """The DC-09 timestamp and its ISO text, formatted once per second."""

    __slots__ = ("_second", "_stamp", "_iso")

    def __init__(self) -> None:
        self._second = -1
        self._stamp = b""
        self._iso = ""

    def now(self) -> tuple[bytes, str]:
        second = int(time.time())
        if second != self._second:
            moment = datetime.fromtimestamp(second, UTC)
            self._stamp = format_timestamp(moment)
            self._iso = moment.isoformat()
            self._second = second
        return self._stamp, self._iso


class _Timeouts:
    """The ACK timeouts of all panels: one FIFO and one timer.

    The timeout is the same for every transmission, so deadlines come in the
    order of sending: a FIFO is already sorted, and a timer per message (a
    heap push and a cancellation, about a fifth of the simulator's own cost
    per message) is not needed. Waiters answered in time stay queued until
    their deadline and are skipped then.
    """

    __slots__ = ("_loop", "_timeout", "_queue", "_handle")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._queue: deque[tuple[float, asyncio.Future[int]]] = deque()
        self._handle: asyncio.TimerHandle | None = None

    def add(self, waiter: asyncio.Future[int]) -> None:
        deadline = self._loop.time() + self._timeout
        self._queue.append((deadline, waiter))
        if self._handle is None:
            self._handle = self._loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._handle = None
        now = self._loop.time()
        queue = self._queue
        while queue:
            deadline, waiter = queue[0]
            if deadline > now:
                self._handle = self._loop.call_at(deadline, self._expire)
                return
            queue.popleft()
            if not waiter.done():
                waiter.set_result(_TIMEOUT)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._queue.clear()


class _Run:
    """State shared by the panels of one run."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.stats = _Stats()
        self.ledger: list[_LedgerRow] = []
        self.clock = _Clock()
        self.key = Dc09Key.parse(config.key) if config.aes else None
        self.rng = random.Random(config.seed)
        self.pad_random = self.rng.randbytes
        self.interval = config.panels / config.rate if config.rate > 0 else 0.0
        self.timeouts = _Timeouts(self.loop, config.ack_timeout)
        self.started = 0
        self.start = 0.0
        self.soft_deadline = math.inf  # set when the clock starts
        self.drain_deadline = math.inf
        self.panels: list[_Panel] = []

    def begin(self, start: float) -> None:
        cfg = self.config
        self.start = start
        self.soft_deadline = start + cfg.seconds
        self.drain_deadline = self.soft_deadline + cfg.ack_timeout * (cfg.retries + 1)

    def claim(self) -> bool:
        """Take one message from the budget, if time and count allow."""
        if time.monotonic() >= self.soft_deadline:
            return False
        count = self.config.count
        if count is not None and self.started >= count:
            return False
        self.started += 1
        return True

    def request_stop(self) -> None:
        """No new messages; those in flight finish (with their retries)."""
        now = time.monotonic()
        if now < self.soft_deadline:
            self.soft_deadline = now
            self.drain_deadline = now + self.config.ack_timeout * (self.config.retries + 1)
        for panel in self.panels:
            panel.wake()

    def pick(self, account: bytes) -> tuple[bytes, bytes]:
        """The next message of the mix: its token and data block."""
        rng = self.rng
        if rng.random() < self.config.link_test_share:
            return _NULL, b""
        kind = rng.randrange(3)
        if kind == 0:
            return _SIA, b"#%b|Nri1/BA%03d" % (account, rng.randint(1, 64))
        if kind == 1:
            return _SIA, b"#%b|Nri0/RP0000" % account
        return _CID, b"#%b|1130 01 %03d" % (account, rng.randint(1, 64))


class _TcpClient(asyncio.BufferedProtocol):
    """A panel's TCP connection: frames in, answers to the panel.

    A BufferedProtocol reads into one small buffer of its own; a plain
    Protocol gets a fresh 256 KiB bytes object per read.
    """

    def __init__(self, panel: _Panel, closed: asyncio.Future[None]) -> None:
        self._panel = panel
        self._splitter = FrameSplitter()
        self._buffer = bytearray(_READ_BUFFER)
        self._view = memoryview(self._buffer)
        self.closed = closed

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        on_answer = self._panel.on_answer
        for chunk in self._splitter.feed(bytes(self._view[:nbytes])):
            on_answer(chunk)

    def connection_lost(self, exc: Exception | None) -> None:
        self._panel.on_connection_lost(self)
        if not self.closed.done():
            self.closed.set_result(None)


class _UdpClient(asyncio.DatagramProtocol):
    """A panel's UDP socket, connected to the receiver: one datagram, one answer."""

    def __init__(self, panel: _Panel, closed: asyncio.Future[None]) -> None:
        self._panel = panel
        self._splitter = FrameSplitter()
        self.closed = closed

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        on_answer = self._panel.on_answer
        splitter = self._splitter
        for chunk in splitter.feed(data):
            on_answer(chunk)
        for chunk in splitter.flush():  # a datagram is complete: no frame spans two
            on_answer(chunk)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the wait for the answer times
        # out and the message is retransmitted, as with a lost datagram.
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self._panel.on_connection_lost(self)
        if not self.closed.done():
            self.closed.set_result(None)


class _Panel:
    """One panel: its socket, its sequence counter and the message in flight."""

    __slots__ = (
        "_run",
        "account",
        "_account_bytes",
        "udp",
        "_head",
        "_seq",
        "_transport",
        "_protocol",
        "_send",
        "_waiter",
        "_expect",
        "_encrypted",
        "_key",
        "_pacer",
        "_next_at",
        "_closing",
        "_lost",
        "closed",
    )

    def __init__(self, run: _Run, index: int, account: str, udp: bool) -> None:
        cfg = run.config
        self._run = run
        self.account = account
        self._account_bytes = account.encode()
        self.udp = udp
        receiver = b"" if cfg.receiver is None else b"R" + cfg.receiver.encode()
        # Everything between the sequence and the data: the same for every message.
        self._head = b"%bL%b#%b[" % (receiver, cfg.line.encode(), self._account_bytes)
        self._seq = cfg.first_sequence
        self._transport: asyncio.BaseTransport | None = None
        self._protocol: _TcpClient | _UdpClient | None = None
        self._send: Callable[[bytes], None] | None = None  # transport.write or .sendto
        self._waiter: asyncio.Future[int] | None = None
        self._expect = ""  # the sequence of the message in flight
        self._key = run.key
        self._encrypted = run.key is not None
        self._pacer: asyncio.Future[None] | None = None
        # Open loop: panels start evenly spread over one interval.
        self._next_at = index * run.interval / cfg.panels
        self._closing = False
        self._lost = False  # the connection was lost: back off before the next
        self.closed: asyncio.Future[None] | None = None

    # -- connection -------------------------------------------------------

    async def connect(self, until: float, *, retry: bool = True) -> bool:
        """Open the socket, retrying with backoff until ``until`` (monotonic)."""
        run = self._run
        cfg = run.config
        loop = run.loop
        delay = cfg.reconnect_delay
        if self._lost:  # as panels do: not straight back at a receiver that just hung up
            self._lost = False
            await self._sleep(min(delay, until - time.monotonic()))
        while not self._closing:
            now = time.monotonic()
            if now >= until:
                return False
            closed: asyncio.Future[None] = loop.create_future()
            try:
                async with asyncio.timeout(min(cfg.ack_timeout, until - now)):
                    if self.udp:
                        udp, udp_protocol = await loop.create_datagram_endpoint(
                            functools.partial(_UdpClient, self, closed),
                            remote_addr=(cfg.host, cfg.udp_port or cfg.port),
                        )
                        self._transport, self._protocol, self._send = udp, udp_protocol, udp.sendto
                    else:
                        tcp, tcp_protocol = await loop.create_connection(
                            functools.partial(_TcpClient, self, closed), cfg.host, cfg.port
                        )
                        self._transport, self._protocol, self._send = tcp, tcp_protocol, tcp.write
            except (OSError, TimeoutError):
                run.stats.connect_failures += 1
                if not retry:
                    return False
                await self._sleep(min(delay, until - time.monotonic()))
                delay = min(delay * 2, _MAX_BACKOFF)
                continue
            self.closed = closed
            return True
        return False

    def on_connection_lost(self, protocol: _TcpClient | _UdpClient) -> None:
        if protocol is not self._protocol:
            return
        self._transport = self._protocol = self._send = None
        if not self._closing:
            self._run.stats.disconnects += 1
            self._lost = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(_LOST)

    def close(self) -> asyncio.Future[None] | None:
        """Close the socket; return a future done once it is closed."""
        self._closing = True
        self.wake()
        if self._transport is not None:
            self._transport.close()
            return self.closed
        return None

    # -- waiting ----------------------------------------------------------

    async def _sleep(self, delay: float) -> None:
        """Sleep that ``wake`` (a stop request) cuts short."""
        if delay <= 0:
            return
        pacer: asyncio.Future[None] = self._run.loop.create_future()
        self._pacer = pacer
        handle = self._run.loop.call_later(delay, _settle, pacer, None)
        try:
            await pacer
        finally:
            handle.cancel()
            self._pacer = None

    def wake(self) -> None:
        pacer = self._pacer
        if pacer is not None and not pacer.done():
            pacer.set_result(None)

    # -- answers ----------------------------------------------------------

    def on_answer(self, chunk: bytes) -> None:
        stats = self._run.stats
        try:
            frame = parse_frame(chunk)
        except ProtocolError:
            stats.malformed += 1
            stats.stray += 1
            return
        waiter = self._waiter
        if waiter is None or waiter.done():
            stats.stray += 1
            return
        header = frame.header
        kind = header.message_type
        if kind == "ACK":
            if (
                header.sequence == self._expect
                and header.account == self.account
                and header.encrypted == self._encrypted
                and (self._key is None or _ack_decrypts(frame, self._key))
            ):
                waiter.set_result(_ACK)
                return
        elif kind == "NAK":
            # A NAK names no message (sequence 0000, account A0): with one
            # message in flight per socket it can only be about that one.
            stats.nak += 1
            waiter.set_result(_NAK)
            return
        elif kind == "DUH" and header.sequence == self._expect and header.account == self.account:
            stats.duh += 1
            waiter.set_result(_DUH)
            return
        stats.stray += 1

    # -- sending ----------------------------------------------------------

    async def run(self) -> None:
        """Send messages until the time or count is up."""
        run = self._run
        interval = run.interval
        while not self._closing and time.monotonic() < run.soft_deadline:
            if self._transport is None:
                if not await self.connect(run.soft_deadline):
                    return
                continue
            if interval:
                now = time.monotonic()
                delay = self._next_at - now
                if delay > 0:
                    await self._sleep(min(delay, run.soft_deadline - now))
                    continue
                # Open loop: keep to the schedule, but after a slow answer
                # start again from now rather than sending a burst.
                self._next_at = (self._next_at if -delay < interval else now) + interval
            if not run.claim():
                return
            await self._deliver()

    async def _deliver(self) -> None:
        """Send one new message until it is ACKed or given up."""
        run = self._run
        stats = run.stats
        seq = self._seq
        self._seq = seq % 9999 + 1
        stamp, iso = run.clock.now()
        token, data = run.pick(self._account_bytes)
        if self._key is not None:
            sealed = encrypt(data + b"]" + stamp, self._key, run.pad_random)
            body = b'"*%b"%b%b%b' % (token, _SEQ_BYTES[seq], self._head, sealed)
        else:
            body = b'"%b"%b%b%b]%b' % (token, _SEQ_BYTES[seq], self._head, data, stamp)
        frame = build_frame(body)
        self._expect = _SEQ_TEXT[seq]
        retries = run.config.retries
        loop = run.loop
        add_timeout = run.timeouts.add
        attempts = 0
        first = 0.0
        pending = False
        try:
            while True:
                send = self._send
                if send is None:
                    if not await self.connect(run.drain_deadline):
                        break
                    continue
                if not pending:
                    first = time.monotonic()
                    stats.sent += 1
                    pending = True
                # The answer, or the timeout: a future and the shared timer,
                # cheaper than wait_for and a timer of its own.
                waiter: asyncio.Future[int] = loop.create_future()
                self._waiter = waiter
                add_timeout(waiter)
                send(frame)
                try:
                    outcome = await waiter
                finally:
                    self._waiter = None
                if outcome == _ACK:
                    now = time.monotonic()
                    pending = False
                    stats.acked += 1
                    stats.last_resolved = now
                    run.ledger.append(
                        (
                            self.account,
                            self._expect,
                            iso,
                            token.decode(),
                            data.decode(),
                            self._encrypted,
                            "udp" if self.udp else "tcp",
                            first,
                            now - first,
                            attempts,
                        )
                    )
                    return
                if outcome == _TIMEOUT:
                    stats.timeouts += 1
                if attempts >= retries or self._closing:
                    break
                attempts += 1
                stats.retransmissions += 1
        finally:
            # Given up, out of time, or cancelled at the hard stop.
            if pending:
                stats.failed += 1
                stats.last_resolved = time.monotonic()


def _ack_decrypts(frame: Frame, key: Dc09Key) -> bool:
    """Whether an ``*ACK`` decrypts, with the panel's key, to ``<pad>|]_<timestamp>``."""
    try:
        plain = decrypt(frame.content, key)
    except ProtocolError:
        return False
    bar = plain.find(b"|")
    # pysiaalarm pads its *ACK with ASCII "0" and no "|" terminator
    # (str.zfill). Ajax hubs, the panels pysiaalarm is mostly used with in
    # encrypted mode, accept that, so a pad without "|" ending at the "]" is
    # accepted too (pad bytes never contain "]"). What follows must still be
    # a well-formed "]" and timestamp.
    start = bar + 1 if bar >= 0 else plain.find(b"]")
    if start < 0:
        return False
    try:
        content = parse_content(plain[start:])
    except ProtocolError:
        return False
    return content.timestamp is not None


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


async def run(config: SimulatorConfig, *, stop: asyncio.Event | None = None) -> SimulatorResult:
    """Run the panels of ``config``; return within ``config.hard_limit`` seconds.

    Setting ``stop`` ends the run early: no new messages, those in flight
    finish.
    """
    # What this process holds before the run outlives it: frozen, no collection
    # during the run walks it (a soak's earlier windows' ledger, say).
    gc.freeze()
    try:
        return await _run_panels(config, stop)
    finally:
        gc.unfreeze()


async def _run_panels(config: SimulatorConfig, stop: asyncio.Event | None) -> SimulatorResult:
    began = time.monotonic()
    state = _Run(config)
    accounts = config.accounts()
    for index, account in enumerate(accounts):
        udp = config.transport == "udp" or (config.transport == "mixed" and index % 2 == 1)
        state.panels.append(_Panel(state, index, account, udp))
    # Sockets first, then the clock: connection set-up is not throughput.
    # A panel that could not connect keeps trying in its own loop.
    setup_until = began + _SETUP_SECONDS
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_SETUP_SECONDS):
            await asyncio.gather(*(p.connect(setup_until, retry=False) for p in state.panels))
    start = time.monotonic()
    state.begin(start)
    for panel in state.panels:
        panel._next_at += start
    watcher = None
    if stop is not None:

        async def watch(event: asyncio.Event) -> None:
            await event.wait()
            state.request_stop()

        watcher = asyncio.create_task(watch(stop))
    tasks = [asyncio.create_task(panel.run()) for panel in state.panels]
    try:
        # The last retry of the last message ends by the drain deadline; a
        # little later anything still running is cut off (and counted failed).
        hard_stop = min(state.drain_deadline + 1.0, began + config.hard_limit - 2.0)
        _done, late = await asyncio.wait(tasks, timeout=max(0.0, hard_stop - time.monotonic()))
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=_CLOSE_SECONDS)
    finally:
        for task in tasks:
            task.cancel()
        state.timeouts.close()
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        closing = [f for f in (panel.close() for panel in state.panels) if f is not None]
        if closing:
            # Wait for the transports to close their sockets, not longer.
            await asyncio.wait(closing, timeout=_CLOSE_SECONDS)
    return _result(state, start)


def _result(state: _Run, start: float) -> SimulatorResult:
    stats = state.stats
    end = stats.last_resolved if stats.last_resolved > start else time.monotonic()
    elapsed = max(end - start, 1e-9)
    ledger = [LedgerEntry(*row) for row in state.ledger]
    latencies = sorted(entry.latency for entry in ledger)
    ms = [1000 * percentile(latencies, p) for p in (50, 90, 99, 100)]
    return SimulatorResult(
        sent=stats.sent,
        acked=stats.acked,
        failed=stats.failed,
        retransmissions=stats.retransmissions,
        stray=stats.stray,
        nak=stats.nak,
        duh=stats.duh,
        malformed=stats.malformed,
        timeouts=stats.timeouts,
        disconnects=stats.disconnects,
        connect_failures=stats.connect_failures,
        elapsed=round(elapsed, 6),
        acked_per_second=round(stats.acked / elapsed, 3),
        p50_ms=round(ms[0], 3),
        p90_ms=round(ms[1], 3),
        p99_ms=round(ms[2], 3),
        max_ms=round(ms[3], 3),
        ledger=ledger,
        config=state.config,
    )


def format_table(result: SimulatorResult) -> str:
    """A short human-readable summary."""
    r = result
    return "\n".join(
        [
            f"sent {r.sent}  acked {r.acked}  failed {r.failed}  "
            f"retransmissions {r.retransmissions}",
            f"nak {r.nak}  duh {r.duh}  stray {r.stray} (malformed {r.malformed})  "
            f"timeouts {r.timeouts}  disconnects {r.disconnects}  "
            f"connect failures {r.connect_failures}",
            f"acked/s {r.acked_per_second:,.1f} over {r.elapsed:.2f} s",
            f"latency ms  p50 {r.p50_ms:.2f}  p90 {r.p90_ms:.2f}  p99 {r.p99_ms:.2f}  "
            f"max {r.max_ms:.2f}",
        ]
    )


def add_arguments(parser: argparse.ArgumentParser, *, port_required: bool = True) -> None:
    """The simulator's options, shared with the receive bench."""
    parser.add_argument("--host", default="127.0.0.1", help="loopback address of the receiver")
    parser.add_argument("--port", type=int, required=port_required, help="receiver port (TCP)")
    parser.add_argument("--udp-port", type=int, help="UDP port if not the same as --port")
    parser.add_argument("--panels", type=int, default=50, help="concurrent panels (accounts)")
    parser.add_argument("--account-prefix", default="S", help="accounts are PREFIX00001...")
    parser.add_argument("--transport", choices=TRANSPORTS, default="tcp")
    parser.add_argument("--aes", action="store_true", help="encrypt messages (AES-CBC)")
    parser.add_argument("--key", default=DEFAULT_KEY, help="hex:<digits> or ascii:<chars>")
    parser.add_argument("--rate", type=float, default=0.0, help="total msg/s; 0 = closed loop")
    parser.add_argument("--seconds", type=float, default=10.0, help="send for this long")
    parser.add_argument("--count", type=int, help="stop after this many messages")
    parser.add_argument("--ack-timeout", type=float, default=2.0, help="seconds per attempt")
    parser.add_argument("--retries", type=int, default=3, help="retransmissions per message")
    parser.add_argument("--link-test-share", type=float, default=0.25, help="fraction NULL")
    parser.add_argument("--receiver", help='"R" field to send (hex digits); "" or unset: none')
    parser.add_argument("--line", default="0", help='"L" field to send (hex digits)')
    parser.add_argument("--seed", type=int, help="seed for the message mix")
    parser.add_argument("--ledger", type=Path, help="write ACKed messages here as JSON lines")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def config_from_args(args: argparse.Namespace, **overrides: Any) -> SimulatorConfig:
    """The SimulatorConfig the parsed options describe."""
    config = SimulatorConfig(
        port=args.port if args.port is not None else 1,
        host=args.host,
        udp_port=args.udp_port,
        panels=args.panels,
        account_prefix=args.account_prefix,
        transport=args.transport,
        aes=args.aes,
        key=args.key,
        rate=args.rate,
        seconds=args.seconds,
        count=args.count,
        ack_timeout=args.ack_timeout,
        retries=args.retries,
        link_test_share=args.link_test_share,
        receiver=args.receiver or None,  # "" for none (the bench defaults to "0")
        line=args.line,
        seed=args.seed,
    )
    return replace(config, **overrides) if overrides else config


async def _main_async(config: SimulatorConfig) -> SimulatorResult:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        return await run(config, stop=stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.simulator",
        description="DC-09 panel simulator (loopback targets only).",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as error:
        parser.error(str(error))
    result = asyncio.run(_main_async(config))
    if args.ledger is not None:
        write_ledger(args.ledger, result.ledger)
    if args.json:
        print(json.dumps(result.summary()))
    else:
        print(format_table(result))
    return 0 if result.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
