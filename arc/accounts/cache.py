"""The receiver's copy of the accounts: in memory, reloaded when the table changes.

Theory of operation. ``get`` is a dict lookup: the receive path never waits
for the database (ARCHITECTURE.md §6). One background task owns a dedicated
connection that LISTENs on ``arc_accounts`` (the table's trigger notifies at
every committed change) and reloads the whole table when told:

- LISTEN is issued before the load it guards, so a change committed between
  the two is seen by the load or announced after it, never lost;
- notifications are debounced: the first one of a burst starts a short wait,
  the others fall into it, and one reload follows;
- a timed reload every ``refresh_seconds`` is the safety net for a
  notification lost with a connection, and it notices a connection that died
  silently (its query fails or times out);
- when the connection is lost, the task reconnects with exponential backoff
  (with jitter, so that a restarted database is not hit by every receiver at
  once), LISTENs again and reloads, since notifications sent meanwhile are
  gone. Until then the last good accounts keep being served.

A reload decrypts only the rows that changed (``SettingsLoader``) and swaps
the dict in one assignment, so a lookup sees the old accounts or the new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping

import asyncpg
from pydantic import SecretStr

from arc import db
from arc.accounts.service import SettingsLoader
from arc.secrets import SecretBox
from protocols.dc09_receiver import AccountSettings, TimestampPolicy

logger = logging.getLogger(__name__)

CHANNEL = "arc_accounts"
# After these a connection is not trusted again; other errors (a refused query,
# keys that do not open) leave it up and the next notification or refresh retries.
_CONNECTION_ERRORS = (
    TimeoutError,
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
)


class AccountCache:
    """The accounts a receiver serves, kept in memory and in step with the database."""

    def __init__(
        self,
        *,
        box: SecretBox,
        default_policy: TimestampPolicy = TimestampPolicy(),  # noqa: B008 - frozen
        refresh_seconds: float = 60.0,
        debounce_seconds: float = 0.2,
        reconnect_min: float = 0.2,
        reconnect_max: float = 30.0,
        query_timeout: float = 30.0,
    ) -> None:
        self._loader = SettingsLoader(box, default_policy)
        self._accounts: dict[str, AccountSettings] = {}
        self._refresh = refresh_seconds
        self._debounce = debounce_seconds
        self._reconnect = (reconnect_min, reconnect_max)
        self._query_timeout = query_timeout
        self._dsn: SecretStr | str | None = None
        self._conn: asyncpg.Connection[asyncpg.Record] | None = None
        self._wake = asyncio.Event()
        # One query at a time on the connection: a caller's reload() and the task's.
        self._reload_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.reloads = 0  # completed reloads, the first included (for metrics and tests)
        self.reconnects = 0  # listening connections opened after the first

    def get(self, account: str) -> AccountSettings | None:
        """The settings of a served account, or None (the receiver's ``accounts`` lookup)."""
        return self._accounts.get(account)

    @property
    def accounts(self) -> Mapping[str, AccountSettings]:
        """The accounts served now (a snapshot: a reload replaces, never mutates, it)."""
        return self._accounts

    @property
    def connected(self) -> bool:
        """Whether the listening connection is up (notifications are being received)."""
        return self._conn is not None and not self._conn.is_closed()

    async def start(self, dsn: SecretStr | str) -> None:
        """Load every account and start following changes; raise if the first load fails."""
        if self._task is not None:
            raise RuntimeError("the account cache is started already")
        self._dsn = dsn
        await self._connect()  # a receiver without its accounts must not start
        self._task = asyncio.create_task(self._follow(), name="arc-account-cache")

    async def stop(self) -> None:
        """Stop following changes and close the connection; the accounts stay readable."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close()

    async def reload(self) -> None:
        """Reload now (the task also does on notification and every ``refresh_seconds``)."""
        async with self._reload_lock:
            conn = self._conn
            if conn is None or conn.is_closed():
                raise ConnectionError("the account cache has no database connection")
            async with asyncio.timeout(self._query_timeout):
                accounts = await self._loader.load(conn)
            self._accounts = accounts
            self.reloads += 1

    def _notified(self, *_: object) -> None:
        self._wake.set()

    def _lost(self, *_: object) -> None:
        self._wake.set()  # let the task notice at once instead of at the next refresh

    async def _connect(self) -> None:
        assert self._dsn is not None  # noqa: S101 - set by start()
        conn = await db.connect(self._dsn, application_name="arc-account-cache")
        try:
            conn.add_termination_listener(self._lost)
            await conn.add_listener(CHANNEL, self._notified)
            self._conn = conn
            self._wake.clear()  # what came before the load is in the load
            await self.reload()
        except BaseException:
            self._conn = None
            conn.terminate()
            raise

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                async with asyncio.timeout(5):
                    await conn.close()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()

    async def _follow(self) -> None:
        delay = self._reconnect[0]
        while True:
            if not self.connected:
                await self._close()
                try:
                    await self._connect()
                except Exception as error:  # any failure: keep serving, retry later
                    pause = delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
                    logger.warning(
                        "account cache: reconnecting failed (%s: %s); serving the %d accounts "
                        "loaded before, next try in %.1f s",
                        type(error).__name__,
                        error,
                        len(self._accounts),
                        pause,
                    )
                    await asyncio.sleep(pause)
                    delay = min(delay * 2, self._reconnect[1])
                    continue
                delay = self._reconnect[0]
                self.reconnects += 1
                logger.info("account cache: reconnected, %d accounts", len(self._accounts))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._refresh):
                    await self._wake.wait()
            if not self.connected:
                continue
            # A burst of notifications: wait for its end, then reload once.
            await asyncio.sleep(self._debounce)
            self._wake.clear()
            try:
                await self.reload()
            except Exception as error:  # any failure: keep serving the last good accounts
                logger.warning(
                    "account cache: reload failed (%s: %s); serving the %d accounts loaded before",
                    type(error).__name__,
                    error,
                    len(self._accounts),
                )
                if isinstance(error, _CONNECTION_ERRORS) and self._conn is not None:
                    # A connection that timed out may be half dead: start afresh.
                    self._conn.terminate()
