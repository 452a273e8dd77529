"""What a fetch costs the embedded broker as its log grows (why ``arc up`` replaces it).

    python -m loadtest.broker_bench [--sizes 100,5000,20000,40000] [--fetches 200]

Starts the embedded broker (Tansu, memory only) on loopback, fills one
partition with single-record batches (one producer request each, as a
quiet centre sends them) up to each size in turn, and at each size fetches
the newest record ``--fetches`` times. It reports the broker's CPU per fetch
(from ``/proc/PID/stat``), the wall time per fetch and the broker's resident
memory, and the CPU ratio to the smallest size of the same run.

Bounded: the sizes are capped at 100,000 batches and the whole run at
``--limit`` seconds (default 500).
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
    args = parser.parse_args(argv)
    sizes = sorted(min(int(s), _MAX_SIZE) for s in args.sizes.split(","))
    print("| batches in the partition | broker CPU per fetch, ms | vs first | wall ms | RSS MiB |")
    print("|---:|---:|---:|---:|---:|")
    asyncio.run(measure(sizes, args.fetches, time.monotonic() + args.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
