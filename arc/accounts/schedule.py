"""Open/close schedules: the hours a customer's premises are open (disarmed), per Beijing weekday.

Theory of operation. A schedule gives each weekday (Monday first) its open
windows, in minutes after Beijing midnight; a day without windows is closed
all day (the site should be armed throughout). Written as lines such as::

    mon-fri 08:00-18:00
    sat 09:00-12:00 14:00-17:00
    sun closed

Days no line names are closed. A window ends after it opens on the same day
(``24:00`` ends at midnight); premises open past midnight are written as two
windows, ``fri 20:00-24:00`` and ``sat 00:00-02:00``, which the supervision
treats as one opening: adjacent windows are merged across midnight, so the
site is due to be armed only at 02:00.

Pure and clock-free: times are passed in (timezone-aware) and read in
Beijing time (``arc.model.BEIJING``, no daylight saving), so the dispatcher's
open/close supervision and its tests are deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from arc.model import BEIJING

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAYS_ZH: Final = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_DAY_MINUTES: Final = 1_440
# What a schedule line looks like, quoted in every parse error.
SYNTAX: Final = (
    'write DAYS WINDOWS or DAYS closed, e.g. "mon-fri 08:00-18:00", '
    '"sat 09:00-12:00 14:00-17:00", "sun closed" (Beijing time)'
)
RULE: Final = "营业时间 open/close schedule"
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
# A week and a day either side: enough to find the next close of any schedule.
_HORIZON: Final = timedelta(days=9)


class ScheduleError(ValueError):
    """A schedule that cannot be read; the message names the line and the rule."""


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """One open window of a day: from ``opens`` to ``closes``, minutes after Beijing midnight."""

    opens: int
    closes: int

    def __post_init__(self) -> None:
        if not 0 <= self.opens < self.closes <= _DAY_MINUTES:
            raise ScheduleError(
                f"{RULE}: a window opens before it closes within one day (00:00-24:00), "
                f"got {_hhmm(self.opens)}-{_hhmm(self.closes)}"
            )

    def __str__(self) -> str:
        return f"{_hhmm(self.opens)}-{_hhmm(self.closes)}"


@dataclass(frozen=True, slots=True)
class Schedule:
    """Open windows for each weekday, Monday first; an empty day is closed all day."""

    days: tuple[tuple[Window, ...], ...]

    def __post_init__(self) -> None:
        if len(self.days) != len(WEEKDAYS):
            raise ScheduleError(f"{RULE}: a schedule has 7 days, got {len(self.days)}")
        for index, windows in enumerate(self.days):
            if list(windows) != sorted(windows):
                raise ScheduleError(f"{RULE}: {WEEKDAYS[index]}: windows out of order")
            for before, after in zip(windows, windows[1:], strict=False):
                if after.opens < before.closes:
                    raise ScheduleError(
                        f"{RULE}: {WEEKDAYS[index]}: windows {before} and {after} overlap"
                    )

    @classmethod
    def closed(cls) -> Schedule:
        """A schedule closed every day."""
        return cls(((),) * len(WEEKDAYS))

    def lines(self) -> list[str]:
        """The schedule as lines ``parse_schedule`` reads back to it, shortest first-day order."""
        return format_schedule(self)

    def openings(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The open intervals overlapping ``start``-``end``, adjacent windows merged.

        An interval still open at the end of the scan reaches a little past
        ``end``; callers treat an end they did not ask about as open-ended.
        """
        local = start.astimezone(BEIJING)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        merged: list[tuple[datetime, datetime]] = []
        while day <= end + timedelta(days=1):
            for window in self.days[day.weekday()]:
                opens = day + timedelta(minutes=window.opens)
                closes = day + timedelta(minutes=window.closes)
                if merged and merged[-1][1] >= opens:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
                else:
                    merged.append((opens, closes))
            day += timedelta(days=1)
        return [(a, b) for a, b in merged if b > start and a < end]

    def is_open(self, at: datetime) -> bool:
        """Whether the premises are open (meant to be disarmed) at ``at``."""
        _aware(at)
        return any(a <= at < b for a, b in self.openings(at, at + timedelta(minutes=1)))

    def allows_disarm(self, at: datetime, lead: timedelta) -> bool:
        """Whether disarming at ``at`` is within the schedule: open, or ``lead`` before opening."""
        _aware(at)
        return any(a - lead <= at < b for a, b in self.openings(at, at + lead + _DAY))

    def next_close(self, after: datetime) -> datetime | None:
        """The first closing (end of a merged opening) after ``after``; None if never closes."""
        _aware(after)
        end = after + _HORIZON
        for _, closes in self.openings(after, end):
            if after < closes < end:
                return closes
        return None

    def last_close(self, before: datetime) -> datetime | None:
        """The latest closing at or before ``before`` within a week; None if there is none."""
        _aware(before)
        start = before - _HORIZON
        closes = [b for a, b in self.openings(start, before) if a > start and b <= before]
        return closes[-1] if closes else None

    def window_text(self, at: datetime) -> str:
        """The day's windows at ``at`` as an operator reads them, e.g. ``周五 fri 08:00-18:00``."""
        local = at.astimezone(BEIJING)
        index = local.weekday()
        windows = " ".join(map(str, self.days[index])) or "closed 全天不营业"
        return f"{WEEKDAYS_ZH[index]} {WEEKDAYS[index]} {windows}"


_DAY = timedelta(days=1)


def _aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("schedule times must be timezone-aware")


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(text: str, word: str, line: str) -> int:
    match = _CLOCK.fullmatch(text)
    if match is None or int(match[1]) > 24 or int(match[2]) > 59:
        raise ScheduleError(
            f"{RULE}: {line!r}: window {word!r}: {text!r} is not a time HH:MM; {SYNTAX}"
        )
    minutes = int(match[1]) * 60 + int(match[2])
    if minutes > _DAY_MINUTES:
        raise ScheduleError(f"{RULE}: {line!r}: window {word!r}: {text!r} is past 24:00")
    return minutes


def _days(text: str, line: str) -> list[int]:
    found: list[int] = []
    for part in text.lower().split(","):
        if part in ("daily", "all"):
            found.extend(range(7))
            continue
        first, sep, last = part.partition("-")
        try:
            a = WEEKDAYS.index(first)
            b = WEEKDAYS.index(last) if sep else a
        except ValueError:
            raise ScheduleError(
                f"{RULE}: {line!r}: {part!r} is not a day or a range of days "
                f"({', '.join(WEEKDAYS)}, daily); {SYNTAX}"
            ) from None
        # A range may wrap the week: sat-mon is Saturday, Sunday, Monday.
        found.extend((a + i) % 7 for i in range((b - a) % 7 + 1))
    return found


def parse_line(line: str) -> tuple[list[int], list[Window] | None]:
    """The weekdays (0 = Monday) and windows of one line; None windows: closed all day."""
    words = line.split()
    if len(words) < 2:
        raise ScheduleError(f"{RULE}: {line!r}: {SYNTAX}")
    days = _days(words[0], line)
    rest = [w for word in words[1:] for w in word.split(",") if w]
    if [w.lower() for w in rest] == ["closed"]:
        return days, None
    windows: list[Window] = []
    for word in rest:
        opens, sep, closes = word.partition("-")
        if not sep:
            raise ScheduleError(f"{RULE}: {line!r}: {word!r} is not a window HH:MM-HH:MM; {SYNTAX}")
        start, end = _minutes(opens, word, line), _minutes(closes, word, line)
        if start >= end:
            raise ScheduleError(
                f"{RULE}: {line!r}: window {word} does not close after it opens on the same "
                f"day; write a window past midnight as two, e.g. fri 20:00-24:00 and "
                f"sat 00:00-02:00"
            )
        windows.append(Window(start, end))
    return days, windows


def parse_schedule(lines: Iterable[str]) -> Schedule:
    """Read schedule lines (days not named are closed); refuse overlaps and contradictions."""
    windows: list[list[Window]] = [[] for _ in WEEKDAYS]
    closed: dict[int, str] = {}
    given = False
    for line in lines:
        if not line.strip():
            continue
        given = True
        days, found = parse_line(line.strip())
        for day in days:
            if found is None:
                if windows[day]:
                    raise ScheduleError(
                        f"{RULE}: {WEEKDAYS[day]} is given open hours and {line.strip()!r}"
                    )
                closed[day] = line.strip()
                continue
            if day in closed:
                raise ScheduleError(
                    f"{RULE}: {WEEKDAYS[day]} is closed ({closed[day]!r}) and given open hours"
                )
            windows[day].extend(found)
    if not given:
        raise ScheduleError(f"{RULE}: no schedule line given; {SYNTAX}")
    for index, day_windows in enumerate(windows):
        day_windows.sort()
        for before, after in zip(day_windows, day_windows[1:], strict=False):
            if after.opens < before.closes:
                raise ScheduleError(
                    f"{RULE}: {WEEKDAYS[index]}: windows {before} and {after} overlap"
                )
    return Schedule(tuple(tuple(w) for w in windows))


def _ranges(days: Sequence[int]) -> str:
    parts: list[str] = []
    start = previous = days[0]
    for day in [*days[1:], -2]:
        if day == previous + 1:
            previous = day
            continue
        if previous == start:
            parts.append(WEEKDAYS[start])
        elif previous == start + 1:
            parts.append(f"{WEEKDAYS[start]},{WEEKDAYS[previous]}")
        else:
            parts.append(f"{WEEKDAYS[start]}-{WEEKDAYS[previous]}")
        start = previous = day
    return ",".join(parts)


def format_schedule(schedule: Schedule) -> list[str]:
    """One line per distinct set of windows, in the order of their first day."""
    groups: dict[tuple[Window, ...], list[int]] = {}
    for index, windows in enumerate(schedule.days):
        groups.setdefault(windows, []).append(index)
    return [
        f"{_ranges(days)} {' '.join(map(str, windows)) if windows else 'closed'}"
        for windows, days in groups.items()
    ]


def from_rows(rows: Iterable[tuple[int, int | None, int | None]]) -> Schedule:
    """The schedule of ``account_schedules`` rows (ISO weekday, opens, closes)."""
    windows: list[list[Window]] = [[] for _ in WEEKDAYS]
    for weekday, opens, closes in rows:
        if opens is not None and closes is not None:
            windows[weekday - 1].append(Window(opens, closes))
    return Schedule(tuple(tuple(sorted(w)) for w in windows))


def to_rows(schedule: Schedule) -> list[tuple[int, int | None, int | None]]:
    """The ``account_schedules`` rows of a schedule: every weekday, closed days as NULLs."""
    rows: list[tuple[int, int | None, int | None]] = []
    for index, windows in enumerate(schedule.days, start=1):
        if not windows:
            rows.append((index, None, None))
        rows.extend((index, w.opens, w.closes) for w in windows)
    return rows
