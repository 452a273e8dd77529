"""``arc receiver``: the DC-09 receiver as a service (copies may run behind a balancer)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from arc import bus
from arc.accounts.cache import AccountCache
from arc.accounts.service import key_box
from arc.config import AckPolicy, Settings
from arc.ingest.dc09_server import Dc09Receiver, serve_dc09
from arc.ingest.durability import DurableListener, SignalSink
from protocols.dc09_receiver import TimestampPolicy

logger = logging.getLogger(__name__)

# How long the producer waits to fill a batch. The embedded broker lists every
# batch of a partition on each read of it, so fewer, larger batches keep its
# reads cheap and leave the cores to the rest of the centre: at 1,000 signals/s
# the ACK p99 was 84-135 ms with 2 ms and 46-65 ms with 10 ms, for about 7 %
# less throughput with 50 panels in a closed loop (docs/benchmarks.md).
PRODUCE_LINGER_MS = 10
# The most a batch may hold. The producer has one batch of a partition in flight
# at a time, and the embedded broker's topics have one partition (arc.embedded.
# topics): with aiokafka's 64 KiB, a flood of 500 panels ran at 0.72-0.83x the
# rate it reached with four partitions; with 512 KiB at 0.93-1.05x.
PRODUCE_BATCH_BYTES = 512 * 1024


def timestamp_policy(settings: Settings) -> TimestampPolicy:
    """The centre's default DC-09 timestamp window."""
    return TimestampPolicy(ahead=settings.timestamp_ahead, behind=settings.timestamp_behind)


async def run_receiver(
    settings: Settings,
    stop: asyncio.Event,
    *,
    announce: Callable[[str], None] = print,
    topic_prefix: str = "",
) -> None:
    """Serve DC-09 on TCP and UDP until ``stop`` is set, then finish what is in flight."""
    if settings.database_url is None or settings.kafka_bootstrap is None:
        raise SystemExit(
            "arc receiver needs ARC_DATABASE_URL and ARC_KAFKA_BOOTSTRAP (arc up sets both)"
        )
    policy = timestamp_policy(settings)
    cache = AccountCache(box=key_box(settings.master_key), default_policy=policy)
    await cache.start(settings.database_url)
    listener = None
    if settings.ack_policy is AckPolicy.DATABASE:
        listener = DurableListener(settings.database_url)
        await listener.start()
    producer = bus.make_producer(
        settings.kafka_bootstrap,
        client_id="arc-receiver",
        linger_ms=PRODUCE_LINGER_MS,
        max_batch_size=PRODUCE_BATCH_BYTES,
        # A send that cannot be made within the ack timeout fails, so the
        # device is not acknowledged and sends again.
        request_timeout_ms=int(settings.ack_timeout * 1000),
    )
    await producer.start()
    sink = SignalSink(
        producer,
        policy=settings.ack_policy,
        timeout=settings.ack_timeout,
        listener=listener,
        signals_topic=topic_prefix + bus.SIGNALS,
        quarantine_topic=topic_prefix + bus.QUARANTINE,
    )
    sink.sends.install()
    receiver = Dc09Receiver(accounts=cache.get, sink=sink, policy=policy)
    endpoints = await serve_dc09(receiver, host=settings.listen_host, port=settings.dc09_port)
    announce(endpoints.describe())
    logger.info("receiver ready, ack policy %s", settings.ack_policy.value)
    try:
        await stop.wait()
    finally:
        sink.sends.uninstall()
        await endpoints.close(grace=settings.ack_timeout)
        await sink.drain(within=settings.ack_timeout)
        await producer.stop()
        if listener is not None:
            await listener.stop()
        await cache.stop()
