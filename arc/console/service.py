"""``arc console``: the operator console and its API over HTTP, until told to stop.

It connects to PostgreSQL as the application role, reads ``arc.incidents``
for the live queue and sends people's changes as commands on
``arc.commands`` (held while ``arc up`` replaces the embedded broker:
``HOLD_SENDS``). Supervisors' and administrators' changes go through a
second, small pool logged in as ``arc_config`` (``ARC_CONFIG_DATABASE_URL``,
migration 0010); without it the console shows the configuration but changes
none of it. Once it listens it prints ``http: http://HOST:PORT`` (the
port it got when asked for 0), which ``arc up`` relays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import uvicorn

from arc import bus, db
from arc.auth.totp import totp_box
from arc.config import Settings
from arc.console.app import create_app
from arc.console.deps import Console
from arc.console.live import LiveFeed
from arc.dispatch.commands import CommandClient

logger = logging.getLogger(__name__)


def _listen(host: str, port: int) -> socket.socket:
    """Bind the port first, so that the port printed is the one served (0: any free)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def run_console(
    settings: Settings,
    stop: asyncio.Event,
    *,
    announce: Callable[[str], None] = print,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    topic_prefix: str = "",
) -> None:
    """Serve the console until ``stop`` is set."""
    if settings.database_url is None or settings.kafka_bootstrap is None:
        raise SystemExit(
            "arc console needs ARC_DATABASE_URL and ARC_KAFKA_BOOTSTRAP (arc up sets both)"
        )
    await bus.ensure_topics(
        settings.kafka_bootstrap,
        {topic_prefix + name: bus.TOPIC_PARTITIONS[name] for name in (bus.INCIDENTS, bus.COMMANDS)},
    )
    pool = await db.create_pool(settings.database_url, max_size=20, application_name="arc-console")
    # Changes are rare and each is one short transaction: a few connections serve them.
    config_pool = (
        None
        if settings.config_database_url is None
        else await db.create_pool(
            settings.config_database_url, max_size=4, application_name="arc-console-config"
        )
    )
    producer = bus.make_producer(settings.kafka_bootstrap, client_id="arc-console")
    commands = CommandClient(
        producer=producer,
        dsn=settings.database_url.get_secret_value(),
        topic=topic_prefix + bus.COMMANDS,
    )
    live = LiveFeed(bootstrap=settings.kafka_bootstrap, topic=topic_prefix + bus.INCIDENTS)
    sock = _listen(settings.listen_host, settings.http_port)
    state = Console(
        settings=settings,
        pool=pool,
        commands=commands,
        clock=clock,
        session_ttl=timedelta(hours=settings.session_hours),
        totp_box=totp_box(settings.master_key),
        live=live,
        config_pool=config_pool,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(state),
            log_level="warning",
            access_log=False,
            lifespan="off",
            # The page's live stream never ends by itself: stop waits this long for it.
            timeout_graceful_shutdown=2,
        )
    )
    try:
        await producer.start()
        await commands.start()
        await live.start()
        commands.sends.install()
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        # uvicorn sets a flag, not an event, once it serves.
        while not server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if serving.done():
            serving.result()
        host, port = sock.getsockname()[:2]
        announce(f"http: http://{host}:{port}")
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait((serving, stopping), return_when="FIRST_COMPLETED")
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        stopping.cancel()
    finally:
        commands.sends.uninstall()
        await live.stop()
        await commands.stop()
        await producer.stop()
        await pool.close()
        if config_pool is not None:
            await config_pool.close()
        sock.close()
