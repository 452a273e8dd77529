"""Real PostgreSQL and Kafka-protocol broker for the integration tests.

``ARC_TEST_DATABASE_URL`` / ``ARC_TEST_KAFKA_BOOTSTRAP`` name servers to use
instead (the database URL's role needs CREATEDB: each test gets a database of
its own); otherwise the embedded ones are started once per session in a
temporary directory and removed afterwards. Nothing here touches a server that
merely happens to run on this machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from arc.embedded import EmbeddedBroker, EmbeddedPostgres


@pytest.fixture(scope="session")
def scratch_dir() -> Iterator[Path]:
    """A directory for embedded servers' data, removed after the session.

    Not pytest's tmp_path: that lives under a 0700 directory, which the
    unprivileged PostgreSQL user could not traverse when the tests run as root.
    """
    path = Path(tempfile.mkdtemp(prefix="arc-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(scratch_dir: Path) -> Iterator[str]:
    """DSN of a PostgreSQL superuser-ish role (CREATEDB) for the whole session."""
    given = os.environ.get("ARC_TEST_DATABASE_URL")
    if given:
        yield given
        return
    with EmbeddedPostgres(scratch_dir / "postgres") as server:
        yield server.dsn().get_secret_value()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a Kafka-protocol broker for the whole session."""
    given = os.environ.get("ARC_TEST_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest_asyncio.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    """DSN of a fresh, empty database, dropped after the test."""
    name = f"arc_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def topic_prefix() -> str:
    """A prefix that keeps a test's topics apart from every other test's (and run's)."""
    return f"test.{uuid.uuid4().hex[:12]}."
