"""Who may be counted as staff and sent to an alarm (REGULATION R2, 联网报警运营规范 §5.1).

Pure: the day is given. A member of staff qualifies on a day when they are
active, 18 or older, hold a security-guard certificate (保安员证) valid that
day, have passed the public-security examination (公安机关考试) and have been
trained by the employer, all on or before that day. Someone who does not
qualify is not counted against 表1 and is never assigned to an alarm.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

RULE = "REGULATION R2, 联网报警运营规范 §5.1"
ADULT_AGE = 18


class Qualifications(Protocol):
    """What eligibility looks at (``StaffIn`` and ``Staff`` have it)."""

    @property
    def active(self) -> bool: ...
    @property
    def date_of_birth(self) -> date: ...
    @property
    def certificate_no(self) -> str | None: ...
    @property
    def certificate_expires(self) -> date | None: ...
    @property
    def exam_passed_on(self) -> date | None: ...
    @property
    def trained_on(self) -> date | None: ...


def adult_from(born: date) -> date:
    """The day someone born on ``born`` turns 18.

    Born on 29 February: 1 March in a common year, the later of the two
    readings, so that nobody counts as an adult a day early.
    """
    try:
        return born.replace(year=born.year + ADULT_AGE)
    except ValueError:  # 29 February, and the 18th year is not a leap year
        return date(born.year + ADULT_AGE, 3, 1)


def ineligibility(staff: Qualifications, on: date) -> list[str]:
    """Why ``staff`` does not qualify on ``on``; empty when they do."""
    reasons: list[str] = []
    if not staff.active:
        reasons.append(f"inactive (已停用): not counted ({RULE})")
    adult = adult_from(staff.date_of_birth)
    if on < adult:
        reasons.append(f"under 18 (未满18周岁) on {on}: 18 on {adult} ({RULE})")
    if staff.certificate_no is None:
        reasons.append(f"no security-guard certificate (无保安员证) ({RULE})")
    elif staff.certificate_expires is not None and staff.certificate_expires < on:
        reasons.append(
            f"certificate {staff.certificate_no} expired on {staff.certificate_expires} "
            f"(保安员证已过期) ({RULE})"
        )
    if staff.exam_passed_on is None or staff.exam_passed_on > on:
        later = _after(staff.exam_passed_on, on)
        reasons.append(
            f"public-security examination not passed{later} (未通过公安机关考试) ({RULE})"
        )
    if staff.trained_on is None or staff.trained_on > on:
        later = _after(staff.trained_on, on)
        reasons.append(f"not trained by the employer{later} (未经单位培训) ({RULE})")
    return reasons


def _after(day: date | None, on: date) -> str:
    # A date after the day asked about: say so, it is not a missing record.
    return "" if day is None or day <= on else f" on {on} (recorded for {day})"


def eligible(staff: Qualifications, on: date) -> bool:
    """Whether ``staff`` qualifies on ``on`` (R2)."""
    return not ineligibility(staff, on)
