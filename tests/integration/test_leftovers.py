"""A process killed with SIGKILL leaves its embedded servers running; the next start copes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from arc.embedded import EmbeddedBroker, EmbeddedPostgres
from arc.embedded.broker import kafka_answers

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.timeout(60)]

OWNER = """
import sys, time
from pathlib import Path
from arc.embedded import EmbeddedBroker, EmbeddedPostgres
kind, path = sys.argv[1], Path(sys.argv[2])
if kind == "postgres":
    server = EmbeddedPostgres(path)
    server.start()
    print(server.pid, server.port, flush=True)
else:
    server = EmbeddedBroker(pid_file=path)
    server.start()
    print(server.pid, server.port, flush=True)
time.sleep(60)
"""


def start_owner_and_kill_it(kind: str, path: Path) -> tuple[int, int]:
    """Run a server in a child Python, SIGKILL that Python, return the server's pid and port."""
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, kind, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        if owner.stdout is not None:
            owner.stdout.close()
    pid, port = (int(x) for x in line.split())
    assert alive(pid)
    return pid, port


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and b"Z" not in _state(pid)


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1][:3]
    except OSError:
        return b"Z"


def wait_gone(pid: int, bound: float) -> None:
    deadline = time.monotonic() + bound
    while alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} still running after {bound}s"
        time.sleep(0.05)


async def _execute(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_a_leftover_postgres_is_stopped_and_its_data_kept(scratch_dir: Path) -> None:
    directory = scratch_dir / "leftover-postgres"
    with EmbeddedPostgres(directory) as first:
        asyncio.run(_execute(first.dsn().get_secret_value(), "CREATE TABLE kept AS SELECT 42 AS n"))
    old_pid, _ = start_owner_and_kill_it("postgres", directory)
    started = time.monotonic()
    with EmbeddedPostgres(directory) as server:
        assert time.monotonic() - started < 15
        assert not alive(old_pid)
        assert asyncio.run(_execute(server.dsn().get_secret_value(), "SELECT n FROM kept")) == 42


def test_a_leftover_broker_is_killed(scratch_dir: Path) -> None:
    pid_file = scratch_dir / "leftover-broker" / "broker.pid"
    old_pid, old_port = start_owner_and_kill_it("broker", pid_file)
    assert kafka_answers("127.0.0.1", old_port, timeout=1)
    with EmbeddedBroker(pid_file=pid_file) as broker:
        wait_gone(old_pid, 5)
        assert pid_file.read_text().strip() == str(broker.pid)
    assert not pid_file.exists()
