"""The embedded PostgreSQL and broker: data kept across restarts, bounded failures."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

import asyncpg
import pytest

from arc.embedded import EmbeddedBroker, EmbeddedPostgres, EmbeddedServiceError
from arc.embedded.broker import kafka_answers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def _query(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.mark.asyncio
async def test_embedded_postgres_keeps_data_across_stop_and_start(scratch_dir: Path) -> None:
    directory = scratch_dir / "restart"
    async with EmbeddedPostgres(directory) as server:
        dsn = server.dsn().get_secret_value()
        # The password is in the DSN, but not where a log line would show it.
        assert server.display_dsn() == f"postgresql://postgres:***@127.0.0.1:{server.port}/arc"
        assert repr(server.dsn()) == "SecretStr('**********')"
        await _execute(dsn, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here')")
        # One data directory, one server: a second owner is refused at once.
        with pytest.raises(EmbeddedServiceError, match="another process"):
            EmbeddedPostgres(directory).start()
    assert not server.running

    # A port given explicitly and taken is reported, not retried elsewhere.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(EmbeddedServiceError, match=f"127.0.0.1:{port}: address in use"):
            await EmbeddedPostgres(directory, port=port).__aenter__()

    async with EmbeddedPostgres(directory) as again:
        assert await _query(again.dsn().get_secret_value(), "SELECT note FROM kept") == (
            "still here"
        )
        # Password authentication, TCP on loopback only, no Unix socket.
        settings = await _query(
            again.dsn().get_secret_value(),
            "SELECT current_setting('listen_addresses') || ' ' "
            "|| current_setting('unix_socket_directories') || '|' "
            "|| current_setting('password_encryption')",
        )
        assert settings == "127.0.0.1 |scram-sha-256"
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(
                f"postgresql://postgres:wrong@127.0.0.1:{again.port}/arc", timeout=10
            )


def test_embedded_broker_answers_and_stops() -> None:
    with EmbeddedBroker() as broker:
        host, port = broker.bootstrap.split(":")
        assert host == "127.0.0.1"
        assert kafka_answers(host, int(port), timeout=1)
    assert not kafka_answers(host, int(port), timeout=1)
    assert not broker.running


def test_a_discarded_broker_is_killed_at_once() -> None:
    """What arc up does to a broker whose log is stored (arc.up._new_broker)."""
    broker = EmbeddedBroker()
    broker.start()
    process = broker._process
    assert process is not None
    broker.stop(discard=True)
    assert process.returncode == -signal.SIGKILL  # not asked to stop first
    assert not broker.running


def test_a_broker_port_that_is_taken_is_reported() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        broker = EmbeddedBroker(port=port)
        with pytest.raises(EmbeddedServiceError, match=f"127.0.0.1:{port}: address in use"):
            broker.start()
        assert not broker.running


def test_a_broker_that_exits_at_once_is_reported() -> None:
    started = time.monotonic()
    with pytest.raises(EmbeddedServiceError, match=r"Tansu\) exited with status 1"):
        EmbeddedBroker(binary=Path("/bin/false"), start_timeout=5).start()
    assert time.monotonic() - started < 3


def test_a_broker_that_never_answers_fails_within_its_start_timeout(tmp_path: Path) -> None:
    mute = tmp_path / "mute-broker"
    mute.write_text("#!/bin/sh\nexec sleep 60\n")
    mute.chmod(0o755)
    broker = EmbeddedBroker(binary=mute, start_timeout=1)
    started = time.monotonic()
    with pytest.raises(EmbeddedServiceError, match=r"Tansu\) did not answer .* within 1s"):
        broker.start()
    assert time.monotonic() - started < 3
    assert not broker.running  # the mute process was killed, not left behind


@pytest.mark.asyncio
async def test_cancelling_an_async_start_leaves_no_server() -> None:
    broker = EmbeddedBroker()
    task = asyncio.create_task(broker.__aenter__())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not broker.running
