"""SignalSink under ack policy ``database``: a send the broker fails is not acknowledged, at once.

Unit-level fault injection: the producer is a stand-in whose sends fail or
succeed on command, and the log writer's notice is delivered by hand. The
real broker and database paths are in tests/integration/test_receive_path.py.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any, cast

import pytest
from pydantic import SecretStr

from arc import bus
from arc.config import AckPolicy
from arc.db import DURABLE_CHANNEL
from arc.ingest.durability import DurableListener, SignalSink
from arc.model import SignalMessage, new_id

TIMEOUT = 30.0  # the ack timeout: far longer than any of these tests may take


class _Producer:
    """Sends whose outcome ``settle`` decides, as the broker's answer would."""

    def __init__(self, expected: int) -> None:
        self.sent: list[asyncio.Future[Any]] = []
        self.all_sent = asyncio.Event()  # once ``expected`` sends came
        self._expected = expected

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append(future)
        if len(self.sent) == self._expected:
            self.all_sent.set()
        return future


def _signals(count: int) -> list[SignalMessage]:
    # What persist reads of a signal: its id and account (the rest only travels).
    return [cast(SignalMessage, {"signal_id": new_id(), "account": "1234"}) for _ in range(count)]


def _sink(count: int) -> tuple[SignalSink, _Producer, DurableListener]:
    producer = _Producer(count)
    listener = DurableListener(SecretStr("postgresql://unused"))
    sink = SignalSink(
        cast(bus.Producer, producer), policy=AckPolicy.DATABASE, timeout=TIMEOUT, listener=listener
    )
    return sink, producer, listener


async def _persisting(
    count: int, settle: Callable[[_Producer, DurableListener, list[SignalMessage]], None]
) -> tuple[bool, DurableListener]:
    sink, producer, listener = _sink(count)
    signals = _signals(count)
    task = asyncio.create_task(sink.persist(signals))
    async with asyncio.timeout(2):
        await producer.all_sent.wait()
        settle(producer, listener, signals)
        durable = await task
    await sink.drain()
    return durable, listener


@pytest.mark.asyncio
@pytest.mark.timeout(10)
@pytest.mark.parametrize("count", [1, 3])
async def test_a_failed_send_is_not_acknowledged_and_not_waited_for(count: int) -> None:
    def fail_the_last(producer: _Producer, _: DurableListener, __: list[SignalMessage]) -> None:
        for future in producer.sent[:-1]:
            future.set_result(None)
        producer.sent[-1].set_exception(bus.KafkaError("the broker refused it"))

    durable, listener = await _persisting(count, fail_the_last)
    assert durable is False
    assert not listener._waiters  # nobody waits for a notice that cannot come


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_a_cancelled_send_is_not_acknowledged() -> None:
    def cancel(producer: _Producer, _: DurableListener, __: list[SignalMessage]) -> None:
        producer.sent[0].cancel()

    durable, _ = await _persisting(1, cancel)
    assert durable is False


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_signals_are_durable_once_the_broker_took_them_and_their_commit_is_announced() -> (
    None
):
    def commit(
        producer: _Producer, listener: DurableListener, signals: list[SignalMessage]
    ) -> None:
        for future in producer.sent:
            future.set_result(None)
        ids = " ".join(s["signal_id"] for s in signals)
        listener._on_notify(cast(Any, None), 0, DURABLE_CHANNEL, ids)

    durable, listener = await _persisting(2, commit)
    assert durable is True and not listener._waiters


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_every_failed_send_of_a_frame_is_retrieved_under_the_broker_policy() -> None:
    """A frame's sends that fail after the first are not reported as errors nobody saw."""
    reported: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
    try:
        producer = _Producer(3)
        sink = SignalSink(cast(bus.Producer, producer), policy=AckPolicy.BROKER, timeout=TIMEOUT)
        task = asyncio.create_task(sink.persist(_signals(3)))
        async with asyncio.timeout(2):
            await producer.all_sent.wait()
            for future in producer.sent:
                future.set_exception(bus.KafkaError("the broker went away"))
            assert not await task
        await sink.drain()
        await asyncio.sleep(0)  # the callbacks on futures already failed
        producer.sent.clear()
        del task
        gc.collect()  # an unretrieved failure is reported when its future is freed
    finally:
        loop.set_exception_handler(None)
    assert reported == []
