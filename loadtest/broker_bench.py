"""What a fetch costs the embedded broker as its log grows (why ``arc up`` replaces it).

    python -m loadtest.broker_bench [--sizes 100,5000,20000,40000] [--fetches 200]

Starts the embedded broker (Tansu, memory only) on loopback, fills one
partition with single-record batches (one producer request each, as a
quiet centre sends them) up to each size in turn, and at each size fetches
the newest record ``--fetches`` times. It reports the broker's CPU per fetch
(from ``/proc/PID/stat``), the wall time per fetch and the broker's resident
memory, and the CPU ratio to the smallest size of the same run.

Then, with ``--steady SECONDS`` (default 20; 0 skips it), the pattern of a
centre: a producer sends ``--rate`` records a second (keyed, over the four
partitions of ``arc.signals``, with the receiver's producer settings), first
with no reader, then with one that keeps up with them, as the log writer
does; the broker's CPU is reported every 5 s while the log grows.

Bounded: the sizes are capped at 100,000 batches, the steady part at 120 s,
and the whole run at ``--limit`` seconds (default 500).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from arc import bus
from arc.embedded.broker import EmbeddedBroker

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TOPIC = "bench.broker"
_STREAMS = 16  # concurrent producers: the fill is bound by round trips, not by the broker
_MAX_SIZE = 100_000
_MAX_STEADY = 120.0
_WINDOW = 5.0  # seconds per line of the steady part


@dataclass(frozen=True)
class Point:
    """One size of the log and what a fetch of its newest record cost."""

    batches: int
    broker_cpu_ms: float
    wall_ms: float
    rss_mib: float


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE / 2**20


async def measure(sizes: Sequence[int], fetches: int, deadline: float) -> list[Point]:
    """Fill the partition to each size and time ``fetches`` fetches at each."""
    broker = EmbeddedBroker()
    broker.start()
    points = []
    try:
        await bus.ensure_topics(broker.bootstrap, {_TOPIC: 1})
        producer = bus.make_producer(broker.bootstrap, linger_ms=0)
        consumer = bus.make_consumer(broker.bootstrap, group_id=None)
        await producer.start()
        await consumer.start()
        partition = bus.TopicPartition(_TOPIC, 0)
        consumer.assign([partition])
        batches = 0
        try:
            for size in sizes:

                async def fill(count: int) -> None:
                    for _ in range(count):
                        # One request a record: each is a batch of its own.
                        await producer.send_and_wait(_TOPIC, b"x" * 200, partition=0)

                each = max(0, size - batches) // _STREAMS
                await asyncio.gather(*(fill(each) for _ in range(_STREAMS)))
                batches += each * _STREAMS
                end = (await consumer.end_offsets([partition]))[partition]
                cpu, began = _cpu_seconds(broker.pid), time.perf_counter()
                for _ in range(fetches):
                    consumer.seek(partition, end - 1)
                    if not await consumer.getmany(partition, timeout_ms=2_000):
                        raise RuntimeError("a fetch of the newest record came back empty")
                wall = time.perf_counter() - began
                cpu = _cpu_seconds(broker.pid) - cpu
                points.append(
                    Point(
                        batches=batches,
                        broker_cpu_ms=round(1000 * cpu / fetches, 3),
                        wall_ms=round(1000 * wall / fetches, 3),
                        rss_mib=round(_rss_mib(broker.pid), 1),
                    )
                )
                print(_row(points[-1], points[0]), flush=True)
                if time.monotonic() > deadline:
                    print("time limit reached: larger sizes skipped", file=sys.stderr)
                    break
        finally:
            await consumer.stop()
            await producer.stop()
    finally:
        broker.stop()
    return points


async def steady(rate: int, seconds: float, *, reading: bool) -> None:
    """A producer at ``rate`` records/s (and a reader keeping up); the broker's CPU per window."""
    broker = EmbeddedBroker()
    broker.start()
    try:
        await bus.ensure_topics(broker.bootstrap, {bus.SIGNALS: bus.TOPIC_PARTITIONS[bus.SIGNALS]})
        producer = bus.make_producer(broker.bootstrap)  # the receiver's linger and batch size
        consumer = bus.make_consumer(broker.bootstrap, group_id=None)
        await producer.start()
        await consumer.start()
        if reading:
            partitions = range(bus.TOPIC_PARTITIONS[bus.SIGNALS])
            consumer.assign([bus.TopicPartition(bus.SIGNALS, n) for n in partitions])
        read = 0

        async def keep_up() -> None:
            nonlocal read
            while reading:
                got = await consumer.getmany(timeout_ms=1_000, max_records=5_000)
                read += sum(len(records) for records in got.values())

        reader = asyncio.create_task(keep_up())
        try:
            began = time.monotonic()
            cpu, window, sent = _cpu_seconds(broker.pid), began + _WINDOW, 0
            while (now := time.monotonic()) - began < seconds:
                for _ in range(int((now - began) * rate) - sent):
                    key = b"%05d" % (sent % 200)  # 200 panels
                    await producer.send(bus.SIGNALS, b"x" * 400, key=key)
                    sent += 1
                if now >= window:
                    used = _cpu_seconds(broker.pid) - cpu
                    share = 100 * used / _WINDOW
                    line = f"| {now - began:.0f} | {sent:,} | {read:,} | {share:.0f} % |"
                    line = ("| one " if reading else "| none ") + line
                    print(line, flush=True)
                    cpu, window = cpu + used, window + _WINDOW
                await asyncio.sleep(0.001)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await consumer.stop()
            await producer.stop()
    finally:
        broker.stop()


def _row(point: Point, first: Point) -> str:
    ratio = point.broker_cpu_ms / first.broker_cpu_ms if first.broker_cpu_ms else float("nan")
    return (
        f"| {point.batches:,} | {point.broker_cpu_ms:.2f} | {ratio:.1f}x"
        f" | {point.wall_ms:.2f} | {point.rss_mib:.0f} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,5000,20000,40000")
    parser.add_argument("--fetches", type=int, default=200)
    parser.add_argument("--limit", type=float, default=500.0, help="seconds for the whole run")
    parser.add_argument("--steady", type=float, default=20.0, help="seconds of steady load")
    parser.add_argument("--rate", type=int, default=1_000, help="records/s of the steady load")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.limit
    sizes = sorted(min(int(s), _MAX_SIZE) for s in args.sizes.split(","))
    print("| batches in the partition | broker CPU per fetch, ms | vs first | wall ms | RSS MiB |")
    print("|---:|---:|---:|---:|---:|")
    asyncio.run(measure(sizes, args.fetches, deadline))
    seconds = min(args.steady, _MAX_STEADY)
    if seconds > 0:
        print(f"\n{args.rate:,} records/s, without a reader and with one keeping up:\n")
        print("| reader | second | records sent | read | broker CPU |")
        print("|---|---:|---:|---:|---:|")
        for reading in (False, True):
            if time.monotonic() + seconds > deadline:
                print("time limit reached: steady load skipped", file=sys.stderr)
                break
            asyncio.run(steady(args.rate, seconds + 1, reading=reading))
    return 0


if __name__ == "__main__":
    sys.exit(main())
