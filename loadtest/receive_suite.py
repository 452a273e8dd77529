"""The receive-path benchmarks of docs/benchmarks.md, in one run: ARC against pysiaalarm.

Each case runs the panel simulator against ``arc up`` (embedded PostgreSQL
and broker, a fresh data directory, ack policy ``database`` and then
``broker``) and against pysiaalarm's asyncio receiver, one after the other,
with the same frames; the ratio is taken within the run. For ARC every
ACKed message is then looked up in ``signal_log``: "lost" counts ACKed
messages that are not stored exactly once (it must be 0).

``make bench`` runs it; ``--quick`` shortens every case for a smoke test.
Everything runs on this machine and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

from loadtest.receive_bench import BenchReport, bench
from loadtest.simulator import SimulatorConfig


@dataclass(frozen=True)
class Case:
    """One measurement: a simulator configuration and the receivers it is run against."""

    name: str
    config: SimulatorConfig
    targets: tuple[str, ...]  # "pysiaalarm", "arc/database", "arc/broker"


def cases(quick: bool) -> list[Case]:
    """The standard cases; ``quick`` makes each a few seconds long."""
    short, sustained = (3.0, 5.0) if quick else (10.0, 60.0)
    # Hex accounts and an R field: pysiaalarm reads nothing else (see receive_bench).
    base = SimulatorConfig(port=1, account_prefix="A", receiver="0", retries=3, ack_timeout=2.0)
    every = ("pysiaalarm", "arc/database", "arc/broker")
    return [
        Case("50 panels, plain, closed loop", replace(base, panels=50, seconds=short), every),
        Case(
            "50 panels, AES-128, closed loop",
            replace(base, panels=50, seconds=short, aes=True),
            every,
        ),
        Case("500 panels, plain, closed loop", replace(base, panels=500, seconds=short), every),
        Case(
            "500 panels, AES-128, closed loop",
            replace(base, panels=500, seconds=short, aes=True),
            every,
        ),
        Case(
            "1,000 signals/s, 200 panels, plain",
            replace(base, panels=200, seconds=short, rate=1000.0),
            every,
        ),
        Case(
            f"sustained {sustained:g} s, 500 panels, plain",
            replace(base, panels=500, seconds=sustained),
            ("pysiaalarm", "arc/database"),
        ),
    ]


async def run_target(target: str, config: SimulatorConfig, receivers: int) -> BenchReport:
    """Run one case against one receiver."""
    if target.startswith("arc/"):
        os.environ["ARC_ACK_POLICY"] = target.removeprefix("arc/")
        os.environ["ARC_RECEIVERS"] = str(receivers)
        try:
            return await bench("arc", config)
        finally:
            del os.environ["ARC_ACK_POLICY"], os.environ["ARC_RECEIVERS"]
    return await bench(target, config)


def row(case: Case, target: str, report: BenchReport, reference: float | None) -> str:
    """One line of the results table."""
    result = report.result
    ratio = f"{result.acked_per_second / reference:.2f}x" if reference else ""
    lost = ""
    if report.ledger is not None:
        lost = str(report.ledger.missing + report.ledger.duplicated)
    cpu = "" if report.server_cpu_percent is None else f"{report.server_cpu_percent:.0f}%"
    return (
        f"| {case.name} | {target} | {result.acked_per_second:,.0f} | {ratio} | "
        f"{result.p50_ms:.1f} | {result.p99_ms:.1f} | {result.failed} | {lost} | {cpu} |"
    )


async def main_async(selected: Sequence[Case], receivers: int) -> int:
    print(
        f"# receive path, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, ARC with {receivers} receiver process(es); simulator, "
        "receiver, broker and database on this machine"
    )
    print(
        "| case | receiver | ACKed/s | vs pysiaalarm | p50 ms | p99 ms | failed | lost "
        "| server CPU |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    status = 0
    for case in selected:
        reference = None
        for target in case.targets:
            report = await run_target(target, case.config, receivers)
            if target == "pysiaalarm":
                reference = report.result.acked_per_second
            print(row(case, target, report, reference if target != "pysiaalarm" else None))
            sys.stdout.flush()
            if report.ledger is not None and (report.ledger.missing or report.ledger.duplicated):
                status = 1  # an ACKed signal not stored exactly once: the run is void
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.receive_suite", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds per case")
    parser.add_argument("--case", action="append", type=int, help="run only case N (from 1)")
    parser.add_argument("--receivers", type=int, default=1, help="ARC receiver processes")
    args = parser.parse_args(argv)
    every = cases(args.quick)
    selected = [every[n - 1] for n in args.case] if args.case else every
    return asyncio.run(main_async(selected, args.receivers))


if __name__ == "__main__":
    sys.exit(main())
