"""Real PostgreSQL and Kafka-protocol broker for the integration tests.

``ARC_TEST_DATABASE_URL`` / ``ARC_TEST_KAFKA_BOOTSTRAP`` name servers to use
instead (the database URL's role needs CREATEDB: each test gets a database of
its own); otherwise the embedded ones are started once per session in a
temporary directory and removed afterwards. Nothing here touches a server that
merely happens to run on this machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
from pydantic import SecretStr

from arc import db
from arc.embedded import EmbeddedBroker, EmbeddedPostgres
from arc.runtime import APP_ROLE, with_credentials


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


@dataclass
class Databases:
    """A migrated database, as its owner and as the services' role sees it."""

    owner: asyncpg.Connection[asyncpg.Record]  # the superuser that migrated
    app: asyncpg.Connection[asyncpg.Record]  # arc_app
    app_dsn: str


@pytest_asyncio.fixture
async def dbs(database_url: str) -> AsyncIterator[Databases]:
    """``database_url`` migrated, with ``arc_app`` allowed to log in."""
    owner = await asyncpg.connect(database_url, timeout=10)
    await db.migrate(conn=owner)
    password = secrets.token_urlsafe(16)
    # A utility statement takes no parameters; the password is URL-safe base64.
    await owner.execute(f"ALTER ROLE {APP_ROLE} LOGIN PASSWORD '{password}'")
    app_dsn = with_credentials(SecretStr(database_url), APP_ROLE, password).get_secret_value()
    app = await asyncpg.connect(app_dsn, timeout=10)
    try:
        yield Databases(owner, app, app_dsn)
    finally:
        await app.close()
        await owner.close()


@pytest.fixture
def topic_prefix() -> str:
    """A prefix that keeps a test's topics apart from every other test's (and run's)."""
    return f"test.{uuid.uuid4().hex[:12]}."
