"""``arc logwriter``: the log writer as a service (several copies share the partitions)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from arc import bus, db
from arc.config import Settings
from arc.logwriter.writer import LogWriter, targets
from arc.process import LOG_STARTED_OVER, LOG_STARTS_OVER, control_line

logger = logging.getLogger(__name__)

GROUP = "arc-logwriter"


async def run_logwriter(
    settings: Settings,
    stop: asyncio.Event,
    *,
    announce: Callable[[str], None] = print,
    topic_prefix: str = "",
    all_partitions: bool = False,
) -> None:
    """Write ``arc.signals`` and ``arc.quarantine`` to PostgreSQL until ``stop`` is set.

    Copies share the partitions through a consumer group. ``all_partitions``
    takes every partition without a group, for a centre with one log writer
    (``arc up``): a restarted writer is writing at once instead of waiting
    for the group to forget its dead predecessor (about 20 s on the embedded
    broker).
    """
    if settings.database_url is None or settings.kafka_bootstrap is None:
        raise SystemExit(
            "arc logwriter needs ARC_DATABASE_URL and ARC_KAFKA_BOOTSTRAP (arc up sets both)"
        )
    chosen = targets(topic_prefix + bus.SIGNALS, topic_prefix + bus.QUARANTINE)
    await bus.ensure_topics(
        settings.kafka_bootstrap,
        {t.topic: bus.TOPIC_PARTITIONS[t.topic.removeprefix(topic_prefix)] for t in chosen},
    )
    pool = await db.create_pool(
        settings.database_url,
        max_size=2,
        application_name="arc-logwriter",
        session_reset=False,  # its batches keep no session state
    )
    consumer = bus.make_consumer(
        settings.kafka_bootstrap,
        group_id=None if all_partitions else topic_prefix + GROUP,
        client_id="arc-logwriter",
    )
    writer = LogWriter(
        pool=pool,
        consumer=consumer,
        targets=chosen,
        on_start_over=lambda: announce(control_line(LOG_STARTED_OVER)),
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(LOG_STARTS_OVER, writer.log_replaced.set)
    if all_partitions:
        await consumer.start()
        await consumer.topics()  # loads the partitions of every topic
        partitions = [
            bus.TopicPartition(t.topic, n)
            for t in chosen
            for n in sorted(consumer.partitions_for_topic(t.topic) or ())
        ]
        consumer.assign(partitions)
        await writer.resume(partitions)
    else:
        consumer.subscribe([t.topic for t in chosen], listener=writer.listener())
        await consumer.start()
    writing = asyncio.create_task(_write_until(writer, stop))
    try:
        # Ready means writing: joining the group takes seconds on the embedded
        # broker, and signals ACKed under ack policy "database" wait for it.
        assigned = asyncio.create_task(writer.assigned.wait())
        await asyncio.wait((assigned, writing), timeout=60, return_when="FIRST_COMPLETED")
        assigned.cancel()
        if writing.done():
            writing.result()  # raises what stopped it
        announce("logwriter: consuming " + ", ".join(t.topic for t in chosen))
        await writing
    finally:
        loop.remove_signal_handler(LOG_STARTS_OVER)
        writing.cancel()
        await consumer.stop()
        await pool.close()
        logger.info(
            "log writer stopped: %d rows written, %d duplicates skipped",
            writer.rows_written,
            writer.duplicates_skipped,
        )


async def _write_until(writer: LogWriter, stop: asyncio.Event) -> None:
    """Run the writer; a failed batch is read again after a pause, not fatal."""
    while not stop.is_set():
        try:
            await writer.run(stop)
        except (bus.KafkaError, *db.DATABASE_ERRORS) as error:
            logger.warning("log writer: %s; trying again in 1 s", error)
            await asyncio.sleep(1.0)
