"""Console benchmark: signal→console latency, as a logged-in operator's live queue sees it.

An operator logs in over HTTP and opens the live queue's stream
(``/api/queue/stream``, the server-sent events the page reads); for each
incident change a signal caused, latency = when the event reached the
client − the signal's ``received_at`` (the receiver's clock). Two modes:

- ``--mode harness`` (default): the whole centre, ``arc up`` in a scratch
  directory, and the panel simulator (``loadtest/simulator.py``) sending
  DC-09 frames over TCP at ``--rate`` per second from ``--panels`` panels,
  each waiting for its ACK: the receiver, the log writer and the
  dispatcher all load the machine as they do in service;
- ``--mode topic``: only ``arc dispatcher`` and ``arc console`` (own
  processes), the signals put on ``arc.signals`` directly: the console and
  the dispatcher alone.

The reference, in the same run and for the same signals: a bare consumer of
``arc.incidents`` (what the console itself reads). The difference is what the
console adds: its consumer, the fan-out and the HTTP stream.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from argon2 import PasswordHasher

from arc import bus, db
from arc.auth import service as users
from arc.auth.models import Role
from loadtest import simulator
from loadtest.dispatch_bench import make_signal, produce, scratch_centre, start_service
from loadtest.receive_bench import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent

PASSWORD = "Load-Operator-Passphrase-1"  # noqa: S105 - a scratch database's user
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # one login, not measured


def _percentiles(samples: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(samples)
    if not ordered:
        return {"samples": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "samples": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


Sent = set[str] | datetime  # the signals' received_at, or (harness) the run's start


def _caused(change: dict[str, object], sent: Sent) -> bool:
    """Whether a signal of this run caused ``change`` (its ``updated_at`` is that signal's)."""
    at = change.get("updated_at")
    if not isinstance(at, str):  # the stream's hello, not a change
        return False
    if isinstance(sent, datetime):
        return datetime.fromisoformat(at) >= sent
    return at in sent


async def _sse(
    client: httpx.AsyncClient, sent: Sent, out: list[float], ready: asyncio.Event
) -> None:
    """Read the live queue as the page does; time each change a sent signal caused."""
    async with client.stream("GET", "/api/queue/stream", timeout=None) as stream:
        if stream.status_code != 200:
            raise RuntimeError(f"stream refused: {stream.status_code}")
        async for line in stream.aiter_lines():
            if line == "event: hello":
                ready.set()
            elif line.startswith("data: "):
                now = datetime.now(UTC)
                change = orjson.loads(line[6:])
                if _caused(change, sent):
                    out.append((now - datetime.fromisoformat(change["updated_at"])).total_seconds())


def _stop_listeners(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the listeners; one that died before is an error, not a quiet gap in the numbers."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise RuntimeError("a listener failed") from task.exception()
        task.cancel()


async def _topic(consumer: bus.Consumer, sent: Sent, out: list[float]) -> None:
    """The reference: the same changes read straight off ``arc.incidents``."""
    while True:
        batches = await consumer.getmany(timeout_ms=100)
        now = datetime.now(UTC)
        for records in batches.values():
            for record in records:
                change = orjson.loads(record.value or b"")
                if _caused(change, sent):
                    out.append((now - datetime.fromisoformat(change["updated_at"])).total_seconds())


async def _reference(bootstrap: str) -> bus.Consumer:
    """A bare consumer of ``arc.incidents`` from its end, started."""
    reference = bus.make_consumer(bootstrap, group_id=None, client_id="bench-reference")
    await reference.start()
    await reference.topics()
    parts = [
        bus.TopicPartition(bus.INCIDENTS, n)
        for n in reference.partitions_for_topic(bus.INCIDENTS) or ()
    ]
    reference.assign(parts)
    await reference.seek_to_end(*parts)
    for tp in parts:
        await reference.position(tp)
    return reference


async def _arc(env: dict[str, str], *args: str, stdin: bytes | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "arc.cli", *args, cwd=ROOT, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    async with asyncio.timeout(120):
        await proc.communicate(stdin)
    if proc.returncode != 0:
        raise RuntimeError(f"arc {' '.join(args)} failed ({proc.returncode})")


async def harness(args: argparse.Namespace) -> dict[str, object]:
    """The whole centre under the panel simulator, an operator's stream open."""
    data = Path(tempfile.mkdtemp(prefix="arc-console-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARC_")}
    env["ARC_DATA_DIR"] = str(data)
    config = simulator.SimulatorConfig(
        port=1,
        panels=args.panels,
        rate=args.rate,
        seconds=args.seconds,
        seed=11,
        account_prefix="C",
    )
    rows = ["account,name"] + [f"{a},bench panel" for a in config.accounts()]
    (data / "accounts.csv").write_text("\n".join(rows) + "\n")
    console_lat: list[float] = []
    topic_lat: list[float] = []
    try:
        await _arc(
            env, "account", "import", str(data / "accounts.csv"), "--staffing-override", "load test"
        )
        await _arc(
            env, "user", "add", "bench", "--role", "operator", "--password-stdin",
            stdin=PASSWORD.encode() + b"\n",
        )  # fmt: skip
        up = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "arc.cli", "up", "--dc09-port", "0", "--http-port", "0",
            cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert up.stdout is not None  # noqa: S101 - created with a pipe
        lines: dict[str, str] = {}
        try:
            async with asyncio.timeout(120):
                while not (line := (await up.stdout.readline()).decode()).startswith("arc: ready"):
                    if not line:
                        raise RuntimeError("arc up exited while starting")
                    name, _, value = line.strip().partition(": ")
                    lines[name] = value
            port = int(lines["dc09"].split()[0].rsplit(":", 1)[1])
            config = simulator.SimulatorConfig(
                port=port,
                panels=args.panels,
                rate=args.rate,
                seconds=args.seconds,
                seed=11,
                account_prefix="C",
            )
            reference = await _reference(lines["broker"])
            client = httpx.AsyncClient(base_url=lines["http"], timeout=30)
            tasks: list[asyncio.Task[None]] = []
            try:
                login = await client.post(
                    "/login", data={"username": "bench", "password": PASSWORD}
                )
                if login.status_code != 303:
                    raise RuntimeError(f"login refused: {login.status_code}")
                began = datetime.now(UTC)
                ready = asyncio.Event()
                tasks = [
                    asyncio.create_task(_sse(client, began, console_lat, ready)),
                    asyncio.create_task(_topic(reference, began, topic_lat)),
                ]
                async with asyncio.timeout(30):
                    await ready.wait()
                result = await simulator.run(config)
                await asyncio.sleep(3.0)
            finally:
                _stop_listeners(tasks)
                await asyncio.gather(*tasks, return_exceptions=True)
                await client.aclose()
                await reference.stop()
        finally:
            up.terminate()
            async with asyncio.timeout(90):
                await up.wait()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return _report(
        args,
        console_lat,
        topic_lat,
        mode="harness",
        achieved=result.acked_per_second,
        extra={
            "panels": args.panels,
            "acked": result.acked,
            "failed": result.failed,
            "ack_p99_ms": round(result.p99_ms, 1),
        },
    )


def _report(
    args: argparse.Namespace,
    console_lat: list[float],
    topic_lat: list[float],
    *,
    mode: str,
    achieved: float,
    extra: dict[str, object],
) -> dict[str, object]:
    console_stats = _percentiles(console_lat)
    topic_stats = _percentiles(topic_lat)
    ratio = None
    if console_stats["p99_ms"] and topic_stats["p99_ms"]:
        ratio = round(float(console_stats["p99_ms"]) / float(topic_stats["p99_ms"]), 2)
    return {
        "mode": mode,
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "achieved_rate_per_s": round(achieved),
        **extra,
        "console": console_stats,
        "reference_arc_incidents": topic_stats,
        "p99_ratio_console_to_reference": ratio,
    }


async def bench(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(11)
    accounts = [f"{n:04X}" for n in range(0x2000, 0x2000 + args.accounts)]
    console_lat: list[float] = []
    topic_lat: list[float] = []
    async with scratch_centre("arc-console-bench-", accounts) as (admin_dsn, bootstrap, env):
        conn = await db.connect(admin_dsn)
        try:
            await users.add_user(
                conn=conn,
                username="bench",
                display_name="bench",
                role=Role.OPERATOR,
                password=PASSWORD,
                actor="console_bench",
                hasher=FAST,
            )
        finally:
            await conn.close()
        env = {**env, "ARC_HTTP_PORT": "0"}
        dispatcher, _ = await start_service(
            env, "dispatcher", "--all-partitions", ready=b"dispatcher:"
        )
        console, line = await start_service(env, "console", ready=b"http:")
        url = line.decode().split()[1]
        producer = bus.make_producer(bootstrap, linger_ms=5)
        reference = await _reference(bootstrap)
        await producer.start()
        client = httpx.AsyncClient(base_url=url, timeout=30)
        tasks: list[asyncio.Task[None]] = []
        try:
            login = await client.post("/login", data={"username": "bench", "password": PASSWORD})
            if login.status_code != 303:
                raise RuntimeError(f"login refused: {login.status_code}")
            sent: set[str] = set()
            ready = asyncio.Event()
            tasks = [
                asyncio.create_task(_sse(client, sent, console_lat, ready)),
                asyncio.create_task(_topic(reference, sent, topic_lat)),
            ]
            async with asyncio.timeout(30):
                await ready.wait()
            cpu0 = cpu_seconds(console.pid)
            interval = 1.0 / args.rate
            start = time.perf_counter()
            for n in range(int(args.rate * args.seconds)):
                delay = start + n * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                message = make_signal(rng, accounts)
                sent.add(datetime.fromisoformat(message["received_at"]).isoformat())
                await produce(producer, bus.SIGNALS, message)
            sending = time.perf_counter() - start
            await asyncio.sleep(3.0)
            cpu = cpu_seconds(console.pid) - cpu0
        finally:
            _stop_listeners(tasks)
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.aclose()
            await reference.stop()
            await producer.stop()
            for proc in (console, dispatcher):
                proc.terminate()
                async with asyncio.timeout(30):
                    await proc.wait()
    return _report(
        args,
        console_lat,
        topic_lat,
        mode="topic",
        achieved=args.rate * args.seconds / sending,
        extra={"accounts": args.accounts, "console_cpu_share": round(cpu / (sending + 3.0), 3)},
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("harness", "topic"), default="harness")
    parser.add_argument("--panels", type=int, default=200, help="harness: simulated panels")
    parser.add_argument("--accounts", type=int, default=500, help="topic: accounts")
    parser.add_argument("--rate", type=float, default=1_000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    result = asyncio.run(harness(args) if args.mode == "harness" else bench(args))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
