"""Dispatcher benchmark: classified signals per second, and signal→incident latency.

Against the embedded PostgreSQL and broker, started here in a scratch
directory, with ``arc dispatcher`` as its own process (as ``arc up`` runs it):

1. *Throughput*: ``--signals`` signals of ``--accounts`` panels (link tests,
   open/close, burglaries and their restores, a few fires) are put on
   ``arc.signals`` first; then the dispatcher starts, and the clock runs
   until its stored offsets cover them all. The reference, in the same
   run: a bare aiokafka consumer reading and JSON-decoding the same records
   (no decisions, no database): the ratio says what the decisions and the
   transactions cost.
2. *Latency*: signals produced at ``--rate`` per second for ``--seconds``;
   a consumer of ``arc.incidents`` (what the console reads) takes each
   incident change that a signal caused and measures now − the signal's
   ``received_at``. Percentiles of those.

Everything runs on this machine; the dispatcher's CPU is read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

from arc import bus, db
from arc.embedded import EmbeddedBroker, EmbeddedPostgres
from arc.model import SignalMessage, new_id
from arc.runtime import with_credentials
from loadtest.receive_bench import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
APP_PASSWORD = "bench-app-password"  # noqa: S105 - a scratch database's role

# (share, SIA code, qualifier, class): what a centre's traffic looks like, mostly quiet.
MIX: tuple[tuple[float, str | None, str, str], ...] = (
    (0.55, None, "new", "test"),  # DC-09 NULL link test
    (0.10, "OP", "new", "open_close"),
    (0.10, "CL", "restore", "open_close"),
    (0.14, "BA", "new", "burglary"),
    (0.08, "BR", "restore", "burglary"),
    (0.03, "FA", "new", "fire"),
)


def make_signal(rng: random.Random, accounts: Sequence[str]) -> SignalMessage:
    """One signal as the receiver produces it."""
    roll, share = rng.random(), 0.0
    _, code, qualifier, event_class = MIX[-1]
    for entry in MIX:
        share += entry[0]
        if roll < share:
            _, code, qualifier, event_class = entry
            break
    zone = None if code is None else f"{rng.randint(1, 8)}"
    return {
        "signal_id": new_id(),
        "received_at": datetime.now(UTC).isoformat(),
        "account": rng.choice(accounts),
        "protocol": "dc09",
        "transport": "tcp",
        "peer": "127.0.0.1:40000",
        "message_id": "SIA-DCS" if code else "NULL",
        "sequence": f"{rng.randint(1, 9999):04d}",
        "receiver_no": None,
        "line_no": "L0",
        "encrypted": False,
        "qualifier": qualifier,
        "code": code,
        "cid_event": None,
        "event_class": event_class,
        "zone": zone,
        "user_no": None,
        "partition_no": "1" if code else None,
        "event_text": None,
        "device_time": None,
        "drift_seconds": None,
        "drift_flagged": False,
        "xdata": [],
        "raw": "",
        "dedup_key": None,
    }


async def produce(producer: bus.Producer, topic: str, message: SignalMessage) -> None:
    await producer.send(topic, value=orjson.dumps(message), key=message["account"].encode())


async def _offsets_done(dsn: str, topic: str) -> int:
    conn = await db.connect(dsn)
    try:
        value = await conn.fetchval(
            "SELECT coalesce(sum(next_offset), 0) FROM dispatcher_state WHERE topic = $1", topic
        )
        return int(value)
    finally:
        await conn.close()


async def _reference(bootstrap: str, topic: str, count: int) -> float:
    """Seconds a bare consumer takes to read and decode ``count`` records of ``topic``."""
    consumer = bus.make_consumer(bootstrap, group_id=None, client_id="bench-reference")
    await consumer.start()
    try:
        await consumer.topics()
        consumer.assign(
            [bus.TopicPartition(topic, n) for n in consumer.partitions_for_topic(topic) or ()]
        )
        began, seen = time.perf_counter(), 0
        while seen < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=2_000)
            for records in batches.values():
                for record in records:
                    orjson.loads(record.value or b"")
                seen += len(records)
        return time.perf_counter() - began
    finally:
        await consumer.stop()


async def start_service(
    env: dict[str, str], name: str, *args: str, ready: bytes
) -> tuple[asyncio.subprocess.Process, bytes]:
    """Start ``arc NAME ARGS`` as a process; return it and its first line that starts ``ready``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arc.cli",
        name,
        *args,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None  # noqa: S101 - created with a pipe
    async with asyncio.timeout(60):
        while not (line := await proc.stdout.readline()).startswith(ready):
            if proc.returncode is not None or not line:
                raise RuntimeError(f"arc {name} exited while starting")
    return proc, line


@contextlib.asynccontextmanager
async def scratch_centre(
    prefix: str, accounts: Sequence[str]
) -> AsyncIterator[tuple[str, str, dict[str, str]]]:
    """Embedded PostgreSQL (migrated, ``accounts`` in) and broker in a scratch directory.

    Yields the owner's DSN, the broker's bootstrap and the environment a
    service started as its own process needs (as ``arc up`` gives it).
    """
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        with EmbeddedPostgres(scratch / "postgres") as postgres, EmbeddedBroker() as broker:
            admin_dsn = postgres.dsn().get_secret_value()
            conn = await db.connect(admin_dsn)
            try:
                await db.migrate(conn=conn)
                await conn.execute(f"ALTER ROLE arc_app LOGIN PASSWORD '{APP_PASSWORD}'")
                await conn.executemany(
                    "INSERT INTO accounts (account, link_test_seconds) VALUES ($1, 3600)",
                    [(a,) for a in accounts],
                )
            finally:
                await conn.close()
            await bus.ensure_topics(broker.bootstrap)
            env = {k: v for k, v in os.environ.items() if not k.startswith("ARC_")}
            env.update(
                ARC_DATABASE_URL=with_credentials(
                    postgres.dsn(), "arc_app", APP_PASSWORD
                ).get_secret_value(),
                ARC_KAFKA_BOOTSTRAP=broker.bootstrap,
            )
            yield admin_dsn, broker.bootstrap, env
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def bench(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(7)
    accounts = [f"{n:04X}" for n in range(0x1000, 0x1000 + args.accounts)]
    async with scratch_centre("arc-dispatch-bench-", accounts) as (admin_dsn, bootstrap, env):
        producer = bus.make_producer(bootstrap, linger_ms=5)
        await producer.start()
        try:
            for _ in range(args.signals):
                await produce(producer, bus.SIGNALS, make_signal(rng, accounts))
            await producer.flush()
            reference = await _reference(bootstrap, bus.SIGNALS, args.signals)
            proc, _ = await start_service(
                env, "dispatcher", "--all-partitions", ready=b"dispatcher:"
            )
            try:
                began, cpu0 = time.perf_counter(), cpu_seconds(proc.pid)
                async with asyncio.timeout(args.signals / 200 + 60):
                    # Polling the database is the measurement: offsets are committed there.
                    while await _offsets_done(admin_dsn, bus.SIGNALS) < args.signals:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - began
                cpu = cpu_seconds(proc.pid) - cpu0
                latencies = await _latency(producer, bootstrap, rng, accounts, args)
            finally:
                proc.terminate()
                async with asyncio.timeout(30):
                    await proc.wait()
        finally:
            await producer.stop()
        conn = await db.connect(admin_dsn)
        try:
            incidents = await conn.fetchval("SELECT count(*) FROM incidents")
            log_rows = await conn.fetchval("SELECT count(*) FROM incident_log")
        finally:
            await conn.close()
    rate = args.signals / elapsed
    reference_rate = args.signals / reference
    lat = sorted(latencies)
    return {
        "signals": args.signals,
        "accounts": args.accounts,
        "throughput_per_s": round(rate),
        "dispatcher_cpu_per_signal_us": round(cpu / args.signals * 1e6, 1),
        "reference_bare_consumer_per_s": round(reference_rate),
        "ratio_to_reference": round(rate / reference_rate, 3),
        "incidents": incidents,
        "incident_log_rows": log_rows,
        "latency_rate_per_s": args.rate,
        "latency_samples": len(lat),
        "latency_p50_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
        "latency_p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 1) if lat else None,
        "latency_max_ms": round(lat[-1] * 1000, 1) if lat else None,
    }


async def _latency(
    producer: bus.Producer,
    bootstrap: str,
    rng: random.Random,
    accounts: Sequence[str],
    args: argparse.Namespace,
) -> list[float]:
    """Seconds from each signal's ``received_at`` to its incident change on ``arc.incidents``."""
    consumer = bus.make_consumer(bootstrap, group_id=None, client_id="bench-console")
    await consumer.start()
    sent: set[str] = set()
    latencies: list[float] = []
    try:
        await consumer.topics()
        parts = [
            bus.TopicPartition(bus.INCIDENTS, n)
            for n in consumer.partitions_for_topic(bus.INCIDENTS) or ()
        ]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            consumer.seek(tp, ends[tp])

        async def listen() -> None:
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                now = datetime.now(UTC)
                for records in batches.values():
                    for record in records:
                        incident = orjson.loads(record.value or b"")
                        if incident["updated_at"] in sent:
                            at = datetime.fromisoformat(incident["updated_at"])
                            latencies.append((now - at).total_seconds())

        listening = asyncio.create_task(listen())
        interval = 1.0 / args.rate
        start = time.perf_counter()
        for n in range(int(args.rate * args.seconds)):
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            message = make_signal(rng, accounts)
            sent.add(datetime.fromisoformat(message["received_at"]).isoformat())
            await produce(producer, bus.SIGNALS, message)
        await asyncio.sleep(2.0)
        listening.cancel()
    finally:
        await consumer.stop()
    return latencies


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--rate", type=float, default=1_000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    result = asyncio.run(bench(args))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
