"""Receive-path load bench: the panel simulator against a receiver, with its CPU use.

    python -m loadtest.receive_bench --target pysiaalarm --panels 50 --seconds 10 [--aes]
    python -m loadtest.receive_bench --target 127.0.0.1:9000 --server-pid 1234 ...

``--target pysiaalarm`` starts ``loadtest.pysia_reference`` as a subprocess on
a free port; ``HOST:PORT`` uses a receiver that is already running (on
loopback only). The result is the simulator's JSON plus the CPU time the
server process tree used during the run, from ``/proc/PID/stat``
(utime + stime), as a percentage of one core.

Adding a target: write an async context manager like ``pysiaalarm_target``
that starts the receiver, yields its ``Endpoint`` and stops it, and put it in
``TARGETS`` (see the note there for ``arc``).

Every wait is bounded: the server's start, the run (the simulator's hard
limit) and the server's stop (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from loadtest.simulator import (
    LedgerEntry,
    SimulatorConfig,
    SimulatorResult,
    add_arguments,
    check_loopback,
    config_from_args,
    format_table,
    run,
    write_ledger,
)

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 20.0  # for a server to say it listens
STOP_SECONDS = 5.0  # for it to exit after SIGTERM, before SIGKILL
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Endpoint:
    """Where a receiver listens, and the process whose CPU time is counted."""

    host: str
    port: int
    udp_port: int | None = None
    pid: int | None = None
    # For a receiver that stores what it ACKs: how many ACKed messages it kept.
    ledger_check: Callable[[list[LedgerEntry]], Awaitable[LedgerCheck]] | None = None


@dataclass(frozen=True)
class LedgerCheck:
    """The simulator's ACKed messages against the rows the receiver stored."""

    acked: int
    stored_once: int
    missing: int  # ACKed but not stored: a lost alarm
    duplicated: int  # stored more than once
    rows: int  # all rows in the log (may exceed acked: a stored message whose ACK was lost)


# A target: given the simulator config (panels, accounts, key), start the
# receiver, yield where it listens, stop it on exit.
Target = Callable[[SimulatorConfig], AbstractAsyncContextManager[Endpoint]]


@dataclass
class BenchReport:
    target: str
    result: SimulatorResult
    server_pid: int | None
    server_cpu_seconds: float | None
    server_cpu_percent: float | None  # of one core, over the simulator's run
    ledger: LedgerCheck | None
    simulator_cpu_percent: float  # this process, over the same run
    wall_seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "simulator": self.result.summary(),
            "server": {
                "pid": self.server_pid,
                "cpu_seconds": self.server_cpu_seconds,
                "cpu_percent": self.server_cpu_percent,
            },
            "simulator_cpu_percent": self.simulator_cpu_percent,
            "wall_seconds": self.wall_seconds,
            "ledger": None if self.ledger is None else asdict(self.ledger),
        }


async def measure(
    host: str, port: int, config: SimulatorConfig, *, udp_port: int | None = None
) -> SimulatorResult:
    """Run the simulator against ``host:port`` with the rest of ``config``."""
    return await run(replace(config, host=host, port=port, udp_port=udp_port))


# -- CPU accounting ---------------------------------------------------------


def stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    return text[text.rindex(")") + 2 :].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (``arc up`` runs PostgreSQL and a broker)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:  # bounded: each pid appears once in the parent map
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid``'s process tree so far.

    Children that exited are not counted unless reaped (then they are in the
    parent's cutime/cstime, which is included).
    """
    ticks = 0
    for member in process_tree(pid):
        fields = stat_fields(member)
        if fields is not None:
            # utime, stime, cutime, cstime: fields 14-17 of proc(5), 11-14 here.
            ticks += sum(int(v) for v in fields[11:15])
    return ticks / CLK_TCK


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


# -- targets ----------------------------------------------------------------


async def _read_ready(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    """The server's one-line JSON announcement, within START_SECONDS."""
    assert proc.stdout is not None  # noqa: S101 - created with stdout=PIPE
    async with asyncio.timeout(START_SECONDS):
        line = await proc.stdout.readline()
    if not line:
        raise RuntimeError(f"server exited before it listened (exit code {await proc.wait()})")
    ready: dict[str, Any] = json.loads(line)
    return ready


async def _stop(proc: asyncio.subprocess.Process, *, within: float = STOP_SECONDS) -> None:
    """SIGTERM, then SIGKILL after ``within`` seconds; reap it and close its pipes."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(within):
            await proc.communicate()
    except TimeoutError:
        proc.kill()
        async with asyncio.timeout(STOP_SECONDS):
            await proc.communicate()


@asynccontextmanager
async def pysiaalarm_target(config: SimulatorConfig) -> AsyncIterator[Endpoint]:
    """pysiaalarm's asyncio receiver in a subprocess, TCP and UDP on one free port."""
    args = [
        sys.executable,
        "-m",
        "loadtest.pysia_reference",
        "--host",
        config.host,
        "--port",
        "0",
        "--panels",
        str(config.panels),
        "--account-prefix",
        config.account_prefix,
        # In case this process dies without stopping it.
        "--max-seconds",
        str(round(config.hard_limit + START_SECONDS + 30)),
    ]
    if config.aes:
        args += ["--aes", "--key", config.key]
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE
    )
    try:
        ready = await _read_ready(proc)
        yield Endpoint(config.host, int(ready["tcp_port"]), int(ready["udp_port"]), proc.pid)
    finally:
        await _stop(proc)


def external_target(spec: str, pid: int | None) -> Target:
    """A receiver already listening at ``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""
    host, sep, port_text = spec.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"target {spec!r} is neither a known target nor HOST:PORT")
    host = check_loopback(host.removeprefix("[").removesuffix("]"))
    endpoint = Endpoint(host, int(port_text), None, pid)

    @asynccontextmanager
    async def target(config: SimulatorConfig) -> AsyncIterator[Endpoint]:
        yield endpoint

    return target


@asynccontextmanager
async def arc_target(config: SimulatorConfig) -> AsyncIterator[Endpoint]:
    """``arc up`` in a scratch data directory, the simulator's accounts imported first.

    The embedded PostgreSQL and broker are started by ``arc up`` itself, so the
    CPU of the whole centre (receiver, log writer, database, broker) is counted.
    ``ARC_ACK_POLICY`` (default ``database``, as ``arc up`` chooses with the
    embedded broker), ``ARC_BROKER_LOG_LIMIT`` and ``ARC_BROKER_LOG_INTERVAL`` are
    taken from this process's environment; no other ``ARC_*`` variable.
    """
    data = Path(tempfile.mkdtemp(prefix="arc-bench-"))
    passed = ("ARC_ACK_POLICY", "ARC_BROKER_LOG_LIMIT", "ARC_BROKER_LOG_INTERVAL")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARC_") or k in passed}
    env["ARC_DATA_DIR"] = str(data)
    key = f"ascii:{config.key}" if config.aes and ":" not in config.key else config.key
    rows = ["account,name,key"] + [
        f"{account},bench panel,{key if config.aes else ''}" for account in config.accounts()
    ]
    accounts_csv = data / "accounts.csv"
    accounts_csv.write_text("\n".join(rows) + "\n")
    arc = [sys.executable, "-m", "arc.cli"]
    try:
        importer = await asyncio.create_subprocess_exec(
            *arc,
            "account",
            "import",
            str(accounts_csv),
            # A bench centre has panels, not staff: onboarding it is no real service.
            "--staffing-override",
            "load test",
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(START_SECONDS * 3):
            if await importer.wait() != 0:
                raise RuntimeError("arc account import failed")
        proc = await asyncio.create_subprocess_exec(
            *arc,
            "up",
            "--dc09-port",
            "0",
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            port = await _read_arc_ready(proc)
            yield Endpoint(config.host, port, port, proc.pid, partial(_check_arc_log, data))
        finally:
            await _stop(proc, within=STOP_SECONDS * 4)
    finally:
        shutil.rmtree(data, ignore_errors=True)


async def _check_arc_log(data: Path, ledger: list[LedgerEntry]) -> LedgerCheck:
    """Count each ACKed message in ``signal_log`` by (account, sequence, device time)."""
    from arc import db
    from arc.runtime import running_embedded_dsn

    dsn = running_embedded_dsn(data / "postgres")
    if dsn is None:
        raise RuntimeError("arc up's database is not running")
    conn = await db.connect(dsn)
    try:
        # Everything the log writer has: give it a moment to drain what it has
        # been sent (rows of messages whose ACK the simulator did not wait for).
        await asyncio.sleep(1.0)
        rows = await conn.fetch("SELECT account, sequence, device_time FROM signal_log")
    finally:
        await conn.close()
    stored = collections.Counter((r["account"], r["sequence"], r["device_time"]) for r in rows)
    counts = [
        stored[(e.account, e.sequence, datetime.fromisoformat(e.device_time))] for e in ledger
    ]
    return LedgerCheck(
        acked=len(ledger),
        stored_once=sum(1 for c in counts if c == 1),
        missing=sum(1 for c in counts if c == 0),
        duplicated=sum(1 for c in counts if c > 1),
        rows=len(rows),
    )


async def _read_arc_ready(proc: asyncio.subprocess.Process) -> int:
    """The DC-09 port ``arc up`` prints, once it says it is ready."""
    assert proc.stdout is not None  # noqa: S101 - created with stdout=PIPE
    port = None
    async with asyncio.timeout(START_SECONDS * 3):
        while True:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise RuntimeError(f"arc up exited before it was ready ({await proc.wait()})")
            if line.startswith("dc09: tcp://"):
                port = int(line.split()[1].rsplit(":", 1)[1])
            if line.startswith("arc: ready") and port is not None:
                return port


TARGETS: dict[str, Target] = {
    "pysiaalarm": pysiaalarm_target,
    "arc": arc_target,
}


def resolve_target(spec: str, pid: int | None = None) -> Target:
    return TARGETS.get(spec) or external_target(spec, pid)


async def bench(
    spec: str, config: SimulatorConfig, *, server_pid: int | None = None
) -> BenchReport:
    """Start the target, run the simulator against it, and account the server's CPU."""
    target = resolve_target(spec, server_pid)
    async with target(config) as endpoint:
        pid = endpoint.pid
        server_before = cpu_seconds(pid) if pid is not None else None
        own_before = _own_cpu()
        started = time.monotonic()
        result = await measure(endpoint.host, endpoint.port, config, udp_port=endpoint.udp_port)
        wall = time.monotonic() - started
        own = _own_cpu() - own_before
        server = None
        if pid is not None and server_before is not None:
            server = cpu_seconds(pid) - server_before
        ledger = None
        if endpoint.ledger_check is not None:
            ledger = await endpoint.ledger_check(result.ledger)
    return BenchReport(
        target=spec,
        result=result,
        server_pid=pid,
        server_cpu_seconds=None if server is None else round(server, 3),
        server_cpu_percent=None if server is None else round(100 * server / wall, 1),
        ledger=ledger,
        simulator_cpu_percent=round(100 * own / wall, 1),
        wall_seconds=round(wall, 3),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.receive_bench",
        description="Run the DC-09 panel simulator against a receiver and measure it.",
    )
    parser.add_argument(
        "--target", required=True, help=f"{' | '.join(TARGETS)} | HOST:PORT (loopback)"
    )
    parser.add_argument("--server-pid", type=int, help="for HOST:PORT: the process to account")
    add_arguments(parser, port_required=False)
    # pysiaalarm reads hexadecimal accounts only, and answers a frame without
    # an "R" field with "R" replaced by "None" (its issue #88), which panels
    # and the simulator refuse: send R0 and hex accounts so that every
    # target gets the same frames.
    parser.set_defaults(account_prefix="A", receiver="0")
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        resolve_target(args.target, args.server_pid)
    except ValueError as error:
        parser.error(str(error))
    report = asyncio.run(bench(args.target, config, server_pid=args.server_pid))
    if args.ledger is not None:
        write_ledger(args.ledger, report.result.ledger)
    if args.json:
        print(json.dumps(report.summary()))
    else:
        print(f"target {report.target}")
        print(format_table(report.result))
        if report.server_cpu_percent is not None:
            print(
                f"server CPU {report.server_cpu_percent:.1f}% of one core "
                f"({report.server_cpu_seconds:.2f} s), simulator CPU "
                f"{report.simulator_cpu_percent:.1f}%"
            )
        if report.ledger is not None:
            check = report.ledger
            print(
                f"ledger: {check.acked} ACKed, {check.stored_once} stored once, "
                f"{check.missing} missing, {check.duplicated} stored more than once"
            )
    return 0 if report.result.failed == 0 else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
