"""Asking the dispatcher to change an incident, and hearing its answer.

People change incidents (take, work a step, dispatch, close ...) by sending a
``Command`` on ``arc.commands``, keyed by account: the dispatcher that owns
the account applies it in order with the account's signals, and is so the
only writer of its incidents. It announces each outcome (applied, or refused
with the rule) by NOTIFY ``arc_commands`` when the change is committed. The
console and the guards' API use ``CommandClient``: the outcome's future is
registered before the command is sent, so a quick answer is never missed.

``sends.hold`` makes new commands wait (within their time for an outcome)
until ``sends.release``: ``arc up`` holds the console's commands, as it holds
the receivers' signals, while it replaces the embedded broker, so that no
command reaches the old broker after its log was found fully read.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from arc import bus
from arc.dispatch.engine import Command
from arc.dispatch.lifecycle import Kind, Role
from arc.dispatch.store import COMMANDS_CHANNEL
from arc.process import SendHold


class CommandTimeout(Exception):
    """No outcome in time: the dispatcher is down or far behind (it may still apply it)."""


class CommandClient:
    """Send commands and wait for their outcomes."""

    def __init__(self, *, producer: bus.Producer, dsn: str, topic: str = bus.COMMANDS) -> None:
        self._producer = producer
        self._dsn = dsn
        self._topic = topic
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._conn: asyncpg.Connection[asyncpg.Record] | None = None
        self.sends = SendHold()  # held while arc up replaces the embedded broker

    async def start(self) -> None:
        """Listen for outcomes."""
        self._conn = await asyncpg.connect(self._dsn, timeout=10)
        await self._conn.add_listener(COMMANDS_CHANNEL, self._heard)

    async def stop(self) -> None:
        """Stop listening; commands still waiting fail with ``CommandTimeout``."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(CommandTimeout("the command client stopped"))

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        outcome = orjson.loads(str(payload))
        future = self._waiting.pop(outcome.get("command_id", ""), None)
        if future is not None and not future.done():
            future.set_result(outcome)

    async def submit(
        self,
        *,
        account: str,
        incident_id: uuid.UUID,
        kind: Kind,
        actor: str,
        role: Role,
        details: Mapping[str, Any] | None = None,
        within: float = 10.0,
    ) -> dict[str, Any]:
        """Send one command; return its outcome: ``ok``, or ``rule`` and ``message``.

        ``within``: seconds for the outcome, a hold (``sends``) and the send included.
        """
        command = Command(
            command_id=uuid.uuid4(),
            incident_id=incident_id,
            account=account,
            kind=kind,
            actor=actor,
            role=role,
            at=datetime.now(UTC),
            details=dict(details or {}),
        )
        key = str(command.command_id)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        try:
            async with asyncio.timeout(within):
                await self.sends.released()
                await self._producer.send_and_wait(
                    self._topic, value=orjson.dumps(command.to_json()), key=account.encode()
                )
                return await future
        except TimeoutError:
            raise CommandTimeout(f"no outcome for {kind} within {within:g} s") from None
        finally:
            self._waiting.pop(key, None)
