"""Producing and consuming through a real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from arc import bus
from arc.embedded import EmbeddedBroker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.mark.asyncio
async def test_ensure_topics_creates_missing_topics_once(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topics = {topic_prefix + "a": 2, topic_prefix + "b": 1}
    assert await bus.ensure_topics(kafka_bootstrap, topics) == sorted(topics)
    assert await bus.ensure_topics(kafka_bootstrap, topics) == []


@pytest.mark.asyncio
async def test_produce_and_consume_round_trip(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = topic_prefix + "signals"
    await bus.ensure_topics(kafka_bootstrap, {topic: 3})
    sent = [
        {
            "id": f"sig-{i}",
            "account": account,
            "seq": i,
            "code": "BA",
            "received_at": datetime(2026, 1, 2, 3, 4, 5, i, tzinfo=UTC).isoformat(),
            "raw": "0A1B",
            "text": "防区 3 报警",
        }
        for i in range(30)
        for account in [f"AC{i % 5:02d}"]
    ]
    async with bus.make_producer(kafka_bootstrap) as producer:
        # Concurrent sends share batches; each future is the broker's acks=all answer.
        futures = [
            await producer.send(topic, bus.encode(s), key=s["account"].encode()) for s in sent
        ]
        metadata = await asyncio.gather(*futures)
        assert all(m.topic == topic and m.offset >= 0 for m in metadata)
        last = await producer.send_and_wait(topic, bus.encode({"id": "last"}), key=b"AC00")
        assert last.offset >= 0

    consumer = bus.make_consumer(
        kafka_bootstrap,
        topic,
        group_id=topic_prefix + "group",
        session_timeout_ms=2_000,  # the embedded broker holds a first join for half of it
        heartbeat_interval_ms=500,
    )
    received: list[bus.Record] = []
    async with consumer:
        async with asyncio.timeout(20):
            while len(received) < len(sent) + 1:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    received.extend(records)
        await consumer.commit()
        for tp in consumer.assignment():
            assert await consumer.committed(tp) == await consumer.position(tp)

    values = [bus.decode(r.value) for r in received if r.value is not None]
    assert sorted(v["id"] for v in values) == sorted([s["id"] for s in sent] + ["last"])
    assert {v["id"]: v for v in values}["sig-7"] == sent[7]
    # Per-account order: one account's messages share a partition, in send order.
    by_account: dict[bytes, list[tuple[int, int]]] = {}
    for r in received:
        assert r.key is not None
        by_account.setdefault(r.key, []).append((r.partition, r.offset))
    for key, places in by_account.items():
        assert len({p for p, _ in places}) == 1, key
    seqs = [bus.decode(r.value)["seq"] for r in received if r.key == b"AC01" and r.value]
    assert seqs == sorted(seqs)


@pytest.mark.asyncio
async def test_send_to_a_stopped_broker_fails_within_a_hard_bound(topic_prefix: str) -> None:
    topic = topic_prefix + "doomed"
    async with EmbeddedBroker() as broker:
        await bus.ensure_topics(broker.bootstrap, {topic: 1})
        producer = bus.make_producer(broker.bootstrap, request_timeout_ms=1_500)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"{}", key=b"A")
            await asyncio.to_thread(broker.stop)

            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(bus.KafkaError):
                async with asyncio.timeout(10):  # the hard bound, should the client hang
                    await producer.send_and_wait(topic, b"{}", key=b"A")
            assert loop.time() - started < 5
        finally:
            await producer.stop()


@pytest.mark.asyncio
async def test_log_ends_looks_again_with_the_same_client(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = topic_prefix + "ends"
    await bus.ensure_topics(kafka_bootstrap, {topic: 2})
    async with bus.LogEnds(kafka_bootstrap, [topic]) as log:
        assert await log.now() == {(topic, 0): 0, (topic, 1): 0}
        async with bus.make_producer(kafka_bootstrap) as producer:
            for n in range(3):
                await producer.send_and_wait(topic, b"%d" % n, partition=1)
        assert await log.now() == {(topic, 0): 0, (topic, 1): 3}
        await log.stop()  # before the with ends it: stopping again does nothing
    assert await bus.log_ends(kafka_bootstrap, [topic]) == {(topic, 0): 0, (topic, 1): 3}
