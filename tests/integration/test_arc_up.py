"""``arc up`` end to end, as the real process tree an operator runs.

Each test starts ``python -m arc.cli up`` (embedded PostgreSQL, embedded
broker, the log writer and the receiver as child processes) in a data
directory of its own, talks DC-09 to it over loopback, and injects faults
with kill -9 while the panel simulator is sending:

- the endpoint lines, plain TCP and encrypted UDP frames with genuine ACKs, a
  clean SIGTERM stop that leaves no process behind, and a restart on the same
  data directory that still has the first run's rows and verifies intact;
- the log writer killed, the broker killed, the whole tree killed: every
  message the simulator saw ACKed is in ``signal_log`` exactly once, nothing
  is stored twice, and ``arc verify`` exits 0;
- a row changed behind the append-only trigger's back: ``arc verify`` exits 1
  and names that row's shard and chain_seq;
- the embedded broker started afresh under load once its log is long: nothing
  lost or stored twice, and the dispatcher saw every alarm.

Every wait is bounded, and the ``centres`` fixture kills whatever a test
started (the whole tree, then anything still naming the data directory),
whether the test passed or not.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from arc import bus
from arc.embedded.broker import kafka_answers
from loadtest.simulator import SimulatorConfig, SimulatorResult, account_ids
from loadtest.simulator import run as simulate
from protocols.dc09_crypto import Dc09Key
from tests.integration.up_helpers import (
    HOST,
    LINES,
    STOP_WITHIN,
    ArcUp,
    Endpoints,
    Proc,
    arc_env,
    broker_proc,
    check_ack,
    identify,
    import_accounts,
    kill,
    leftovers,
    new_data_dir,
    plain_frame,
    port_is_free,
    port_outside_ephemeral_range,
    reconcile,
    run_arc,
    running,
    sealed_frame,
    superuser,
    tcp_exchange,
    udp_exchange,
    until,
    wait_not_running,
)

pytestmark = [pytest.mark.integration]

DEMO_KEY = Dc09Key.parse("ascii:3BD7E66AA9E2F190")  # demo account A1B2 (arc/demo.py)
SIM_KEY = "ascii:3BD7E66AA9E2F190"
PANELS = 30
ACCOUNTS = account_ids("A", PANELS)  # A00001...: accounts are 3-16 hex digits


class Centres:
    """The arc up processes of one test; ``close`` leaves none of them, nor their servers."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.started: list[ArcUp] = []
        self.data_dirs: list[Path] = []

    def data_dir(self) -> Path:
        path = new_data_dir(self.scratch)
        self.data_dirs.append(path)
        return path

    async def up(
        self, data_dir: Path, *args: str, env: Mapping[str, str] | None = None
    ) -> tuple[ArcUp, Endpoints]:
        centre = ArcUp(data_dir, "--dc09-port", "0", *args, env=env)
        self.started.append(centre)
        await centre.start()
        return centre, await centre.ready()

    async def close(self) -> list[Proc]:
        """Kill what is left; return the processes that had to be killed after the fact."""
        for centre in self.started:
            await centre.close()
        late: list[Proc] = []
        for path in self.data_dirs:
            late += leftovers(path)
        kill(late)
        wait_not_running(late, within=10)
        return late


@pytest_asyncio.fixture
async def centres(scratch_dir: Path) -> AsyncIterator[Centres]:
    registry = Centres(scratch_dir)
    try:
        yield registry
    finally:
        await registry.close()
        for path in registry.data_dirs:
            shutil.rmtree(path, ignore_errors=True)
            for extra in path.parent.glob(f"{path.name}.*"):
                extra.unlink(missing_ok=True)


async def verify_status(data_dir: Path) -> tuple[int, list[dict[str, object]], str]:
    """``arc verify`` as a process: exit status, its JSON lines, its stderr."""
    status, out, err = await run_arc(data_dir, "verify")
    return status, [json.loads(line) for line in out.splitlines() if line.strip()], err


async def assert_verifies(data_dir: Path) -> dict[str, object]:
    status, report, err = await verify_status(data_dir)
    assert status == 0, f"arc verify exited {status}:\n{report}\n{err}"
    summary = report[-1]
    assert summary["summary"] is True and summary["intact"] is True, summary
    return summary


def assert_all_gone(procs: list[Proc], data_dir: Path, *, within: float) -> None:
    """None of ``procs`` runs, and nothing else serves ``data_dir``'s centre."""
    alive = wait_not_running(procs, within=within)
    assert alive == [], f"still running after arc up ended: {[str(p) for p in alive]}"
    survivors = leftovers(data_dir)
    assert survivors == [], f"processes of {data_dir} survived: {[str(p) for p in survivors]}"


# -- 1. the endpoints, a clean stop, a restart on the same data -----------------------


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.asyncio
async def test_demo_serves_tcp_and_udp_stops_cleanly_and_keeps_its_log(
    centres: Centres,
) -> None:
    data_dir = centres.data_dir()
    began = time.monotonic()
    centre, endpoints = await centres.up(data_dir, "--demo")
    startup = time.monotonic() - began

    # Every line is in its stable form, each endpoint once, "ready" last.
    for line in endpoints.lines:
        assert any(p.fullmatch(line) for p in LINES.values()), f"unexpected line {line!r}"
    for name in ("database", "broker", "logwriter", "dc09", "http", "demo", "ready"):
        count = sum(bool(LINES[name].fullmatch(line)) for line in endpoints.lines)
        assert count == 1, f"{name} line printed {count} times: {endpoints.lines}"
    assert LINES["ready"].fullmatch(endpoints.lines[-1])
    assert endpoints.tcp_port == endpoints.udp_port  # one DC-09 port, TCP and UDP
    assert kafka_answers(HOST, endpoints.broker_port, timeout=2.0)
    # A new centre's topics have one partition each (arc.embedded.topics).
    ends = await bus.log_ends(f"{HOST}:{endpoints.broker_port}", bus.TOPIC_PARTITIONS)
    assert sorted(ends) == sorted((topic, 0) for topic in bus.TOPIC_PARTITIONS)
    # The lines name real servers: the superuser DSN of the running centre works,
    # and its port is the one printed.
    await (await superuser(data_dir)).close()
    postmaster = (data_dir / "postgres" / "data" / "postmaster.pid").read_text().splitlines()
    assert int(postmaster[3]) == endpoints.database_port

    now = datetime.now(UTC).replace(microsecond=0)
    check_ack(
        await tcp_exchange(endpoints.tcp_port, plain_frame(11, "1234", "Nri1/BA012", now)),
        11,
        "1234",
    )
    sealed = sealed_frame(12, "A1B2", "Nri2/FA003", DEMO_KEY, now)
    check_ack(await udp_exchange(endpoints.udp_port, sealed), 12, "A1B2", DEMO_KEY)

    # Nothing secret on stdout or stderr: the DSN is masked, passwords never printed.
    output = "\n".join(endpoints.lines) + centre.stderr()
    for secret_file in ("password", "app-password", "config-password"):
        secret = (data_dir / "postgres" / secret_file).read_text().strip()
        assert secret not in output, f"{secret_file} printed by arc up"

    # SIGTERM: exit 0 within the bound, every process of the tree gone, the port free.
    tree = centre.tree()
    programs = {Path(p.argv[0]).name for p in tree if p.argv}
    assert "postgres" in programs and any(n.startswith("tansu") for n in programs), programs
    assert centre.service("logwriter") is not None and centre.service("receiver") is not None
    stop_began = time.monotonic()
    status = await centre.terminate(within=STOP_WITHIN)
    stopped_in = time.monotonic() - stop_began
    assert status == 0, f"arc up exited {status} on SIGTERM:\n{centre.stderr_tail()}"
    assert_all_gone(tree, data_dir, within=5.0)
    assert port_is_free(endpoints.tcp_port)
    assert "Traceback" not in centre.stderr(), centre.stderr_tail()
    print(f"arc up ready in {startup:.1f}s, stopped in {stopped_in:.1f}s")

    # Again on the same data directory: the first run's rows are there, the chains intact.
    again, endpoints2 = await centres.up(data_dir, "--demo")
    assert any(LINES["demo"].fullmatch(line) for line in endpoints2.lines)
    conn = await superuser(data_dir)
    try:
        rows = await conn.fetch(
            "SELECT account, sequence, transport, encrypted, code, zone, device_time"
            " FROM signal_log ORDER BY account"
        )
        accounts = await conn.fetchval("SELECT count(*) FROM accounts")
    finally:
        await conn.close()
    assert [tuple(r.values()) for r in rows] == [
        ("1234", "0011", "tcp", False, "BA", "012", now),
        ("A1B2", "0012", "udp", True, "FA", "003", now),
    ]
    assert accounts == 4  # the demo is seeded once, not twice
    summary = await assert_verifies(data_dir)
    assert isinstance(summary["rows"], int) and summary["rows"] >= 2
    # This time Ctrl-C at a terminal: SIGINT to arc up and its services at once.
    tree = again.tree()
    status = await again.interrupt(within=STOP_WITHIN)
    assert status == 0, f"arc up exited {status} on Ctrl-C:\n{again.stderr_tail()}"
    assert_all_gone(tree, data_dir, within=5.0)
    assert "Traceback" not in again.stderr(), again.stderr_tail()


# -- 2. faults under load: every ACKed message stored exactly once --------------------


def load(port: int, **changes: object) -> SimulatorConfig:
    """30 panels, TCP and UDP, 300 messages/s, each message retried for 32 s.

    ``seconds`` is only a cap: ``under_load`` stops the run once the centre
    has recovered from the fault.
    """
    settings: dict[str, object] = {
        "port": port,
        "panels": PANELS,
        "account_prefix": "A",
        "transport": "mixed",
        "rate": 300.0,
        "seconds": 60.0,
        "ack_timeout": 2.0,
        "retries": 15,
        "receiver": "0",
        "seed": 7,
    }
    settings.update(changes)
    return SimulatorConfig(**settings)  # type: ignore[arg-type]


async def stored_rows(data_dir: Path) -> int | None:
    """Rows in signal_log now; None while the database cannot be reached."""
    try:
        conn = await superuser(data_dir)
    except (AssertionError, OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        return int(await conn.fetchval("SELECT count(*) FROM signal_log"))
    finally:
        await conn.close()


BEFORE_FAULT = 300  # rows stored before the fault: it hits a centre under load
RECOVERED = 600  # rows stored after it: about 2 s of the load at full rate


async def under_load(
    data_dir: Path,
    config: SimulatorConfig,
    fault: Callable[[], Awaitable[None]],
    *,
    recover_within: float = 60.0,
) -> tuple[SimulatorResult, float]:
    """Run the simulator, inject ``fault`` mid-load, stop once recovered; (result, fault time)."""
    stop = asyncio.Event()
    run = asyncio.create_task(simulate(config, stop=stop))
    try:

        async def rows_reach(count: int) -> bool:
            assert not run.done(), "the simulator ended before the centre recovered"
            stored = await stored_rows(data_dir)
            return stored is not None and stored >= count

        await until(
            lambda: rows_reach(BEFORE_FAULT),
            within=20,
            what=f"{BEFORE_FAULT} rows before the fault",
        )
        at = time.monotonic()
        await fault()
        injected = time.monotonic() - at
        base = await stored_rows(data_dir) or 0
        resumed = await until(lambda: rows_reach(base + 1), within=recover_within, what="a new row")
        recovered = await until(
            lambda: rows_reach(base + RECOVERED),
            within=recover_within,
            what=f"{RECOVERED} rows after the fault",
        )
        print(
            f"fault took {injected:.1f}s; the next row {resumed:.1f}s later,"
            f" {RECOVERED} rows {resumed + recovered:.1f}s later"
        )
        stop.set()  # no new messages; those in flight finish
        async with asyncio.timeout(config.hard_limit):
            result = await run
    finally:
        if not run.done():
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
    return result, at


async def assert_exactly_once(data_dir: Path, result: SimulatorResult, fault_at: float) -> None:
    """The ledger against the log, and the chains."""
    ledger = result.ledger
    after = [e for e in ledger if e.first_sent > fault_at]
    summary = {k: v for k, v in result.summary().items() if k != "config"}
    print(f"simulator: {summary}; first sent after the fault and ACKed: {len(after)}")
    assert len({(e.account, e.sequence, e.device_time) for e in ledger}) == len(ledger)
    # The fault was felt (answers were lost, or held back for over a second:
    # a restarted log writer may be back within the ACK timeout) and the
    # centre recovered from it.
    assert result.timeouts + result.disconnects > 0 or result.max_ms > 1000, summary
    assert len(after) >= 200, "hardly anything was ACKed after the fault: no recovery"
    conn = await superuser(data_dir)
    try:
        check = await reconcile(conn, ledger, ACCOUNTS)
    finally:
        await conn.close()
    print(f"reconciliation: {check}")
    assert check.duplicates == {}, f"{len(check.duplicates)} keys stored twice: {check.duplicates}"
    assert check.missing == [], (
        f"{len(check.missing)} ACKed messages not stored: {check.missing[:10]}"
    )
    assert check.wrong == [], check.wrong[:10]
    assert check.stored >= check.ledger
    await assert_verifies(data_dir)


def skipped_duplicates(log: str) -> int:
    """Rows the log writer skipped as duplicates, from its log lines."""
    return sum(int(n) for n in re.findall(r"skipped (\d+) duplicate rows", log))


async def provisioned(centres: Centres, *, key: str = "") -> Path:
    data_dir = centres.data_dir()
    await import_accounts(data_dir, ACCOUNTS, key)
    return data_dir


@pytest.mark.slow
@pytest.mark.fault
@pytest.mark.timeout(170)
@pytest.mark.asyncio
async def test_log_writer_killed_mid_load(centres: Centres) -> None:
    data_dir = await provisioned(centres)
    centre, endpoints = await centres.up(data_dir)
    before = centre.service("logwriter")
    assert before is not None
    lines_before = list(centre.lines)

    async def kill_log_writer() -> None:
        kill([before])

    result, at = await under_load(data_dir, load(endpoints.tcp_port), kill_log_writer)
    # arc up started another one; its endpoint line is not printed twice.
    after = centre.service("logwriter")
    assert after is not None and after != before and not running(before)
    assert centre.lines == lines_before
    await assert_exactly_once(data_dir, result, at)
    log = centre.stderr()
    assert "logwriter exited with status -9" in log
    # Panels that retransmitted during the outage had each copy produced again:
    # the new writer stored one and skipped the rest. (The writer, assigned its
    # partitions directly, is usually back within the ACK timeout: then there is
    # nothing to skip.)
    if result.retransmissions:
        assert skipped_duplicates(log) > 0, "no retransmission reached the log writer"
    assert await centre.terminate() == 0


@pytest.mark.slow
@pytest.mark.fault
@pytest.mark.timeout(170)
@pytest.mark.asyncio
async def test_broker_killed_mid_load(centres: Centres) -> None:
    data_dir = await provisioned(centres, key=SIM_KEY)
    centre, endpoints = await centres.up(data_dir)
    before = broker_proc(data_dir)
    assert before is not None and running(before)

    async def kill_broker() -> None:
        kill([before])

    config = load(endpoints.tcp_port, aes=True, key=SIM_KEY)
    result, at = await under_load(data_dir, config, kill_broker)
    # Started again on the same port, a new process, its log new and empty.
    after = broker_proc(data_dir)
    assert after is not None and after != before and running(after)
    assert f"tcp://127.0.0.1:{endpoints.broker_port}" in after.argv
    log = centre.stderr()
    assert "the embedded broker died" in log
    # The log writer saw that the broker's log restarted below its stored offsets.
    assert "the broker lost its log" in log, centre.stderr_tail()
    await assert_exactly_once(data_dir, result, at)
    print(f"duplicates skipped: {skipped_duplicates(centre.stderr())}")
    assert await centre.terminate() == 0


@pytest.mark.slow
@pytest.mark.fault
@pytest.mark.timeout(170)
@pytest.mark.asyncio
async def test_postgres_killed_mid_load(centres: Centres) -> None:
    data_dir = await provisioned(centres)
    centre, endpoints = await centres.up(data_dir)
    pid_file = data_dir / "postgres" / "data" / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    before, port = int(lines[0]), int(lines[3])
    postmaster = identify(before)
    assert postmaster is not None and running(postmaster)

    async def kill_postgres() -> None:
        kill([postmaster])

    config = load(endpoints.tcp_port)
    result, at = await under_load(data_dir, config, kill_postgres)
    # Started again on the same port: the services' DSN still reaches it.
    lines = pid_file.read_text().splitlines()
    assert int(lines[0]) != before and int(lines[3]) == port
    assert "the embedded PostgreSQL died" in centre.stderr()
    await assert_exactly_once(data_dir, result, at)
    assert await centre.terminate() == 0


@pytest.mark.slow
@pytest.mark.fault
@pytest.mark.timeout(170)
@pytest.mark.asyncio
async def test_whole_tree_killed_mid_load_and_started_again(centres: Centres) -> None:
    data_dir = await provisioned(centres)
    # A fixed port, so that the panels (the simulator) carry on against the new centre.
    port = port_outside_ephemeral_range()
    first = ArcUp(data_dir, "--dc09-port", str(port))
    centres.started.append(first)
    await first.start()
    endpoints = await first.ready()
    assert endpoints.tcp_port == port
    restarted: list[ArcUp] = []

    async def crash_and_restart() -> None:
        killed = await first.crash()
        assert first.process is not None and first.process.returncode == -signal.SIGKILL
        names = " ".join(" ".join(p.argv) for p in killed)
        assert "postgres" in names and "tansu" in names and "logwriter" in names, names
        assert wait_not_running(killed, within=10) == []
        await asyncio.sleep(1.0)  # the panels notice: connections refused, datagrams unanswered
        second = ArcUp(data_dir, "--dc09-port", str(port))
        centres.started.append(second)
        restarted.append(second)
        await second.start()
        assert (await second.ready()).tcp_port == port

    result, at = await under_load(data_dir, load(port), crash_and_restart)
    (second,) = restarted
    assert result.disconnects > 0  # the TCP panels lost their connections
    await assert_exactly_once(data_dir, result, at)
    print(f"duplicates skipped after the restart: {skipped_duplicates(second.stderr())}")
    assert await second.terminate() == 0


# -- 3. tampering behind the trigger's back is found ------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.asyncio
async def test_verify_names_a_row_changed_behind_the_trigger(centres: Centres) -> None:
    data_dir = centres.data_dir()
    centre, endpoints = await centres.up(data_dir, "--demo")
    now = datetime.now(UTC).replace(microsecond=0)
    for seq in range(1, 9):
        account = ("1234", "5678")[seq % 2]
        frame = plain_frame(seq, account, f"Nri1/BA{seq:03d}", now)
        check_ack(await tcp_exchange(endpoints.tcp_port, frame), seq, account)
    await assert_verifies(data_dir)

    conn = await superuser(data_dir)
    try:
        target = await conn.fetchrow(
            "SELECT shard, chain_seq, received_at, zone FROM signal_log"
            " WHERE account = '1234' ORDER BY chain_seq DESC LIMIT 1 OFFSET 1"
        )
        assert target is not None
        shard, chain_seq, received_at = target["shard"], target["chain_seq"], target["received_at"]
        tamper = "UPDATE signal_log SET zone = '999' WHERE shard = $1 AND chain_seq = $2"
        tamper += " AND received_at = $3"
        # The trigger refuses even the superuser...
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await conn.execute(tamper, shard, chain_seq, received_at)
        # ...unless told to skip triggers, as a replica does: only the chain tells then.
        await conn.execute("SET session_replication_role = replica")
        done = await conn.execute(tamper, shard, chain_seq, received_at)
        assert done == "UPDATE 1"
    finally:
        await conn.close()

    def assert_names_the_row(status: int, report: list[dict[str, object]], err: str) -> None:
        assert status == 1, f"arc verify exited {status}:\n{report}\n{err}"
        broken = [c for c in report if not c.get("summary") and not c["intact"]]
        assert len(broken) == 1, broken
        first = broken[0]["first_break"]
        assert isinstance(first, dict)
        assert (first["table"], first["shard"], first["chain_seq"]) == (
            "signal_log",
            shard,
            chain_seq,
        )
        assert f"signal_log shard {shard} chain_seq {chain_seq}" in err

    assert_names_the_row(*await verify_status(data_dir))
    # Also with the centre stopped (arc verify starts the embedded server itself).
    assert await centre.terminate() == 0
    assert_names_the_row(*await verify_status(data_dir))


ROTATE_AT = 400  # records in a partition: at 300 signals/s over 4, reached in about 5 s
REPLACED = r"started the embedded broker afresh.*\(([\d.]+)s with the receivers held"


@pytest.mark.slow
@pytest.mark.fault
@pytest.mark.timeout(170)
@pytest.mark.asyncio
async def test_broker_started_afresh_under_load_loses_nothing_and_dispatches_every_alarm(
    centres: Centres,
) -> None:
    data_dir = await provisioned(centres)
    centre, endpoints = await centres.up(
        data_dir, env=arc_env(ARC_BROKER_LOG_LIMIT=str(ROTATE_AT), ARC_BROKER_LOG_INTERVAL="0")
    )
    first = broker_proc(data_dir)
    assert first is not None
    readers = [centre.service(name) for name in ("logwriter", "dispatcher")]
    console = centre.service("console")
    stop = asyncio.Event()
    run = asyncio.create_task(simulate(load(endpoints.tcp_port, seconds=90.0), stop=stop))

    async def logged(pattern: str, count: int) -> bool:
        assert not run.done(), "the simulator ended first"
        return len(re.findall(pattern, centre.stderr())) >= count

    try:
        # arc up looks at the log every 10 s; the first look replaces it.
        await until(lambda: logged(REPLACED, 1), within=30, what="the broker replaced")
        # The log writer and the dispatcher read the new log in place: the same processes.
        assert [centre.service(name) for name in ("logwriter", "dispatcher")] == readers
        assert "read on in place" in centre.stderr()
        # The console's commands were held and released meanwhile, by signals it handles.
        assert centre.service("console") == console
        # A dispatcher that cannot read (frozen) keeps the old log alive: the
        # alarms it has not read are only there.
        dispatcher = readers[1]
        assert dispatcher is not None
        kill([dispatcher], signal.SIGSTOP)
        try:
            refused = r"not all of it is stored \(.*dispatcher_state"
            await until(lambda: logged(refused, 1), within=30, what="the replacement refused")
            assert len(re.findall(REPLACED, centre.stderr())) == 1
        finally:
            kill([dispatcher], signal.SIGCONT)
        # Caught up, it lets the next try go ahead (30 s after the refusal).
        await until(lambda: logged(REPLACED, 2), within=50, what="the broker replaced again")
        stop.set()
        async with asyncio.timeout(30):
            result = await run
    finally:
        if not run.done():
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
    log = centre.stderr()
    after = broker_proc(data_dir)
    assert after is not None and after != first and running(after)
    assert f"tcp://127.0.0.1:{endpoints.broker_port}" in after.argv
    # The readers were told where the new log starts; none had to guess.
    assert "lost its log" not in log
    # A planned replacement is no error: the services' lost connections are
    # warnings, and no failed delivery is left for asyncio to report.
    errors = re.findall(r"^.* ERROR (?:aiokafka|asyncio)\b.*$", log, re.MULTILINE)
    assert errors == [], errors[:5]
    # Each hold was shorter than the ACK timeout (5 s): panels were answered, late.
    assert max(float(s) for s in re.findall(REPLACED, log)) < 5.0
    assert result.acked >= 0.9 * result.sent, result.summary()
    conn = await superuser(data_dir)
    try:
        check = await reconcile(conn, result.ledger, ACCOUNTS)
        assert check.duplicates == {} and check.missing == [] and check.wrong == [], check
        # The dispatcher read every alarm, across the brokers: each burglary
        # opened an incident or joined one. Its position is at the new log's end first.
        ends = await bus.log_ends(f"{HOST}:{endpoints.broker_port}", [bus.SIGNALS])

        async def dispatcher_at_end() -> bool:
            rows = await conn.fetch(
                "SELECT shard, next_offset FROM dispatcher_state WHERE topic = $1", bus.SIGNALS
            )
            stored = {r["shard"]: r["next_offset"] for r in rows}
            return all(stored.get(p, 0) >= end for (_, p), end in ends.items())

        await until(dispatcher_at_end, within=30, what="the dispatcher at the log's end")
        unseen = await conn.fetch(
            "SELECT s.signal_id FROM signal_log s WHERE s.code = 'BA' AND NOT EXISTS"
            " (SELECT 1 FROM incident_log i WHERE i.signal_id = s.signal_id)"
        )
        burglaries = await conn.fetchval("SELECT count(*) FROM signal_log WHERE code = 'BA'")
    finally:
        await conn.close()
    assert burglaries > 1_000
    assert unseen == [], f"{len(unseen)} of {burglaries} burglaries never reached the dispatcher"
    await assert_verifies(data_dir)
    assert await centre.terminate() == 0
