"""``arc up`` as a real process tree, for the end-to-end tests in test_arc_up.py.

What is here: starting ``arc up`` (and one-shot ``arc`` commands) with a clean
environment, reading its endpoint lines, finding its processes in /proc
(pid *and* start time, so that a reused pid is never mistaken for ours),
killing the whole tree at once, DC-09 frames and exchanges, and comparing the
panel simulator's ledger with ``signal_log``.

Every wait is bounded, and killing never relies on the tree being intact: the
tree is frozen with SIGSTOP first (nothing can fork or be re-parented while we
collect it), then SIGKILLed, and whatever still names the data directory is
killed as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import asyncpg

from arc.runtime import running_embedded_dsn
from loadtest.simulator import LedgerEntry
from protocols.dc09 import build_frame, format_timestamp, parse_frame
from protocols.dc09_crypto import Dc09Key, decrypt, encrypt

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
READY_WITHIN = 60.0  # arc up to print "arc: ready" (about 3-5 s on an idle 2-core box)
STOP_WITHIN = 25.0  # SIGTERM to exit: children get ack_timeout + 10 s, then the servers
COMMAND_WITHIN = 60.0  # a one-shot `arc` command (it may start PostgreSQL itself)

# The stable forms of arc up's lines (arc/up.py's docstring); the ports are captured.
LINES: dict[str, re.Pattern[str]] = {
    "database": re.compile(r"database: postgresql://postgres:\*\*\*@127\.0\.0\.1:(\d+)/arc"),
    "broker": re.compile(r"broker: 127\.0\.0\.1:(\d+)"),
    "logwriter": re.compile(r"logwriter: consuming arc\.signals, arc\.quarantine"),
    "dispatcher": re.compile(r"dispatcher: consuming arc\.signals, arc\.commands"),
    "dc09": re.compile(r"dc09: tcp://127\.0\.0\.1:(\d+) udp://127\.0\.0\.1:(\d+)"),
    "demo_staff": re.compile(r"demo: staff 41 \(40 eligible\)"),
    "demo": re.compile(r"demo: accounts 1234, 5678, A1B2, C3D4"),
    "http": re.compile(r"http: http://127\.0\.0\.1:(\d+)"),
    "demo_login": re.compile(r"demo: console login (\w+) / (\S+) \(zh: \S+\)"),
    "ready": re.compile(r"arc: ready \(Ctrl-C stops\)"),
}


def arc_env(**extra: str) -> dict[str, str]:
    """This environment without any ARC_* variable (the caller's may have some), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARC_")}
    env.update(extra)
    return env


def new_data_dir(scratch: Path) -> Path:
    """A fresh data directory the embedded PostgreSQL user can traverse."""
    path = scratch / f"up-{uuid.uuid4().hex[:10]}"
    path.mkdir()
    path.chmod(0o755)  # not the umask's choice: PostgreSQL runs as another user under root
    scratch.chmod(scratch.stat().st_mode | 0o111)
    return path


def port_outside_ephemeral_range() -> int:
    """A port free for TCP and UDP, below the kernel's ephemeral range.

    For a restart on the same DC-09 port: while nothing listens on it, a port
    in the ephemeral range may be handed to one of the simulator's outgoing
    connections (it reconnects right then), and the restart could not bind it.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    start = 20000 + uuid.uuid4().int % 5000  # spread: other test sessions may run at once
    for port in range(start, min(start + 2000, low)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind((HOST, port))
            except OSError:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise OSError("no port free for TCP and UDP below the ephemeral range")


def port_is_free(port: int) -> bool:
    """Whether both TCP and UDP can bind ``port`` on loopback now (nobody holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not a holder
        try:
            tcp.bind((HOST, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.bind((HOST, port))
        except OSError:
            return False
    return True


# -- processes, from /proc ------------------------------------------------------


@dataclass(frozen=True, order=True)
class Proc:
    """A process as /proc shows it; ``start`` (clock ticks after boot) tells reused pids apart."""

    pid: int
    start: int
    name: str = field(compare=False)
    argv: tuple[str, ...] = field(compare=False, default=())

    def __str__(self) -> str:
        return f"{self.pid} ({' '.join(self.argv)[:120] or self.name})"


def _stat(pid: int) -> tuple[str, str, int, int] | None:
    """(comm, state, ppid, starttime) of ``pid``, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, rest = text.rpartition(")")  # comm may contain spaces and parentheses
    fields = rest.split()
    return head.partition("(")[2], fields[0], int(fields[1]), int(fields[19])


def _argv(pid: int) -> tuple[str, ...]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def identify(pid: int) -> Proc | None:
    """The process ``pid`` is now, None if there is none."""
    stat = _stat(pid)
    if stat is None:
        return None
    return Proc(pid, stat[3], stat[0], _argv(pid))


def running(proc: Proc) -> bool:
    """Whether that very process still runs (a zombie does not: it is only unreaped)."""
    stat = _stat(proc.pid)
    return stat is not None and stat[3] == proc.start and stat[1] not in ("Z", "X")


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def descendants(root: int) -> list[Proc]:
    """The live descendants of ``root`` (not ``root`` itself)."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        stat = _stat(pid)
        if stat is not None and stat[1] not in ("Z", "X"):
            children.setdefault(stat[2], []).append(pid)
    found: list[Proc] = []
    seen = {root}
    todo = list(children.get(root, ()))
    while todo:  # bounded: each pid is visited once
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        proc = identify(pid)
        if proc is not None:
            found.append(proc)
        todo.extend(children.get(pid, ()))
    return sorted(found)


def processes_naming(text: str, *, environ: bytes | None = None) -> list[Proc]:
    """Live processes whose command line contains ``text``, or whose environment ``environ``."""
    me = os.getpid()
    found = []
    for pid in _all_pids():
        if pid == me:
            continue
        proc = identify(pid)
        if proc is None or not running(proc):
            continue
        if any(text in arg for arg in proc.argv) or (
            environ is not None and environ in _environ(pid)
        ):
            found.append(proc)
    return sorted(found)


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


def kill(procs: Iterable[Proc], sig: signal.Signals = signal.SIGKILL) -> None:
    """Send ``sig`` to each process that is still that process."""
    for proc in procs:
        if running(proc):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, sig)


def freeze_and_kill(root: Proc) -> list[Proc]:
    """SIGKILL ``root`` and all its descendants at once, as a crash would; return them.

    SIGSTOP first, round by round, so that nothing forks a new process or is
    re-parented to init (out of our sight) while the tree is collected.
    """
    tree: dict[int, Proc] = {}
    if running(root):
        tree[root.pid] = root
        kill([root], signal.SIGSTOP)
    for _ in range(20):  # bounded: a stopped process cannot fork
        new = [p for p in descendants(root.pid) if p.pid not in tree]
        if not new:
            break
        for proc in new:
            tree[proc.pid] = proc
        kill(new, signal.SIGSTOP)
    kill(tree.values())
    return sorted(tree.values())


def wait_not_running(procs: Iterable[Proc], *, within: float) -> list[Proc]:
    """Wait up to ``within`` seconds for every process to end; return those still running."""
    procs = list(procs)
    deadline = time.monotonic() + within
    while True:
        alive = [p for p in procs if running(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def leftovers(data_dir: Path) -> list[Proc]:
    """Processes of ``data_dir``'s centre: arc up and PostgreSQL (by their arguments), the
    services (ARC_DATA_DIR in their environment, even re-parented), the broker (broker.pid)."""
    resolved = data_dir.resolve()  # PostgreSQL's -D and the services' ARC_DATA_DIR are resolved
    found = set(processes_naming(str(data_dir), environ=b"ARC_DATA_DIR=%s" % bytes(resolved)))
    found.update(processes_naming(str(resolved)))
    broker = broker_proc(data_dir)
    if broker is not None and running(broker):
        found.add(broker)
    return sorted(found)


def broker_proc(data_dir: Path) -> Proc | None:
    """The broker arc up recorded in ``broker.pid``, if that pid is a Tansu broker now."""
    try:
        pid = int((data_dir / "broker.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    proc = identify(pid)
    if proc is None or not proc.argv or "tansu" not in Path(proc.argv[0]).name:
        return None
    return proc


# -- arc up -------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoints:
    """What arc up printed before "arc: ready"."""

    lines: tuple[str, ...]
    database_port: int
    broker_port: int
    tcp_port: int
    udp_port: int
    http_port: int


class ArcUp:
    """One ``arc up`` process: its stdout lines are collected, its stderr kept in a file."""

    def __init__(self, data_dir: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.args = args
        self.env = dict(env) if env is not None else arc_env()
        self.lines: list[str] = []
        self.log_path = data_dir.parent / f"{data_dir.name}.arc-up-{uuid.uuid4().hex[:6]}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.proc: Proc | None = None  # the arc up process, for /proc checks
        self._log: IO[bytes] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        self._log = self.log_path.open("ab")
        argv = [sys.executable, "-m", "arc.cli", "up", "--data-dir", str(self.data_dir)]
        self.process = await asyncio.create_subprocess_exec(
            *argv,
            *self.args,
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            # A process group of its own, as a shell gives a foreground job:
            # ``interrupt`` is then a terminal's Ctrl-C (arc up and its services
            # get SIGINT; PostgreSQL and the broker have groups of their own).
            process_group=0,
        )
        self.proc = identify(self.process.pid)
        self._reader = asyncio.create_task(self._read(self.process))

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()  # EOF: waiters look at the exit status

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def exited(self) -> bool:
        return self.process is None or self.process.returncode is not None

    def stderr_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stderr(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    async def wait_line(
        self, pattern: re.Pattern[str], *, within: float, after: int = 0
    ) -> re.Match[str]:
        """The first line from index ``after`` on that matches ``pattern`` in full."""
        deadline = time.monotonic() + within
        index = after
        while True:
            while index < len(self.lines):
                match = pattern.fullmatch(self.lines[index])
                index += 1
                if match is not None:
                    return match
            if self._reader is not None and self._reader.done():
                status = await self._wait_exit(5.0)
                raise AssertionError(
                    f"arc up ended (status {status}) before printing {pattern.pattern!r}; "
                    f"stdout {self.lines}; stderr:\n{self.stderr_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"arc up did not print {pattern.pattern!r} within {within:.0f}s; "
                    f"stdout {self.lines}; stderr:\n{self.stderr_tail()}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    async def ready(self, *, within: float = READY_WITHIN) -> Endpoints:
        """Wait for "arc: ready"; parse the endpoint lines printed before it."""
        await self.wait_line(LINES["ready"], within=within)
        lines = tuple(self.lines)
        found: dict[str, re.Match[str]] = {}
        for line in lines:
            for name, pattern in LINES.items():
                match = pattern.fullmatch(line)
                if match is not None:
                    found.setdefault(name, match)
        missing = {"database", "broker", "logwriter", "dc09", "http"} - found.keys()
        assert not missing, f"arc up printed no {sorted(missing)} line: {lines}"
        return Endpoints(
            lines=lines,
            database_port=int(found["database"][1]),
            broker_port=int(found["broker"][1]),
            tcp_port=int(found["dc09"][1]),
            udp_port=int(found["dc09"][2]),
            http_port=int(found["http"][1]),
        )

    def tree(self) -> list[Proc]:
        """arc up's live descendants (services, PostgreSQL and its workers, the broker)."""
        return descendants(self.pid)

    def service(self, name: str) -> Proc | None:
        """The live ``arc <name>`` child (logwriter or receiver), if there is one now."""
        for proc in descendants(self.pid):
            argv = proc.argv
            if "arc.cli" in argv and name in argv:
                return proc
        return None

    async def _wait_exit(self, within: float) -> int | None:
        assert self.process is not None
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(self.process.wait(), within)
        return None

    async def terminate(self, *, within: float = STOP_WITHIN) -> int | None:
        """SIGTERM; the exit status, or None if it did not exit within ``within`` seconds."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        status = await self._wait_exit(within)
        if status is not None:
            await self._finish_reading()
        return status

    async def interrupt(self, *, within: float = STOP_WITHIN) -> int | None:
        """Ctrl-C at the terminal: SIGINT to the process group; the exit status, as terminate."""
        assert self.process is not None
        if self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGINT)
        status = await self._wait_exit(within)
        if status is not None:
            await self._finish_reading()
        return status

    async def crash(self) -> list[Proc]:
        """kill -9 of arc up and every descendant at once; return what was killed."""
        assert self.proc is not None
        killed = freeze_and_kill(self.proc)
        await self._wait_exit(10.0)
        await self._finish_reading()
        return killed

    async def _finish_reading(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), 5.0)

    async def close(self) -> None:
        """However the test went: nothing of this arc up runs afterwards (idempotent)."""
        try:
            if self.proc is not None and running(self.proc):
                freeze_and_kill(self.proc)
            if self.process is not None:
                await self._wait_exit(10.0)
            if self._reader is not None:
                await self._finish_reading()
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


async def run_arc(
    data_dir: Path, *args: str, within: float = COMMAND_WITHIN
) -> tuple[int, str, str]:
    """Run ``arc ARGS`` with ``ARC_DATA_DIR=data_dir``; (status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arc.cli",
        *args,
        cwd=ROOT,
        env=arc_env(ARC_DATA_DIR=str(data_dir)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        raise AssertionError(f"arc {' '.join(args)} did not finish within {within:.0f}s") from None
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def import_accounts(data_dir: Path, accounts: Iterable[str], key: str = "") -> None:
    """``arc account import`` of ``accounts`` (CSV ``account,name,key``) before arc up runs."""
    rows = ["account,name,key", *(f"{account},test panel,{key}" for account in accounts)]
    csv = data_dir.parent / f"{data_dir.name}.accounts.csv"
    csv.write_text("\n".join(rows) + "\n")
    status, out, err = await run_arc(
        data_dir, "account", "import", str(csv), "--staffing-override", "test fixture"
    )
    assert status == 0, f"arc account import failed ({status}):\n{out}\n{err}"


async def superuser(data_dir: Path) -> asyncpg.Connection[asyncpg.Record]:
    """A superuser connection to the embedded PostgreSQL a running arc up has under ``data_dir``."""
    dsn = running_embedded_dsn(data_dir / "postgres")
    assert dsn is not None, f"no running embedded PostgreSQL under {data_dir}"
    return await asyncpg.connect(dsn.get_secret_value(), timeout=10)


# -- DC-09 frames -------------------------------------------------------------------


def plain_frame(seq: int, account: str, data: str, now: datetime) -> bytes:
    stamp = format_timestamp(now).decode()
    return build_frame(f'"SIA-DCS"{seq:04d}L0#{account}[#{account}|{data}]{stamp}'.encode())


def sealed_frame(seq: int, account: str, data: str, key: Dc09Key, now: datetime) -> bytes:
    content = encrypt(f"#{account}|{data}]".encode() + format_timestamp(now), key, os.urandom)
    return build_frame(f'"*SIA-DCS"{seq:04d}L0#{account}['.encode() + content)


def check_ack(reply: bytes, seq: int, account: str, key: Dc09Key | None = None) -> None:
    """A genuine ACK of that message: CRC and length, token, sequence, account; *ACK decrypts."""
    answer = parse_frame(reply)  # raises on a bad CRC or length
    header = answer.header
    assert header.token == ("*ACK" if key is not None else "ACK"), reply
    assert (header.sequence, header.account) == (f"{seq:04d}", account), reply
    if key is not None:
        plain = decrypt(answer.content, key)
        assert b"]_" in plain, plain  # the pad, "]" and the receiver's timestamp


async def tcp_exchange(port: int, payload: bytes, *, within: float = 15.0) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(payload)
        await writer.drain()
        async with asyncio.timeout(within):
            return await reader.readuntil(b"\r")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.replies.put_nowait(data)


async def udp_exchange(port: int, payload: bytes, *, within: float = 15.0) -> bytes:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Udp, remote_addr=(HOST, port))
    try:
        transport.sendto(payload)
        async with asyncio.timeout(within):
            return await protocol.replies.get()
    finally:
        transport.close()


# -- the ledger against the log --------------------------------------------------------

Key = tuple[str, str, datetime]  # account, sequence, device time


@dataclass
class Reconciliation:
    """The simulator's ledger (ACKed messages) compared with ``signal_log``."""

    ledger: int
    stored: int  # rows of the simulator's accounts
    missing: list[Key]  # ACKed, not stored
    duplicates: dict[Key, int]  # stored more than once (ACKed or not)
    wrong: list[str]  # stored, but not as what was sent

    def __str__(self) -> str:
        return (
            f"ledger {self.ledger}, stored {self.stored}, missing {len(self.missing)}, "
            f"duplicated keys {len(self.duplicates)}, wrong {len(self.wrong)}"
        )


def ledger_key(entry: LedgerEntry) -> Key:
    return entry.account, entry.sequence, datetime.fromisoformat(entry.device_time)


async def reconcile(
    conn: asyncpg.Connection[asyncpg.Record], ledger: list[LedgerEntry], accounts: list[str]
) -> Reconciliation:
    """Every ACKed message should be one row; nothing may be stored twice."""
    rows = await conn.fetch(
        "SELECT account, sequence, device_time, message_id, encrypted, code, event_class, zone"
        " FROM signal_log WHERE account = ANY($1::text[])",
        accounts,
    )
    counts: Counter[Key] = Counter()
    by_key: dict[Key, asyncpg.Record] = {}
    for record in rows:
        key = (record["account"], record["sequence"], record["device_time"].astimezone(UTC))
        counts[key] += 1
        by_key[key] = record
    missing: list[Key] = []
    wrong: list[str] = []
    for entry in ledger:
        key = ledger_key(entry)
        row = by_key.get(key)
        if row is None:
            missing.append(key)
            continue
        # message_id is the token as sent: "*SIA-DCS" for an encrypted SIA-DCS.
        token = ("*" if entry.encrypted else "") + entry.message_type
        if (row["message_id"], row["encrypted"]) != (token, entry.encrypted):
            wrong.append(f"{key}: sent {token}, stored {row['message_id']}")
        elif entry.message_type == "NULL" and (row["code"], row["event_class"]) != (None, "test"):
            wrong.append(f"{key}: a link test stored as {row['code']}/{row['event_class']}")
        elif "/BA" in entry.data and (row["code"], row["zone"]) != ("BA", entry.data[-3:]):
            wrong.append(f"{key}: sent {entry.data}, stored {row['code']}{row['zone']}")
    return Reconciliation(
        ledger=len(ledger),
        stored=len(rows),
        missing=missing,
        duplicates={key: n for key, n in counts.items() if n > 1},
        wrong=wrong,
    )


async def until(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> float:
    """Poll ``check`` until true; the seconds it took."""
    began = time.monotonic()
    while not await check():
        assert time.monotonic() - began < within, f"not within {within:.0f}s: {what}"
        await asyncio.sleep(0.1)
    return time.monotonic() - began
