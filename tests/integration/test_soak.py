"""The soak harness against a real ``arc up``: windows, every service accounted, the ledger."""

from __future__ import annotations

import pytest

from loadtest.simulator import SimulatorConfig
from loadtest.soak import format_table, soak

pytestmark = [pytest.mark.integration, pytest.mark.asyncio, pytest.mark.timeout(180)]


async def test_a_short_soak_reports_each_window_and_finds_every_acked_signal_stored() -> None:
    config = SimulatorConfig(port=1, panels=10, rate=100, account_prefix="A", receiver="0")
    rows = await soak(config, minutes=0.1, window=3)
    windows = [row for row in rows if "window" in row]
    assert [row["window"] for row in windows] == [1, 2]
    for row in windows:
        assert row["failed"] == 0 and float(str(row["acked_per_s"])) > 50
        for service in ("receiver", "logwriter", "dispatcher", "console", "broker", "postgres"):
            assert float(str(row[f"{service}_mb"])) > 1, service  # found and measured
        assert float(str(row["receiver_cpu_pct"])) > 0
    ledger = rows[-1]["ledger"]
    assert isinstance(ledger, dict)
    assert ledger["missing"] == 0 and ledger["acked"] == ledger["stored_once"] > 0
    table = format_table(rows)
    assert table.count("\n| ") == 2 and "receiver MB" in table
