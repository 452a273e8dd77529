"""The live queue: incident changes from ``arc.incidents`` fanned out to every open page.

Theory of operation. The dispatcher publishes an incident on ``arc.incidents``
after its change is committed, so what arrives here is already the record.
One consumer per console process reads every partition from the end (no
consumer group: each console copy needs every change) and hands each change
to every subscriber's bounded queue. A subscriber that falls behind (a tab
asleep, a slow link) is not allowed to hold memory without limit: its queue
is dropped and it is told to reload, which re-reads the queue from
PostgreSQL. The page so never shows a stale queue silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from arc import bus

logger = logging.getLogger(__name__)

QUEUE_BOUND = 1_000  # changes waiting per page: ten seconds at 100/s before it must reload
RELOAD: dict[str, Any] = {"reload": True}
# How long the broker may hold a fetch with nothing new. A person reads the
# queue, so 100 ms more is nothing against the 1 s target; an idle console
# polling every 10 ms (the services' default) cost the embedded broker and
# itself about a tenth of a core each, taken from the receive path.
FETCH_WAIT_MS = 100


class LiveFeed:
    """Read ``arc.incidents`` and fan each change out to the subscribers."""

    def __init__(self, *, bootstrap: str | None, topic: str = bus.INCIDENTS) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._consumer: bus.Consumer | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        """Start reading from the end of every partition."""
        if self._bootstrap is None:
            self.ready.set()
            return
        consumer = bus.make_consumer(
            self._bootstrap,
            group_id=None,
            client_id="arc-console",
            # Out of range only when arc up started the embedded broker afresh
            # (its start is seek_to_end): read the new log from its start.
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_WAIT_MS,
        )
        await consumer.start()
        await consumer.topics()
        numbers = sorted(consumer.partitions_for_topic(self._topic) or ())
        partitions = [bus.TopicPartition(self._topic, n) for n in numbers]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        # The position is fixed only once asked for: ask now, so a change
        # published after start() returns is never skipped.
        for partition in partitions:
            await consumer.position(partition)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer))
        self.ready.set()

    async def stop(self) -> None:
        """Stop reading; every subscriber is told to reload (it will find the console gone)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
        for queue in list(self._subscribers):
            self._drop(queue)

    async def _run(self, consumer: bus.Consumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
            except bus.KafkaError as error:
                logger.warning("live queue: %s; trying again in 1 s", error)
                await asyncio.sleep(1.0)
                continue
            if not self._subscribers:
                continue  # no page open: read on, but nothing to parse for anyone
            for records in batches.values():
                for record in records:
                    if record.value is not None:
                        self.publish(orjson.loads(record.value))

    def publish(self, change: dict[str, Any]) -> None:
        """Hand one incident change to every subscriber."""
        for queue in list(self._subscribers):
            if queue.qsize() >= QUEUE_BOUND:
                self._drop(queue)  # the last place is kept for RELOAD
            else:
                queue.put_nowait(change)

    def _drop(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(RELOAD)

    def open(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue of the changes from now on; ``close`` it when the page leaves.

        One never closed (a client gone before its stream began) fills up and
        is dropped like a slow one: a leak is bounded by ``QUEUE_BOUND``.
        """
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_BOUND + 1)
        self._subscribers.add(queue)
        return queue

    def close(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop handing changes to ``queue``."""
        self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        """How many pages listen now."""
        return len(self._subscribers)
