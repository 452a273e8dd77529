"""Open/close schedules: the syntax, its round trip, and what "open at" means (Beijing time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arc.accounts.schedule import (
    Schedule,
    ScheduleError,
    Window,
    format_schedule,
    from_rows,
    parse_schedule,
    to_rows,
)
from arc.model import BEIJING

# 2026-11-30 is a Monday.
MONDAY = datetime(2026, 11, 30, tzinfo=BEIJING)


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hh, minutes=mm)


def test_lines_give_each_named_day_its_windows_and_the_others_are_closed() -> None:
    s = parse_schedule(["mon-fri 08:00-18:00", "sat 09:00-12:00,14:00-17:00"])
    assert s.days[0] == (Window(480, 1080),) and s.days[4] == (Window(480, 1080),)
    assert s.days[5] == (Window(540, 720), Window(840, 1020))
    assert s.days[6] == ()
    assert s.lines() == ["mon-fri 08:00-18:00", "sat 09:00-12:00 14:00-17:00", "sun closed"]
    assert parse_schedule(["daily 00:00-24:00"]).lines() == ["mon-sun 00:00-24:00"]
    # A range may wrap the week; several lines may add windows to one day.
    wrapped = parse_schedule(["sat-mon 10:00-12:00", "mon 13:00-14:00"])
    assert wrapped.lines() == [
        "mon 10:00-12:00 13:00-14:00",
        "tue-fri closed",
        "sat,sun 10:00-12:00",
    ]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["mon-fri"], "write DAYS WINDOWS or DAYS closed"),
        (["funday 08:00-18:00"], "'funday' is not a day"),
        (["mon 8-18"], "window '8-18': '8' is not a time HH:MM"),
        (["mon 25:00-26:00"], "'25:00' is not a time"),
        (["mon 24:30-24:40"], "past 24:00"),
        (["fri 20:00-02:00"], "write a window past midnight as two"),
        (["mon 08:00-12:00 11:00-13:00"], "mon: windows 08:00-12:00 and 11:00-13:00 overlap"),
        (["sun closed", "sun 10:00-12:00"], "sun is closed ('sun closed') and given open hours"),
        (["sun 10:00-12:00", "sat-sun closed"], "sun is given open hours and"),
        ([], "no schedule line given"),
    ],
)
def test_bad_lines_are_refused_naming_the_rule(lines: list[str], message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(lines)
    assert message in str(caught.value)
    assert str(caught.value).startswith("营业时间 open/close schedule")


def test_open_at_and_the_closings_follow_beijing_time_and_merge_across_midnight() -> None:
    s = parse_schedule(["mon-fri 08:00-18:00", "fri 20:00-24:00", "sat 00:00-02:00"])
    assert s.is_open(at(0, 8)) and not s.is_open(at(0, 18)) and not s.is_open(at(0, 7, 59))
    # Times in UTC are read in Beijing time: 00:30 UTC is 08:30 in Beijing.
    assert s.is_open(datetime(2026, 11, 30, 0, 30, tzinfo=UTC))
    assert s.next_close(at(0, 9)) == at(0, 18)
    assert s.next_close(at(0, 18)) == at(1, 18)  # strictly after
    # Friday's late window runs on into Saturday: one closing, at 02:00.
    assert s.next_close(at(4, 19)) == at(5, 2)
    assert s.last_close(at(5, 3)) == at(5, 2)
    assert s.last_close(at(0, 7)) == at(-2, 2)  # the Saturday before
    assert s.allows_disarm(at(0, 7, 50), timedelta(minutes=15))
    assert not s.allows_disarm(at(0, 7, 40), timedelta(minutes=15))
    assert not s.allows_disarm(at(0, 18), timedelta(minutes=15))
    assert not s.allows_disarm(at(6, 12), timedelta(minutes=15))  # Sunday: closed
    around_the_clock = parse_schedule(["daily 00:00-24:00"])
    assert around_the_clock.next_close(at(0, 0)) is None
    assert around_the_clock.last_close(at(3, 0)) is None
    assert Schedule.closed().next_close(at(0, 0)) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        s.is_open(datetime(2026, 11, 30, 9))  # noqa: DTZ001 - the naive time it refuses


windows_of_a_day = st.lists(st.tuples(st.integers(0, 1439), st.integers(1, 1440)), max_size=4).map(
    lambda pairs: tuple(
        sorted(
            {
                Window(a, b)
                for a, b in ((min(x, y), max(x, y)) if x != y else (x, x + 1) for x, y in pairs)
            }
        )
    )
)


def _disjoint(day: tuple[Window, ...]) -> tuple[Window, ...]:
    kept: list[Window] = []
    for w in day:
        if not kept or w.opens >= kept[-1].closes:
            kept.append(w)
    return tuple(kept)


schedules = st.lists(windows_of_a_day.map(_disjoint), min_size=7, max_size=7).map(
    lambda days: Schedule(tuple(days))
)


@given(schedules)
def test_the_lines_and_the_rows_of_any_schedule_read_back_to_it(schedule: Schedule) -> None:
    assert parse_schedule(format_schedule(schedule)) == schedule
    assert from_rows(to_rows(schedule)) == schedule
    assert {weekday for weekday, _, _ in to_rows(schedule)} == set(range(1, 8))


@given(schedules, st.integers(0, 7 * 1440 - 1))
def test_open_at_is_exactly_inside_a_window_of_that_day(schedule: Schedule, minute: int) -> None:
    moment = MONDAY + timedelta(minutes=minute)
    day, clock = divmod(minute, 1440)
    inside = any(w.opens <= clock < w.closes for w in schedule.days[day])
    assert schedule.is_open(moment) is inside
    assert schedule.is_open(moment.astimezone(UTC)) is inside
    closes = schedule.next_close(moment)
    if closes is not None:
        # Open right before each closing, closed at it; never a closing while it stays open.
        assert closes > moment
        assert schedule.is_open(closes - timedelta(minutes=1))
        assert not schedule.is_open(closes)
