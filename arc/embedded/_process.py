"""What the embedded services share: a server child process with bounded start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import IO, Self

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class EmbeddedServiceError(RuntimeError):
    """An embedded service did not come up (or misbehaved); the message says which and why."""


def free_port() -> int:
    """Return a TCP port on the loopback address that nothing listens on right now.

    Another process can take it before the server binds it; starters retry with a
    new port when the server reports the address in use.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def terminate(
    process: subprocess.Popen[bytes],
    *,
    name: str,
    timeout: float,
    first: signal.Signals = signal.SIGTERM,
    second: signal.Signals | None = None,
) -> None:
    """Stop ``process``: ``first`` signal, then ``second`` (if any), then SIGKILL.

    Each step gets ``timeout`` seconds (the last one up to 5), so a stop never
    hangs however the server behaves.
    """
    steps = [first] if second is None else [first, second]
    for sig in steps:
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %.1fs of %s", name, timeout, sig.name)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    process.wait(5.0)


def open_log(path: Path | None) -> IO[bytes]:
    """Open a log file for a child's output; a hidden temporary file if ``path`` is None.

    Append mode (O_APPEND) matters: the child shares the file offset with us, and
    reading the log for an error message must not make the child overwrite it.
    """
    if path is None:
        fd, name = tempfile.mkstemp(prefix="arc-embedded-", suffix=".log")
        os.close(fd)
        log = open_private(Path(name))
        os.unlink(name)  # gone with the last descriptor
        return log
    path.parent.mkdir(parents=True, exist_ok=True)
    return open_private(path)


def open_private(path: Path) -> IO[bytes]:
    """Open ``path`` for appending and reading, created readable by its owner only."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "a+b")


def tail(log: IO[bytes], *, start: int = 0, lines: int = 15) -> str:
    """Return the last ``lines`` lines written to ``log`` after byte ``start``, for errors."""
    log.flush()
    log.seek(start)
    data = log.read()
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def log_end(log: IO[bytes]) -> int:
    """Return the current size of ``log``: where the next start's output begins."""
    return log.seek(0, os.SEEK_END)


class ManagedServer(ABC):
    """A server that ``start()`` brings up within a time bound and ``stop()`` takes down.

    Use it as a context manager, or as an async context manager: the blocking
    start and stop then run in a worker thread so that the event loop keeps going.
    """

    @abstractmethod
    def start(self) -> None:
        """Start the server and return once it answers; raise EmbeddedServiceError if not."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the server (idempotent)."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        starting = asyncio.ensure_future(asyncio.to_thread(self.start))
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            # A thread cannot be interrupted: let the (time-bounded) start finish,
            # then undo it, so that a cancelled start leaves no server behind.
            with contextlib.suppress(Exception):
                await starting
            await asyncio.to_thread(self.stop)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(asyncio.to_thread(self.stop))
