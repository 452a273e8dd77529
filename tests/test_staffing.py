"""表1 of 联网报警运营规范 §5.2 (REGULATION R1) as data: bands, minimums, compliance, headroom."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arc.guards.staffing import BANDS, Category, band_for, compliance, requirement_json

P, D, N = Category.PATROL_RESPONSE, Category.DUTY_OPERATORS, Category.DESIGN_INSTALLATION

# (customers, band, patrol, operators, design & installation), as REGULATION.md writes them.
EDGES = [
    (0, "0-100", 10, 10, 20),
    (100, "0-100", 10, 10, 20),
    (101, "101-500", 20, 15, 25),
    (500, "101-500", 20, 15, 25),
    (501, "501-1000", 30, 20, 30),
    (1000, "501-1000", 30, 20, 30),
    (1001, "1001-2000", 40, 25, 40),
    (2000, "1001-2000", 40, 25, 40),
    (2001, "2001-5000", 55, 30, 45),
    (5000, "2001-5000", 55, 30, 45),
    (5001, "5001-10000", 80, 35, 50),
    (10000, "5001-10000", 80, 35, 50),
    (10001, "10001+", 200, 40, 100),
    (10**9, "10001+", 200, 40, 100),
]


@pytest.mark.parametrize(("customers", "band", "patrol", "operators", "design"), EDGES)
def test_every_band_edge(
    customers: int, band: str, patrol: int, operators: int, design: int
) -> None:
    assert requirement_json(customers) == {
        "customers": customers,
        "band": band,
        "patrol_response": patrol,
        "duty_operators": operators,
        "design_installation": design,
    }
    exactly = compliance(customers, {P: patrol, D: operators, N: design})
    assert exactly.compliant and not exactly.short
    for category in Category:
        one_short = {P: patrol, D: operators, N: design}
        one_short[category] -= 1
        status = compliance(customers, one_short)
        assert not status.compliant
        assert [(s.category, s.shortfall) for s in status.short] == [(category, 1)]


def test_negative_customers_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        band_for(-1)
    with pytest.raises(ValueError, match="cannot be negative"):
        compliance(5, {P: -1})


def test_compliance_reports_have_required_shortfall_and_ratio() -> None:
    status = compliance(500, {P: 20, D: 12})  # no design & installation staff at all
    data = status.to_json()
    assert data["band"] == "101-500" and data["compliant"] is False
    assert data["patrol_response"] == {"required": 20, "have": 20, "shortfall": 0}
    assert data["duty_operators"] == {"required": 15, "have": 12, "shortfall": 3}
    assert data["design_installation"] == {"required": 25, "have": 0, "shortfall": 25}
    assert data["customers_per_patrol_guard"] == 25.0  # R1's example: 500 / 20
    assert data["headroom"] == 0
    assert status.shortfall_text() == (
        "人工值守 duty_operators: 15 required, 12 qualified, 3 short; "
        "设计施工 design_installation: 25 required, 0 qualified, 25 short"
    )
    assert compliance(10, {}).customers_per_patrol_guard is None


@pytest.mark.parametrize(
    ("customers", "staff", "headroom"),
    [
        (0, (10, 10, 20), 100),  # exactly the first band: up to 100 customers
        (100, (10, 10, 20), 0),  # full: the 101st needs the second band's staff
        (101, (10, 10, 20), 0),  # short already
        (100, (20, 15, 25), 400),
        (100, (20, 15, 24), 0),  # one installer short of band 2: capped at 100
        (480, (200, 40, 99), 9520),  # up to 10,000 (band 6), not 10,001
        (10001, (200, 40, 100), None),  # meets the last band: unbounded
        (0, (9, 100, 100), 0),  # not even the first band
    ],
)
def test_headroom_at_band_edges(customers: int, staff: tuple[int, int, int], headroom: int) -> None:
    assert compliance(customers, dict(zip((P, D, N), staff, strict=True))).headroom == headroom


def test_minimums_never_decrease_and_bands_tile_the_line() -> None:
    for lower, upper in zip(BANDS, BANDS[1:], strict=False):
        assert lower.high is not None and upper.low == lower.high + 1
        assert all(lower.minimum(c) <= upper.minimum(c) for c in Category)
    assert BANDS[0].low == 0 and BANDS[-1].high is None


@given(st.integers(min_value=0, max_value=20_000), st.integers(min_value=0, max_value=20_000))
def test_band_for_is_monotone_and_matches_its_edges(a: int, b: int) -> None:
    low, high = sorted((a, b))
    band = band_for(low)
    assert low in band and (band.high is None or band.low <= low <= band.high)
    assert BANDS.index(band) <= BANDS.index(band_for(high))
    assert all(band.minimum(c) <= band_for(high).minimum(c) for c in Category)


counts = st.integers(min_value=0, max_value=250)


@given(st.integers(min_value=0, max_value=12_000), counts, counts, counts)
def test_headroom_is_the_largest_compliant_addition(
    customers: int, patrol: int, operators: int, design: int
) -> None:
    staff = {P: patrol, D: operators, N: design}
    status = compliance(customers, staff)
    if status.headroom is None:
        assert status.compliant and compliance(10**9, staff).compliant
    elif status.compliant:
        assert compliance(customers + status.headroom, staff).compliant
        assert not compliance(customers + status.headroom + 1, staff).compliant
    else:
        assert status.headroom == 0


def arc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arc.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rules_staffing_prints_one_json_line_without_a_database() -> None:
    result = arc("rules", "staffing", "--customers", "600")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        '{"customers": 600, "band": "501-1000", "patrol_response": 30, '
        '"duty_operators": 20, "design_installation": 30}\n'
    )
    assert json.loads(arc("rules", "staffing", "--customers", "10001").stdout)["band"] == "10001+"
    negative = arc("rules", "staffing", "--customers", "-5")
    assert negative.returncode == 2 and negative.stdout == ""
    assert "--customers must be 0 or more, got -5" in negative.stderr
