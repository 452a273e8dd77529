"""The dispatcher's publication of changed incidents when the broker fails them.

Unit-level fault injection: a stand-in producer whose deliveries fail, as they
do while ``arc up`` replaces the embedded broker. The real path is in
tests/integration/test_dispatch.py.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any, cast

import pytest

from arc import bus, db
from arc.config import Settings
from arc.dispatch.lifecycle import Incident
from arc.dispatch.service import Dispatcher, make_engine


class _FailingProducer:
    def __init__(self) -> None:
        self.sent: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_exception(bus.KafkaError("the broker went away"))
        self.sent.append(future)
        return future


class _Changed:
    account = "1234"


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_failed_publications_are_said_once_a_batch_and_none_is_left_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reported: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
    producer = _FailingProducer()
    dispatcher = Dispatcher(
        pool=cast(db.Pool, None),
        consumer=cast(bus.Consumer, None),
        producer=cast(bus.Producer, producer),
        engine=make_engine(Settings()),
        signals_topic=bus.SIGNALS,
        commands_topic=bus.COMMANDS,
        incidents_topic=bus.INCIDENTS,
    )
    states = [(cast(Incident, _Changed()), b"{}") for _ in range(5)]
    try:
        with caplog.at_level(logging.WARNING, logger="arc.dispatch.service"):
            await dispatcher._publish(states)
            await asyncio.sleep(0)  # the delivery callbacks
        producer.sent.clear()
        gc.collect()  # an unretrieved failure is reported when its future is freed
    finally:
        loop.set_exception_handler(None)
    assert reported == []
    said = [r.getMessage() for r in caplog.records if "could not publish" in r.getMessage()]
    assert len(said) == 1 and "the broker went away" in said[0]
