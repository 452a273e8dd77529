"""PostgreSQL access: the asyncpg pool and the migrations runner.

Migrations are plain SQL files in ``migrations/`` named ``NNNN_name.sql``,
applied in order of their number, each in its own transaction together with
its row in ``schema_migrations`` (number, name, SHA-256 of the file). The
runner creates that table itself, so migration 0001 is the first piece of the
real schema. Rules it enforces, because a schema that silently differs from
the files is worse than a refusal to start:

- an applied file must not change (its checksum is compared) or disappear;
- a new file must be numbered after every applied one;
- several processes may start at once: a session advisory lock lets one of
  them migrate while the others wait, then find nothing left to do.

Statements that cannot run inside a transaction (``CREATE INDEX
CONCURRENTLY``, ``ALTER TYPE ... ADD VALUE`` before PostgreSQL 12) do not
belong in these files. A hand-rolled runner rather than a library: the
well-kept ones (yoyo, alembic) drive a synchronous DB-API driver, and this is
about sixty lines on the asyncpg connection we already have.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import asyncpg
from pydantic import SecretStr

logger = logging.getLogger(__name__)

# The repository's migrations/ (ARC runs from its source tree or an editable install).
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

_FILENAME = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql")
# pg_advisory_lock key for migrations: "ARC_MIGR" as a big-endian bigint.
_LOCK_KEY = int.from_bytes(b"ARC_MIGR", "big")

# asyncpg's classes are generic in its stubs only: quoted, so nothing subscripts them at run time.
Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
# A connection of its own or one lent by a pool: the service functions take either.
Connection: TypeAlias = (
    "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
)


# The log writer announces committed signal ids here (NOTIFY, delivered at
# commit); receivers waiting to ACK listen. migrations/0003 names it too.
DURABLE_CHANNEL = "arc_durable"

# What a lost or refusing database raises: a service waits and tries again.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


class MigrationError(RuntimeError):
    """The migrations on disk and those recorded in the database disagree."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str
    checksum: str  # SHA-256 of the file, hex

    @property
    def filename(self) -> str:
        """The file's name, as it is referred to in errors."""
        return f"{self.version:04d}_{self.name}.sql"


async def create_pool(
    dsn: SecretStr | str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = 10.0,
    command_timeout: float | None = 30.0,
    application_name: str = "arc",
    session_reset: bool = True,
) -> Pool:
    """Open an asyncpg pool; fail within ``connect_timeout`` if the server does not answer.

    ``session_reset=False`` skips the reset query a released connection
    otherwise runs (``RESET ALL``, ``UNLISTEN *``, ...): one round trip per
    batch on the log writer's ACK path. Only for a service whose pooled
    connections keep no session state (no SET, LISTEN, advisory lock or
    cursor); an open transaction is still rolled back.
    """
    secret = dsn.get_secret_value() if isinstance(dsn, SecretStr) else dsn
    return await asyncpg.create_pool(
        secret,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout,
        command_timeout=command_timeout,
        server_settings={"application_name": application_name},
        reset=None if session_reset else _keep_session,
    )


async def _keep_session(_conn: Connection) -> None:
    """A pool's reset that sends nothing (see ``create_pool``)."""


async def connect(
    dsn: SecretStr | str, *, connect_timeout: float = 10.0, application_name: str = "arc"
) -> asyncpg.Connection[asyncpg.Record]:
    """Open one connection (for a command or a LISTEN); fail within ``connect_timeout``."""
    secret = dsn.get_secret_value() if isinstance(dsn, SecretStr) else dsn
    conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(
        secret, timeout=connect_timeout, server_settings={"application_name": application_name}
    )
    return conn


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Read the migration files of ``directory``, ordered by number."""
    if not directory.is_dir():
        raise MigrationError(f"no migrations directory at {directory}")
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"{path}: a migration is named NNNN_lower_case_name.sql")
        version = int(match["version"])
        if version in migrations:
            raise MigrationError(
                f"{path}: number {version:04d} is also used by {migrations[version].filename}"
            )
        data = path.read_bytes()
        migrations[version] = Migration(
            version=version,
            name=match["name"],
            sql=data.decode(),
            checksum=hashlib.sha256(data).hexdigest(),
        )
    return [migrations[v] for v in sorted(migrations)]


async def migrate(
    *,
    conn: Connection,
    directory: Path = MIGRATIONS_DIR,
    lock_timeout: float = 60.0,
) -> list[Migration]:
    """Apply the pending migrations of ``directory``; return those applied now."""
    migrations = load_migrations(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY, timeout=lock_timeout)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        pending = _pending(migrations, {r["version"]: (r["name"], r["checksum"]) for r in rows})
        for migration in pending:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            logger.info("applied migration %s", migration.filename)
        return pending
    finally:
        if not conn.is_closed():  # a lost connection has released the lock already
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


def _pending(migrations: list[Migration], applied: dict[int, tuple[str, str]]) -> list[Migration]:
    """Check the applied migrations against the files; return the files still to apply."""
    on_disk = {m.version: m for m in migrations}
    for version, (name, checksum) in sorted(applied.items()):
        migration = on_disk.get(version)
        if migration is None:
            raise MigrationError(
                f"migration {version:04d}_{name}.sql is applied in the database but missing "
                "from the migrations directory (is this an older ARC?)"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {migration.filename} was changed after it was applied; "
                "add a new migration instead"
            )
    newest = max(applied, default=0)
    pending = [m for m in migrations if m.version not in applied]
    for migration in pending:
        if migration.version < newest:
            raise MigrationError(
                f"migration {migration.filename} is numbered before the newest applied one "
                f"({newest:04d}); renumber it"
            )
    return pending
