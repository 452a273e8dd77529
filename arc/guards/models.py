"""What an administrator gives for a member of staff, and what is stored and shown back."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from arc.guards.staffing import Category

# 保安员证 numbers differ by province and year (e.g. 京2019100001, 沪BA-20200123):
# letters, digits, the issuing province's character, hyphens. Loose on purpose:
# a typo-sized check, not a claim to know every issuer's format.
CERTIFICATE_PATTERN = re.compile(r"[0-9A-Z\u3400-\u9fff-]{6,32}")
_MIN_DIGITS = 6
# Anyone born before this is not on the payroll; an earlier date is a typing mistake.
_EARLIEST_BIRTH = date(1900, 1, 1)

Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


def parse_shift(text: str) -> tuple[time, time]:
    """Parse ``HH:MM-HH:MM`` in Beijing time (``20:00-08:00`` wraps midnight, ``24:00`` ok)."""
    start, sep, end = text.strip().partition("-")
    if not sep:
        raise ValueError(f"shift must be written HH:MM-HH:MM, e.g. 08:00-20:00, got {text!r}")
    return _clock(start, text), _clock(end, text)


def _clock(part: str, text: str) -> time:
    part = part.strip()
    if part == "24:00":
        return time(0, 0)  # the end of a day is the next day's midnight
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", part)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"shift must be written HH:MM-HH:MM, e.g. 08:00-20:00, got {text!r}")
    return time(int(match[1]), int(match[2]))


def format_shift(start: time | None, end: time | None) -> str | None:
    """``HH:MM-HH:MM``, as ``parse_shift`` reads it (None without a shift)."""
    if start is None or end is None:
        return None
    return f"{start:%H:%M}-{end:%H:%M}"


def parse_position(text: str) -> tuple[float, float]:
    """Parse ``LAT,LON`` in decimal degrees (WGS-84, e.g. ``39.9087,116.3975``)."""
    lat, sep, lon = text.partition(",")
    try:
        if not sep:
            raise ValueError
        return float(lat), float(lon)
    except ValueError:
        raise ValueError(
            f"position must be written LAT,LON in degrees, e.g. 39.9087,116.3975, got {text!r}"
        ) from None


class StaffIn(BaseModel):
    """A member of staff as an administrator adds, replaces or imports them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    category: Category
    certificate_no: str | None = None  # 保安员证号
    certificate_expires: date | None = None  # the last day the certificate is valid
    exam_passed_on: date | None = None  # 公安机关考试 (public-security examination)
    trained_on: date | None = None  # the employer's training
    date_of_birth: date
    beat: str | None = Field(default=None, max_length=100)  # patrol beat (巡逻区域)
    shift_start: time | None = None  # daily, Beijing time; may wrap midnight
    shift_end: time | None = None
    latitude: Latitude | None = None  # last known position
    longitude: Longitude | None = None
    position_at: AwareDatetime | None = None  # when it was known (default: when stored)
    active: bool = True

    @field_validator("name")
    @classmethod
    def _name_rule(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name must not be empty")
        if not value.isprintable():
            raise ValueError("name must not contain control characters (tab, newline, ...)")
        return value

    @field_validator("certificate_no")
    @classmethod
    def _certificate_rule(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().upper()
        digits = sum(c.isascii() and c.isdigit() for c in value)
        if not CERTIFICATE_PATTERN.fullmatch(value) or digits < _MIN_DIGITS:
            shown = value if len(value) <= 40 and value.isprintable() else f"{value[:40]!r}..."
            raise ValueError(
                "certificate number (保安员证号) must be 6-32 letters, digits, hyphens or the "
                f"issuing province's character, with at least {_MIN_DIGITS} digits, got {shown!r}"
            )
        return value

    @field_validator("beat")
    @classmethod
    def _beat_rule(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.isprintable():
            raise ValueError("beat must not contain control characters")
        return value

    @field_validator("date_of_birth")
    @classmethod
    def _birth_rule(cls, value: date) -> date:
        if value < _EARLIEST_BIRTH:
            raise ValueError(f"date of birth {value} is before {_EARLIEST_BIRTH}: a typo?")
        return value

    @model_validator(mode="after")
    def _pairs(self) -> Self:
        if (self.certificate_no is None) != (self.certificate_expires is None):
            raise ValueError(
                "a certificate number and its expiry date go together: give both or neither"
            )
        if (self.shift_start is None) != (self.shift_end is None):
            raise ValueError("a shift has a start and an end: give both or neither")
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("a position has a latitude and a longitude: give both or neither")
        if self.position_at is not None and self.latitude is None:
            raise ValueError("position_at without a position")
        return self

    @property
    def shift(self) -> str | None:
        """The shift as ``HH:MM-HH:MM``, or None."""
        return format_shift(self.shift_start, self.shift_end)

    @property
    def position(self) -> tuple[float, float] | None:
        """(latitude, longitude), or None when unknown."""
        if self.latitude is None or self.longitude is None:
            return None
        return self.latitude, self.longitude


class Staff(StaffIn):
    """A member of staff as stored."""

    staff_id: uuid.UUID
    created_at: datetime
    updated_at: datetime


class StaffOut(Staff):
    """A member of staff as shown: with whether they qualify (R2) on a day, and why not."""

    eligible: bool
    ineligible_reasons: tuple[str, ...]
