"""The SIA DC-09 receiver: TCP and UDP on one port, answers after durability.

Theory of operation. Bytes from a connection go through a ``FrameSplitter``
(a read is not a frame); each chunk gets ``protocols.dc09_receiver.receive``'s
decision. An ACK is sent only once ``SignalSink.persist`` says the signals are
durable; if they are not in time, nothing is sent and the panel retransmits.
NAK and DUH are sent at once and the chunk is quarantined with its reason.

Panels keep one message in flight, but nothing stops one from sending the
next before our answer: answers on a connection are written in the order
the frames came, and a connection with too many unanswered frames stops
being read until it catches up (backpressure instead of unbounded memory).

The account lookup is the in-memory cache (``arc.accounts.cache``): no
database round trip per message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from arc.ingest.durability import SignalSink
from arc.model import dc09_signals, quarantine_message
from protocols.dc09 import FrameSplitter
from protocols.dc09_receiver import AccountLookup, Reception, TimestampPolicy, receive
from protocols.errors import Response

logger = logging.getLogger(__name__)

# Unanswered frames one connection may have before we stop reading it.
MAX_PENDING_PER_CONNECTION = 64
_ACK = Response.ACK


class Dc09Receiver:
    """Answer DC-09 chunks: decide, persist, and say what to send back."""

    def __init__(
        self,
        *,
        accounts: AccountLookup,
        sink: SignalSink,
        policy: TimestampPolicy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._accounts = accounts
        self._sink = sink
        self._policy = policy
        self._clock = clock

    async def answer(self, chunk: bytes, *, transport: str, peer: str | None) -> bytes:
        """The bytes to send back for ``chunk`` (empty: send nothing)."""
        now = self._clock()
        reception = receive(chunk, now=now, accounts=self._accounts, policy=self._policy)
        if reception.response is _ACK and reception.message is not None:
            if await self._persist(reception, now, transport, peer):
                return reception.reply
            return b""
        self._quarantine(reception, now, transport, peer)
        return reception.reply

    async def _persist(
        self, reception: Reception, now: datetime, transport: str, peer: str | None
    ) -> bool:
        frame, message = reception.frame, reception.message
        assert frame is not None and message is not None  # noqa: S101 - ACK implies both
        header = frame.header
        signals = dc09_signals(
            message,
            received_at=now,
            transport=transport,
            peer=peer,
            encrypted=header.encrypted,
            header_fields=(header.token, header.sequence, header.receiver, header.line),
        )
        return await self._sink.persist(signals)

    def _quarantine(
        self, reception: Reception, now: datetime, transport: str, peer: str | None
    ) -> None:
        if reception.error is not None:
            reason = f"{type(reception.error).__name__}: {reception.error.reason}"
        else:
            reason = "a receiver's answer (ACK/NAK/DUH/RSP) sent to the receiver"
        header = reception.frame.header if reception.frame is not None else None
        self._sink.quarantine(
            quarantine_message(
                reception.raw,
                received_at=now,
                transport=transport,
                peer=peer,
                reason=reason,
                protocol="dc09",
                account=None if header is None else header.account,
                response=None if reception.response is None else reception.response.value,
            )
        )

    def quarantine_rest(self, rest: bytes, *, transport: str, peer: str | None) -> None:
        """Keep what a connection left unfinished when it closed."""
        self._sink.quarantine(
            quarantine_message(
                rest,
                received_at=self._clock(),
                transport=transport,
                peer=peer,
                reason="FramingError: connection closed in the middle of a frame",
                protocol="dc09",
            )
        )


def _peer(address: object) -> str | None:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return None


class _TcpConnection(asyncio.Protocol):
    def __init__(
        self,
        receiver: Dc09Receiver,
        live: set[asyncio.Transport],
        inflight: set[asyncio.Task[None]],
    ) -> None:
        self._receiver = receiver
        self._live = live
        self._inflight = inflight
        self._splitter = FrameSplitter()
        self._transport: asyncio.Transport | None = None
        self._peer: str | None = None
        self._last: asyncio.Task[None] | None = None
        self._pending = 0
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._live.add(self._transport)
        self._peer = _peer(transport.get_extra_info("peername"))

    def data_received(self, data: bytes) -> None:
        for chunk in self._splitter.feed(data):
            self._last = task = asyncio.create_task(self._answer(chunk, self._last))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            self._pending += 1
        if self._pending >= MAX_PENDING_PER_CONNECTION and not self._paused:
            assert self._transport is not None  # noqa: S101
            self._transport.pause_reading()
            self._paused = True

    async def _answer(self, chunk: bytes, previous: asyncio.Task[None] | None) -> None:
        try:
            reply = await self._receiver.answer(chunk, transport="tcp", peer=self._peer)
            if previous is not None and not previous.done():
                await previous  # answers leave in the frames' order; it never raises
            transport = self._transport
            if reply and transport is not None and not transport.is_closing():
                transport.write(reply)
        except Exception:  # a bug must not kill the connection's other answers
            logger.exception("error answering a DC-09 frame from %s", self._peer)
        finally:
            self._pending -= 1
            if self._paused and self._pending < MAX_PENDING_PER_CONNECTION // 2:
                self._paused = False
                if self._transport is not None and not self._transport.is_closing():
                    self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        for rest in self._splitter.flush():
            self._receiver.quarantine_rest(rest, transport="tcp", peer=self._peer)
        if self._transport is not None:
            self._live.discard(self._transport)
        self._transport = None


class _UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, receiver: Dc09Receiver, inflight: set[asyncio.Task[None]]) -> None:
        self._receiver = receiver
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks = inflight

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        # A datagram is whole: what the splitter keeps back is its last chunk.
        splitter = FrameSplitter()
        for chunk in splitter.feed(data) + splitter.flush():
            task = asyncio.create_task(self._answer(chunk, addr))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, chunk: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            reply = await self._receiver.answer(chunk, transport="udp", peer=_peer(addr))
            if reply and self._transport is not None and not self._transport.is_closing():
                self._transport.sendto(reply, addr)
        except Exception:
            logger.exception("error answering a DC-09 datagram from %s", _peer(addr))

    def error_received(self, exc: Exception) -> None:
        logger.warning("DC-09 UDP: %s", exc)


@dataclass
class Dc09Endpoints:
    """The listening TCP server and UDP endpoint, on one port."""

    tcp: asyncio.Server
    udp: asyncio.DatagramTransport
    host: str
    port: int
    connections: set[asyncio.Transport]
    inflight: set[asyncio.Task[None]]

    def describe(self) -> str:
        """The stable line ``arc up`` prints for scripts."""
        return f"dc09: tcp://{self.host}:{self.port} udp://{self.host}:{self.port}"

    async def close(self, *, grace: float = 0.0) -> None:
        """Stop accepting; answer what is in flight for up to ``grace`` seconds; close."""
        self.tcp.close()  # no new connections
        for transport in list(self.connections):
            transport.pause_reading()  # no new frames
        if self.inflight and grace > 0:
            await asyncio.wait(set(self.inflight), timeout=grace)
        self.udp.close()
        for transport in list(self.connections):
            transport.close()
        await self.tcp.wait_closed()


async def serve_dc09(receiver: Dc09Receiver, *, host: str, port: int) -> Dc09Endpoints:
    """Listen for DC-09 on TCP and UDP ``host:port`` (0: a free port, the same for both)."""
    loop = asyncio.get_running_loop()
    live: set[asyncio.Transport] = set()
    inflight: set[asyncio.Task[None]] = set()
    for _attempt in range(5):
        tcp = await loop.create_server(lambda: _TcpConnection(receiver, live, inflight), host, port)
        chosen = tcp.sockets[0].getsockname()[1]
        try:
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpEndpoint(receiver, inflight),
                local_addr=(host, chosen),
                reuse_port=True,
            )
        except OSError:
            tcp.close()
            await tcp.wait_closed()
            if port:  # the port asked for is taken for UDP
                raise
            continue  # the free TCP port's UDP twin is taken: pick another
        return Dc09Endpoints(tcp, udp, host, chosen, live, inflight)
    raise OSError(f"no port free for both TCP and UDP on {host}")
