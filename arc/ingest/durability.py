"""Making signals durable before a device is acknowledged (ARCHITECTURE.md §2).

``SignalSink.persist`` produces a frame's signals to ``arc.signals`` and
returns True only once they are durable under the configured policy:

- ``broker``: the broker has them with acks=all;
- ``database``: the log writer has committed them to PostgreSQL. The writer
  sends ``NOTIFY arc_durable`` in the same transaction as the rows, its
  payload the committed signal ids separated by spaces, so the notification
  arrives only after the commit; ``DurableListener`` turns those into
  resolved futures. The future is registered before the signal is produced,
  so a commit can never be announced before anybody waits for it.

Past ``timeout`` it returns False and the receiver stays silent: the device
sends again, and the log writer stores the retransmission once.

Refused input goes to ``arc.quarantine`` without waiting: nothing is
acknowledged for it, and the device's retry brings it again if it is lost.

``sends.hold`` makes new sends wait (at most ``timeout``) until
``sends.release``: ``arc up`` holds the receivers while it replaces the
embedded broker, so that nothing reaches the old broker after its log was
found fully stored.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from pydantic import SecretStr

from arc import bus, db
from arc.config import AckPolicy
from arc.db import DURABLE_CHANNEL
from arc.model import QuarantineMessage, SignalMessage, encode
from arc.process import SendHold

logger = logging.getLogger(__name__)

_RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0)


class DurableListener:
    """Futures that resolve when the log writer announces a signal id committed."""

    def __init__(self, dsn: SecretStr) -> None:
        self._dsn = dsn
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._conn: asyncpg.Connection[asyncpg.Record] | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def connected(self) -> bool:
        """Whether notifications are being received now."""
        return self._connected.is_set()

    async def start(self, *, within: float = 10.0) -> None:
        """Connect and LISTEN; reconnect by itself when the connection is lost."""
        self._task = asyncio.create_task(self._keep_listening(), name="durable-listener")
        try:
            await asyncio.wait_for(self._connected.wait(), within)
        except TimeoutError:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop listening; pending waiters are left to time out."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    def expect(self, signal_ids: Sequence[str]) -> list[asyncio.Future[None]]:
        """Futures for ``signal_ids``, to await after producing them."""
        loop = asyncio.get_running_loop()
        futures = []
        for signal_id in signal_ids:
            future: asyncio.Future[None] = loop.create_future()
            self._waiters[signal_id] = future
            futures.append(future)
        return futures

    def forget(self, signal_ids: Sequence[str]) -> None:
        """Drop the waiters of signals that will not be acknowledged."""
        for signal_id in signal_ids:
            self._waiters.pop(signal_id, None)

    def _on_notify(self, _conn: db.Connection, _pid: int, _channel: str, payload: object) -> None:
        pop = self._waiters.pop
        for signal_id in str(payload).split():
            future = pop(signal_id, None)
            if future is not None and not future.done():
                future.set_result(None)

    async def _keep_listening(self) -> None:
        attempt = 0
        while not self._stopping:
            lost = asyncio.Event()
            try:
                conn = await db.connect(self._dsn, application_name="arc-receiver-listen")
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(DURABLE_CHANNEL, self._on_notify)
            except (OSError, asyncpg.PostgresError, TimeoutError) as error:
                delay = _RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)]
                logger.warning(
                    "cannot listen for durable signals (%s); again in %.1fs", error, delay
                )
                attempt += 1
                await asyncio.sleep(delay)
                continue
            self._conn, attempt = conn, 0
            self._connected.set()
            await lost.wait()
            self._connected.clear()
            logger.warning("lost the database connection that announces durable signals")


def _fail_waits(waits: Sequence[asyncio.Future[None]], sent: asyncio.Future[Any]) -> None:
    """Fail the durability waits of a frame one of whose sends failed."""
    error = TimeoutError() if sent.cancelled() else sent.exception()
    if error is None:
        return
    for future in waits:
        if not future.done():
            future.set_exception(error)


def _retrieve(sent: asyncio.Future[Any]) -> None:
    """Mark a send's failure as seen (asyncio would report it unretrieved)."""
    if not sent.cancelled():
        sent.exception()


class SignalSink:
    """Produce signals and tell when they are durable; quarantine refused input."""

    def __init__(
        self,
        producer: bus.Producer,
        *,
        policy: AckPolicy,
        timeout: float,
        listener: DurableListener | None = None,
        signals_topic: str = bus.SIGNALS,
        quarantine_topic: str = bus.QUARANTINE,
    ) -> None:
        if policy is AckPolicy.DATABASE and listener is None:
            raise ValueError("ack policy 'database' needs a DurableListener")
        self._producer = producer
        self._policy = policy
        self._timeout = timeout
        self._listener = listener if policy is AckPolicy.DATABASE else None
        self._signals_topic = signals_topic
        self._quarantine_topic = quarantine_topic
        self._background: set[asyncio.Task[None]] = set()
        # account → partition of the signals topic: the default partitioner's
        # choice (murmur2 of the key, as Kafka's), computed once per account.
        self._partitions: dict[str, int] = {}
        self._partition_count = 0
        # The durability waits, oldest first (the timeout is the same for all),
        # failed by one sweeper: a timer per signal costs more than the rest of
        # its persisting. Sends fail by themselves: the producer's request
        # timeout is the ack timeout.
        self._deadlines: collections.deque[tuple[float, list[asyncio.Future[None]]]] = (
            collections.deque()
        )
        self._sweeper: asyncio.Task[None] | None = None
        self.sends = SendHold()  # held while arc up replaces the embedded broker

    async def _until_open(self) -> bool:
        if not self.sends.held:
            return True
        try:
            await asyncio.wait_for(self.sends.released(), self._timeout)
        except TimeoutError:
            return False
        return True

    async def persist(self, signals: Sequence[SignalMessage]) -> bool:
        """Produce ``signals``; True once durable under the policy, False past the timeout."""
        ids = [s["signal_id"] for s in signals]
        if not await self._until_open():
            logger.warning(
                "signals %s held past %.1fs: not acknowledged", ",".join(ids), self._timeout
            )
            return False
        waits: list[asyncio.Future[None]] = []
        if self._listener is not None:
            waits = self._listener.expect(ids)
            self._deadlines.append((asyncio.get_running_loop().time() + self._timeout, waits))
            if self._sweeper is None:
                self._sweeper = asyncio.create_task(self._sweep(), name="durability-timeouts")
        sent: list[asyncio.Future[bus.RecordMetadata]] = []
        try:
            for signal in signals:
                sent.append(await self._send(signal))
            if waits:
                # A commit's notice implies the broker had the signals: a failed
                # send fails the waits rather than being awaited itself, and the
                # frame's task wakes once, not twice.
                for sent_future in sent:
                    sent_future.add_done_callback(functools.partial(_fail_waits, waits))
            else:
                # Most frames carry one event: no gathering future for them.
                for sent_future in sent:
                    await sent_future
            for durable in waits:
                await durable
        except (TimeoutError, bus.KafkaError) as error:
            if self._listener is not None:
                self._listener.forget(ids)
            for future in waits:
                future.cancel()
            for sent_future in sent:  # those not awaited: their failure is said here
                sent_future.add_done_callback(_retrieve)
            logger.warning(
                "signals %s not durable within %.1fs (%s): not acknowledged",
                ",".join(ids),
                self._timeout,
                type(error).__name__,
            )
            return False
        return True

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        deadlines = self._deadlines
        while True:
            await asyncio.sleep(0.05)
            now = loop.time()
            while deadlines and deadlines[0][0] <= now:
                for future in deadlines.popleft()[1]:
                    if not future.done():
                        future.set_exception(TimeoutError())

    async def _send(self, signal: SignalMessage) -> asyncio.Future[bus.RecordMetadata]:
        account = signal["account"]
        key = account.encode()
        partition = self._partitions.get(account)
        if partition is None:
            if not self._partition_count:
                self._partition_count = len(
                    await self._producer.partitions_for(self._signals_topic)
                )
            partition = self._partitions[account] = bus.partition_for(key, self._partition_count)
        return await self._producer.send(
            self._signals_topic, encode(signal), key=key, partition=partition
        )

    def quarantine(self, message: QuarantineMessage) -> None:
        """Send refused input to quarantine in the background."""
        task = asyncio.create_task(self._quarantine(message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _quarantine(self, message: QuarantineMessage) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self.sends.released()
                await (await self._producer.send(self._quarantine_topic, encode(message)))
        except (TimeoutError, bus.KafkaError) as error:
            # The device was not acknowledged, so it sends again; say what was lost.
            logger.error(
                "could not quarantine input from %s (%s): %s, %d bytes (%s)",
                message["peer"],
                message["reason"],
                message["response"],
                len(message["raw"]) * 3 // 4,
                type(error).__name__,
            )

    async def drain(self, *, within: float = 5.0) -> None:
        """Wait for background quarantine sends, then stop the timeout sweeper (at shutdown)."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=within)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
