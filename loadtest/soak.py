"""A long, steady load on the whole centre, reported window by window.

``python -m loadtest.soak --minutes 20`` (``make bench-soak``) starts ``arc up``
as ``receive_bench --target arc`` does, sends a paced load for that long and
prints, per window, the ACKed rate, the ACK latency and each service's CPU
and memory: what a short run cannot show (latency that grows with the log,
memory that is never given back, the embedded broker's replacements). At the
end every ACKed message is looked for in ``signal_log``.

Memory is the resident set of each service, PostgreSQL's as the proportional
set (its backends share the buffer pool, which a sum of resident sets would
count once per backend).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from loadtest.receive_bench import CLK_TCK, arc_target, measure, process_tree, stat_fields
from loadtest.simulator import LedgerEntry, SimulatorConfig

MAX_MINUTES = 7 * 24 * 60  # a week: every loop here is bounded
_SERVICES = ("receiver", "logwriter", "dispatcher", "console")


@dataclass(frozen=True, slots=True)
class Usage:
    """One service's CPU seconds so far and memory now."""

    cpu_seconds: float
    memory_mb: float


def service_of(pid: int) -> str | None:
    """The service a process of ``arc up``'s tree belongs to (None: ``arc up`` itself)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    text = b" ".join(argv).decode(errors="replace")
    if "postgres" in text:
        return "postgres"
    if "tansu" in text:
        return "broker"
    if "arc.cli up" in text:
        return "up"
    for name in _SERVICES:
        if f"arc.cli {name}" in text:
            return name
    return None


def _memory_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def usage(root: int) -> dict[str, Usage]:
    """CPU and memory of each service under ``root`` (``arc up``), by name."""
    cpu: dict[str, float] = defaultdict(float)
    memory: dict[str, float] = defaultdict(float)
    for pid in process_tree(root):
        name = service_of(pid)
        fields = stat_fields(pid)
        if name is None or fields is None:
            continue
        own = sum(int(v) for v in fields[11:13]) / CLK_TCK  # utime, stime
        reaped = sum(int(v) for v in fields[13:15]) / CLK_TCK  # cutime, cstime
        if name == "up":
            # What arc up reaped is the brokers it replaced (no service restarts in
            # a soak that passes); its own CPU and memory are no service's.
            cpu["broker"] += reaped
            continue
        cpu[name] += own + reaped  # the postmaster reaps the backends that end
        field = "Pss:" if name == "postgres" else "Rss:"
        memory[name] += _memory_kb(pid, field) / 1024
    return {name: Usage(cpu[name], memory[name]) for name in cpu}


def _row(
    window: int,
    result: dict[str, float],
    before: dict[str, Usage],
    after: dict[str, Usage],
    seconds: float,
) -> dict[str, object]:
    row: dict[str, object] = {"window": window, **result}
    for name, now in sorted(after.items()):
        was = before.get(name, Usage(0.0, 0.0))
        row[f"{name}_cpu_pct"] = round(100 * (now.cpu_seconds - was.cpu_seconds) / seconds, 1)
        row[f"{name}_mb"] = round(now.memory_mb, 1)
    return row


async def soak(
    config: SimulatorConfig, *, minutes: float, window: float
) -> list[dict[str, object]]:
    """Run ``minutes`` of ``config``'s load against ``arc up``; one row per window."""
    windows = max(1, round(minutes * 60 / window))
    rows: list[dict[str, object]] = []
    ledger: list[LedgerEntry] = []
    async with arc_target(config) as endpoint:
        assert endpoint.pid is not None and endpoint.ledger_check is not None  # noqa: S101
        for number in range(1, windows + 1):
            before = usage(endpoint.pid)
            started = asyncio.get_running_loop().time()
            result = await measure(
                endpoint.host,
                endpoint.port,
                replace(config, seconds=window),
                udp_port=endpoint.udp_port,
            )
            seconds = asyncio.get_running_loop().time() - started
            ledger.extend(result.ledger)
            summary = {
                "acked_per_s": round(result.acked_per_second, 1),
                "failed": result.failed,
                "p50_ms": round(result.p50_ms, 1),
                "p99_ms": round(result.p99_ms, 1),
                "max_ms": round(result.max_ms, 1),
            }
            rows.append(_row(number, summary, before, usage(endpoint.pid), seconds))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        check = await endpoint.ledger_check(ledger)
    rows.append({"ledger": asdict(check)})
    return rows


def format_table(rows: Sequence[dict[str, object]]) -> str:
    """Markdown: a line per window, the ledger's check last."""
    windows = [r for r in rows if "window" in r]
    names = sorted(
        {k.removesuffix("_cpu_pct") for r in windows for k in r if k.endswith("_cpu_pct")}
    )
    head = ["window", "ACKed/s", "failed", "p50 ms", "p99 ms", "max ms"]
    head += [f"{n} CPU %" for n in names] + [f"{n} MB" for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in windows:
        cells = [r["window"], r["acked_per_s"], r["failed"], r["p50_ms"], r["p99_ms"], r["max_ms"]]
        cells += [r.get(f"{n}_cpu_pct", "") for n in names] + [r.get(f"{n}_mb", "") for n in names]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += [f"ledger: {r['ledger']}" for r in rows if "ledger" in r]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=60.0, help="seconds a line")
    parser.add_argument("--rate", type=float, default=1000.0, help="signals/s, paced")
    parser.add_argument("--panels", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="the rows as JSON")
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= MAX_MINUTES or not 1 <= args.window <= 3600 or args.rate <= 0:
        parser.error(f"--minutes 0..{MAX_MINUTES}, --window 1..3600 and a rate above 0")
    # The bench's accounts: hex, with R0 (receive_bench's defaults).
    config = SimulatorConfig(
        port=1, panels=args.panels, rate=args.rate, account_prefix="A", receiver="0"
    )
    rows = asyncio.run(soak(config, minutes=args.minutes, window=args.window))
    print(json.dumps(rows) if args.json else format_table(rows))
    ledger = rows[-1].get("ledger")
    return 0 if isinstance(ledger, dict) and ledger.get("missing") == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
