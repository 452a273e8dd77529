"""The Kafka side of ARC: topic names, producer/consumer factories, (de)serialising.

aiokafka ships no type information, so this module is the typed surface the
rest of ``arc`` uses: ``Producer`` and ``Consumer`` describe the subset of
aiokafka's clients that ARC calls, which lets mypy catch a forgotten ``await``
on a send (a lost alarm). Everything Kafka-specific in the rest of the code
goes through here.

Settings that matter for durability and the embedded broker (see
ARCHITECTURE.md §2 and §5):

- producers use ``acks="all"`` and no idempotence: the embedded broker (Tansu)
  does not implement InitProducerId, and duplicates from retries are removed
  downstream by the signal id;
- consumers never auto-commit: the log writer keeps its offsets in PostgreSQL,
  in the same transaction as the rows;
- the embedded broker keeps topics in memory only, so ``ensure_topics`` runs at
  every start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, cast

import orjson
from aiokafka import (  # type: ignore[import-untyped]  # ships no type information
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]

logger = logging.getLogger(__name__)

__all__ = [
    "COMMANDS",
    "INCIDENTS",
    "QUARANTINE",
    "SIGNALS",
    "TOPIC_PARTITIONS",
    "BusError",
    "Consumer",
    "ConsumerRebalanceListener",
    "KafkaError",
    "Producer",
    "Record",
    "RecordMetadata",
    "TopicPartition",
    "decode",
    "encode",
    "ensure_topics",
    "make_consumer",
    "make_producer",
    "partition_for",
]

SIGNALS = "arc.signals"  # every received signal, keyed by account (per-account order)
QUARANTINE = "arc.quarantine"  # input that failed CRC, decryption, parsing or lookup
INCIDENTS = "arc.incidents"  # incident changes for the console
# Operators' and guards' requests to change incidents, keyed by account like the
# signals and with as many partitions, so that one dispatcher owns both of an account.
COMMANDS = "arc.commands"

# Partitions when ARC creates the topics. The log writer keeps one hash chain per
# partition of arc.signals, and consumers scale out by partitions; an existing
# topic is never changed (a production cluster's topics are sized by its operator).
TOPIC_PARTITIONS: Mapping[str, int] = {SIGNALS: 4, QUARANTINE: 1, INCIDENTS: 4, COMMANDS: 4}

_TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code


class BusError(RuntimeError):
    """The broker refused or failed an administrative request."""


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (murmur2, as Java's)."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


def encode(value: Any) -> bytes:
    """Serialise a message value (JSON via orjson; datetimes must be timezone-aware)."""
    return orjson.dumps(value)


def decode(data: bytes) -> Any:
    """Deserialise a message value written by ``encode``."""
    return orjson.loads(data)


class RecordMetadata(Protocol):
    """Where the broker stored a sent message."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...


class Record(Protocol):
    """A consumed message."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class Producer(Protocol):
    """The part of ``aiokafka.AIOKafkaProducer`` that ARC uses."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def flush(self) -> None: ...
    async def partitions_for(self, topic: str) -> set[int]: ...
    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Queue a message; await the returned future for the broker's answer."""

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> RecordMetadata: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Consumer(Protocol):
    """The part of ``aiokafka.AIOKafkaConsumer`` that ARC uses.

    ``TopicPartition`` is aiokafka's (seek() and friends check its class).
    """

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def subscribe(
        self,
        topics: Sequence[str] = (),
        pattern: str | None = None,
        listener: ConsumerRebalanceListener | None = None,
    ) -> None: ...
    def assign(self, partitions: Sequence[TopicPartition]) -> None: ...
    async def topics(self) -> set[str]: ...
    def partitions_for_topic(self, topic: str) -> set[int] | None: ...
    def assignment(self) -> set[TopicPartition]: ...
    async def getone(self, *partitions: TopicPartition) -> Record: ...
    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Record]]: ...
    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None: ...
    async def committed(self, partition: TopicPartition) -> int | None: ...
    def seek(self, partition: TopicPartition, offset: int) -> None: ...
    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool: ...
    async def seek_to_end(self, *partitions: TopicPartition) -> bool: ...
    async def position(self, partition: TopicPartition) -> int: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...
    async def beginning_offsets(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]: ...
    async def end_offsets(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def make_producer(
    bootstrap: str,
    *,
    client_id: str = "arc",
    linger_ms: int = 2,
    request_timeout_ms: int = 10_000,
    max_batch_size: int = 64 * 1024,
) -> Producer:
    """Return an unstarted producer (``async with`` starts and stops it); call in the loop.

    ``request_timeout_ms`` bounds how long a send may wait for the broker before
    it fails (a stopped broker fails sends after about that long); ``linger_ms``
    lets concurrent sends share a batch at the cost of that much latency.
    """
    return cast(
        Producer,
        AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            enable_idempotence=False,
            linger_ms=linger_ms,
            request_timeout_ms=request_timeout_ms,
            max_batch_size=max_batch_size,
        ),
    )


def make_consumer(
    bootstrap: str,
    *topics: str,
    group_id: str | None,
    client_id: str = "arc",
    session_timeout_ms: int = 10_000,
    heartbeat_interval_ms: int = 3_000,
    max_poll_records: int = 1_000,
    auto_offset_reset: str = "earliest",
    fetch_max_wait_ms: int = 10,
) -> Consumer:
    """Return an unstarted group consumer that never auto-commits; call in the loop.

    ``group_id=None``: no group at all, partitions are ``assign()``-ed by hand.

    Subscribe later (``subscribe(listener=...)``) to seek on assignment; with
    ``topics`` it subscribes at once. On the embedded broker the first join of a
    group takes about ``session_timeout_ms / 2``. ``fetch_max_wait_ms`` bounds
    how long the broker holds a fetch for new data. Under ack policy
    ``database`` it adds to the ACK latency, but each empty fetch costs the
    embedded broker CPU that the rest of the centre waits for. Measured at
    1,000 signals/s on this 2-core machine (median / p99 ACK): 2 ms gave
    14-23 / 126-176 ms, 5 ms 15 / 61 ms, 10 ms 17 / 46 ms.
    """
    return cast(
        Consumer,
        AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            client_id=client_id,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset=auto_offset_reset,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            max_poll_records=max_poll_records,
            fetch_max_wait_ms=fetch_max_wait_ms,
        ),
    )


class LogEnds:
    """A client kept open to look up the end offsets of ``topics`` again and again.

    ``arc up`` looks every few milliseconds while it holds the receivers; a
    client started for each look took 4-14 ms of that.
    """

    def __init__(self, bootstrap: str, topics: Iterable[str]) -> None:
        self._consumer = make_consumer(bootstrap, group_id=None, client_id="arc-log-ends")
        self._topics = tuple(topics)
        self._partitions: list[TopicPartition] = []

    async def __aenter__(self) -> LogEnds:
        await self._consumer.start()
        try:
            await self._consumer.topics()  # loads the partitions of every topic
        except BaseException:
            await self._consumer.stop()
            raise
        self._partitions = [
            TopicPartition(topic, n)
            for topic in self._topics
            for n in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Close the client (again: nothing happens)."""
        await self._consumer.stop()

    async def now(self) -> dict[tuple[str, int], int]:
        """The end offset of every partition, as the broker has them now."""
        ends = await self._consumer.end_offsets(self._partitions)
        return {(tp.topic, tp.partition): end for tp, end in ends.items()}


async def log_ends(bootstrap: str, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """The end offset of every partition of ``topics``, as the broker has them now."""
    async with LogEnds(bootstrap, topics) as ends:
        return await ends.now()


async def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int] = TOPIC_PARTITIONS,
    *,
    replication_factor: int = 1,
    configs: Mapping[str, str] | None = None,
    request_timeout_ms: int = 10_000,
) -> list[str]:
    """Create the missing ``topics`` (name → partitions); return the names created.

    Existing topics are left as they are. Production passes
    ``replication_factor=3, configs={"min.insync.replicas": "2"}``.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="arc-admin", request_timeout_ms=request_timeout_ms
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=replication_factor,
                topic_configs=dict(configs or {}),
            )
            for name, partitions in topics.items()
            if name not in existing
        ]
        if not missing:
            return []
        response = await admin.create_topics(missing, timeout_ms=request_timeout_ms)
    finally:
        await admin.close()
    created: list[str] = []
    for name, error_code, *rest in response.topic_errors:
        if error_code == 0:
            created.append(name)
        elif error_code != _TOPIC_ALREADY_EXISTS:  # another process created it meanwhile
            message = rest[0] if rest else None
            raise BusError(f"could not create topic {name}: error {error_code} ({message})")
    if created:
        logger.info("created topics %s", ", ".join(sorted(created)))
    return sorted(created)
