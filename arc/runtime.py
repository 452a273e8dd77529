"""Where a command finds the centre's database, whether or not ``arc up`` is running.

Administrative commands (``arc account``, ``arc verify``, ``arc digest``) work
on the same database as the running centre: the configured one
(``ARC_DATABASE_ADMIN_URL`` or ``ARC_DATABASE_URL``), else the embedded
PostgreSQL under ``ARC_DATA_DIR``. When ``arc up`` runs, its server is used
(its port is in ``postmaster.pid``, its password in the data directory);
otherwise the command starts the embedded server for its own duration. The
schema is migrated first in every case, so a command on a new data directory
finds its tables.

The services connect as ``arc_app`` (INSERT and SELECT on the logs, nothing
more), and the console's configuration writes as ``arc_config`` (migration
0010); with the embedded server each role logs in with a password generated
once and kept beside the superuser's.
"""

from __future__ import annotations

import asyncio
import fcntl
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TypeAlias
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
from pydantic import SecretStr

from arc import db
from arc.config import Settings
from arc.embedded import EmbeddedPostgres
from arc.embedded._process import LOOPBACK, EmbeddedServiceError, open_private
from arc.embedded.postgres import SUPERUSER

APP_ROLE = "arc_app"
CONFIG_ROLE = "arc_config"  # the console's configuration writes (migration 0010)


def postgres_directory(settings: Settings) -> Path:
    """The embedded PostgreSQL's directory under the data directory."""
    return (settings.data_dir / "postgres").resolve()


def running_embedded_dsn(directory: Path) -> SecretStr | None:
    """The superuser DSN of the embedded server another process runs on ``directory``."""
    lock_path = directory / ".lock"
    if not lock_path.exists():
        return None
    with open_private(lock_path) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: a live process runs the server
        else:
            fcntl.flock(lock, fcntl.LOCK_UN)
            return None
    try:
        # postmaster.pid: pid, data directory, start time, port, ... (one per line)
        lines = (directory / "data" / "postmaster.pid").read_text().splitlines()
        port = int(lines[3])
        password = (directory / "password").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    return SecretStr(f"postgresql://{SUPERUSER}:{quote(password, safe='')}@{LOOPBACK}:{port}/arc")


@asynccontextmanager
async def admin_database(settings: Settings) -> AsyncIterator[SecretStr]:
    """Yield the owner's DSN of the centre's database, migrated, for one command."""
    dsn = settings.admin_database_url
    if dsn is not None:
        await migrate(dsn)
        yield dsn
        return
    directory = postgres_directory(settings)
    running = running_embedded_dsn(directory)
    if running is not None:
        await migrate(running)
        yield running
        return
    server = EmbeddedPostgres(directory)
    await asyncio.to_thread(server.start)
    try:
        await migrate(server.dsn())
        yield server.dsn()
    finally:
        await asyncio.to_thread(server.stop)


# What admin_connection gives: ``async with`` it for the connection.
AdminConnection: TypeAlias = "AbstractAsyncContextManager[asyncpg.Connection[asyncpg.Record]]"


class DatabaseUnavailable(Exception):
    """The centre's database could not be opened or migrated (the message has no DSN)."""


@asynccontextmanager
async def admin_connection(
    settings: Settings, *, application_name: str
) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """One owner's connection to the centre's database, migrated, for one command."""
    try:
        async with admin_database(settings) as dsn:
            conn = await db.connect(dsn, application_name=application_name)
            try:
                yield conn
            finally:
                await conn.close()
    # The DSN is never in these messages: it may carry a password.
    except (OSError, TimeoutError, asyncpg.PostgresConnectionError, EmbeddedServiceError) as error:
        raise DatabaseUnavailable(f"cannot open the database: {error}") from None
    except db.MigrationError as error:
        raise DatabaseUnavailable(f"the database schema: {error}") from None


async def migrate(dsn: SecretStr) -> None:
    """Apply the pending migrations with the owner's DSN."""
    conn = await db.connect(dsn)
    try:
        await db.migrate(conn=conn)
    finally:
        await conn.close()


async def enable_login(
    admin_dsn: SecretStr, directory: Path, *, role: str, stored_in: str
) -> SecretStr:
    """Let ``role`` (``APP_ROLE``, ``CONFIG_ROLE``) log in to the embedded server; return its DSN.

    Its password is generated on first use and kept in the file ``stored_in``
    of ``directory`` (mode 0600).
    """
    path = directory / stored_in
    if path.exists():
        password = path.read_text().strip()
    else:
        password = secrets.token_urlsafe(24)
        with open_private(path) as handle:
            handle.write(password.encode() + b"\n")
    conn = await db.connect(admin_dsn)
    try:
        # A utility statement takes no parameters; the password is URL-safe base64
        # and the role one of the constants above, quoted as an identifier anyway.
        await conn.execute(f"ALTER ROLE \"{role}\" LOGIN PASSWORD '{password}'")
    finally:
        await conn.close()
    return with_credentials(admin_dsn, role, password)


def with_credentials(dsn: SecretStr, user: str, password: str) -> SecretStr:
    """The same server and database as ``dsn``, logged in as ``user``."""
    parts = urlsplit(dsn.get_secret_value())
    host = parts.hostname or LOOPBACK
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return SecretStr(urlunsplit(parts._replace(netloc=netloc)))
