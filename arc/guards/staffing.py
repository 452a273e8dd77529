"""The staffing table of 联网报警运营规范 §5.2 表1 (REGULATION R1) as data, and compliance with it.

Pure: no database, no clock. The counts given to ``compliance`` are of staff
who qualify (R2, ``arc.guards.eligibility``); the customers are the accounts
the centre serves.

Every minimum grows (or stays) from one band to the next, so a centre that
meets a band meets every band below it, and compliance can only be lost, never
regained, as customers are added with the same staff. ``headroom`` relies on
that; the unit tests check it of the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

RULE = "联网报警运营规范 §5.2 表1"


class Category(StrEnum):
    """A kind of staff the table counts."""

    PATROL_RESPONSE = "patrol_response"  # 现场处置巡逻
    DUTY_OPERATORS = "duty_operators"  # 人工值守
    DESIGN_INSTALLATION = "design_installation"  # 设计施工

    @property
    def chinese(self) -> str:
        """The term 表1 uses."""
        return _CHINESE[self]


_CHINESE = {
    Category.PATROL_RESPONSE: "现场处置巡逻",
    Category.DUTY_OPERATORS: "人工值守",
    Category.DESIGN_INSTALLATION: "设计施工",
}


@dataclass(frozen=True, slots=True)
class Band:
    """One row of 表1: a range of customers served and the minimum staff for it."""

    low: int
    high: int | None  # None: no upper end (the last row)
    patrol_response: int
    duty_operators: int
    design_installation: int

    @property
    def label(self) -> str:
        """The range as written in reports: ``0-100``, ``101-500``, ..., ``10001+``."""
        return f"{self.low}+" if self.high is None else f"{self.low}-{self.high}"

    def minimum(self, category: Category) -> int:
        """The least number of qualified staff of ``category`` this band requires."""
        value: int = getattr(self, category.value)
        return value

    def __contains__(self, customers: object) -> bool:
        return (
            isinstance(customers, int)
            and customers >= self.low
            and (self.high is None or customers <= self.high)
        )


# 表1. The first row reads "≤ 100": a centre with no customer yet is in it too.
BANDS: tuple[Band, ...] = (
    Band(0, 100, 10, 10, 20),
    Band(101, 500, 20, 15, 25),
    Band(501, 1000, 30, 20, 30),
    Band(1001, 2000, 40, 25, 40),
    Band(2001, 5000, 55, 30, 45),
    Band(5001, 10000, 80, 35, 50),
    Band(10001, None, 200, 40, 100),
)


def band_for(customers: int) -> Band:
    """The row of 表1 for a centre serving ``customers`` customers."""
    if customers < 0:
        raise ValueError(f"customers served cannot be negative, got {customers}")
    for band in BANDS:
        if band.high is None or customers <= band.high:
            return band
    raise AssertionError("the last band has no upper end")  # pragma: no cover


def requirement_json(customers: int) -> dict[str, int | str]:
    """The minimum staff for ``customers`` customers, as ``arc rules staffing`` prints it."""
    band = band_for(customers)
    return {
        "customers": customers,
        "band": band.label,
        **{category.value: band.minimum(category) for category in Category},
    }


@dataclass(frozen=True, slots=True)
class CategoryStatus:
    """One category of staff against its minimum."""

    category: Category
    required: int
    have: int

    @property
    def shortfall(self) -> int:
        """How many more qualified staff the category needs (0 when it has enough)."""
        return max(0, self.required - self.have)


@dataclass(frozen=True, slots=True)
class Compliance:
    """A centre's staff against 表1 for the customers it serves."""

    customers: int
    band: Band
    categories: tuple[CategoryStatus, ...]
    # Customers more the same staff can take before some category falls short:
    # None when they meet even the last band; 0 when they are short already.
    headroom: int | None

    @property
    def compliant(self) -> bool:
        """Whether every category has its minimum."""
        return all(status.shortfall == 0 for status in self.categories)

    @property
    def short(self) -> tuple[CategoryStatus, ...]:
        """The categories below their minimum."""
        return tuple(status for status in self.categories if status.shortfall)

    @property
    def customers_per_patrol_guard(self) -> float | None:
        """Customers for each qualified patrol guard (R1 sizes beats by it); None without one."""
        have = self.status(Category.PATROL_RESPONSE).have
        return None if have == 0 else round(self.customers / have, 2)

    def status(self, category: Category) -> CategoryStatus:
        """The status of one category."""
        return next(s for s in self.categories if s.category is category)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary (``arc rules staffing`` without ``--customers``)."""
        return {
            "customers": self.customers,
            "band": self.band.label,
            "compliant": self.compliant,
            **{
                s.category.value: {
                    "required": s.required,
                    "have": s.have,
                    "shortfall": s.shortfall,
                }
                for s in self.categories
            },
            "customers_per_patrol_guard": self.customers_per_patrol_guard,
            "headroom": self.headroom,
        }

    def shortfall_text(self) -> str:
        """What is short, by category, for an error message (empty when compliant)."""
        return "; ".join(
            f"{s.category.chinese} {s.category.value}: {s.required} required, "
            f"{s.have} qualified, {s.shortfall} short"
            for s in self.short
        )


def compliance(customers: int, eligible: Mapping[Category, int]) -> Compliance:
    """Compare qualified staff (``eligible``, by category; absent is 0) with 表1."""
    band = band_for(customers)
    have = {category: eligible.get(category, 0) for category in Category}
    if any(count < 0 for count in have.values()):
        raise ValueError(f"staff counts cannot be negative, got {dict(eligible)}")
    categories = tuple(
        CategoryStatus(category, band.minimum(category), have[category]) for category in Category
    )
    return Compliance(customers, band, categories, _headroom(customers, have))


def _headroom(customers: int, have: Mapping[Category, int]) -> int | None:
    # The met bands are a prefix of BANDS (minimums never decrease): the last
    # one met bounds the customers these staff may serve.
    met = [band for band in BANDS if all(have[c] >= band.minimum(c) for c in Category)]
    if not met:
        return 0
    top = met[-1]
    if top.high is None:
        return None
    return max(0, top.high - customers)
