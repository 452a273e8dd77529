"""Who qualifies (R2, §5.1), what a staff record accepts, and which guards are proposed."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from arc.guards.assignment import distance_m, guard_check, on_shift, propose, rank
from arc.guards.eligibility import adult_from, eligible, ineligibility
from arc.guards.models import Staff, StaffIn, parse_shift
from arc.guards.staffing import Category
from arc.model import BEIJING

ON = date(2025, 6, 1)
CREATED = datetime(2025, 1, 1, tzinfo=UTC)


def qualified(**changes: Any) -> StaffIn:
    data: dict[str, Any] = {
        "name": "张伟",
        "category": Category.PATROL_RESPONSE,
        "certificate_no": "京2019000001",
        "certificate_expires": date(2030, 12, 31),
        "exam_passed_on": date(2019, 3, 1),
        "trained_on": date(2019, 4, 1),
        "date_of_birth": date(1990, 5, 20),
    }
    return StaffIn.model_validate(data | changes)


def stored(name: str, **changes: Any) -> Staff:
    base = qualified(**({"name": name, "shift_start": time(8), "shift_end": time(20)} | changes))
    return Staff.model_validate(
        {**dict(base), "staff_id": uuid.uuid4(), "created_at": CREATED, "updated_at": CREATED}
    )


# --- eligibility --------------------------------------------------------------------------------


def test_a_qualified_guard_has_no_reasons() -> None:
    assert ineligibility(qualified(), ON) == [] and eligible(qualified(), ON)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"active": False}, "inactive (已停用)"),
        (
            {"date_of_birth": date(2008, 6, 2)},
            "under 18 (未满18周岁) on 2025-06-01: 18 on 2026-06-02",
        ),
        ({"certificate_no": None, "certificate_expires": None}, "no security-guard certificate"),
        ({"certificate_expires": date(2025, 5, 31)}, "expired on 2025-05-31 (保安员证已过期)"),
        ({"exam_passed_on": None}, "public-security examination not passed (未通过公安机关考试)"),
        (
            {"exam_passed_on": date(2025, 6, 2)},
            "not passed on 2025-06-01 (recorded for 2025-06-02)",
        ),
        ({"trained_on": None}, "not trained by the employer (未经单位培训)"),
    ],
)
def test_each_reason_names_the_rule(changes: dict[str, Any], reason: str) -> None:
    reasons = ineligibility(qualified(**changes), ON)
    assert len(reasons) == 1 and reason in reasons[0], reasons
    assert "REGULATION R2, 联网报警运营规范 §5.1" in reasons[0]


def test_edges_of_age_and_certificate() -> None:
    assert eligible(qualified(date_of_birth=date(2007, 6, 1)), ON)  # 18 today
    assert not eligible(qualified(date_of_birth=date(2007, 6, 2)), ON)  # 18 tomorrow
    assert eligible(qualified(certificate_expires=ON), ON)  # valid through its last day


@pytest.mark.parametrize(
    ("born", "adult"),
    [
        (date(2007, 2, 28), date(2025, 2, 28)),
        (date(2004, 2, 29), date(2022, 3, 1)),  # 2022 is a common year: 1 March
        (date(1988, 2, 29), date(2006, 3, 1)),
        (date(2006, 3, 1), date(2024, 3, 1)),
        (date(2006, 12, 31), date(2024, 12, 31)),
    ],
)
def test_the_18th_birthday(born: date, adult: date) -> None:
    assert adult_from(born) == adult
    guard = qualified(date_of_birth=born, exam_passed_on=born, trained_on=born)
    assert eligible(guard, adult) and not eligible(guard, adult - timedelta(days=1))


births = st.dates(min_value=date(1930, 1, 1), max_value=date(2030, 12, 31))


@given(births, st.integers(min_value=-400, max_value=400))
def test_age_is_18_from_the_18th_birthday_on(born: date, offset: int) -> None:
    adult = adult_from(born)
    on = adult + timedelta(days=offset)
    assert (adult - born).days in (6574, 6575, 6576)  # 18 years: 4 or 5 leap days
    under = any("under 18" in r for r in ineligibility(qualified(date_of_birth=born), on))
    assert under == (offset < 0)


@given(births, st.dates(min_value=date(1990, 1, 1), max_value=date(2040, 12, 31)))
def test_eligibility_is_monotone_in_time_until_the_certificate_expires(
    born: date, on: date
) -> None:
    guard = qualified(date_of_birth=born, certificate_expires=date(2041, 1, 1))
    later = on + timedelta(days=1)
    if eligible(guard, on):
        assert eligible(guard, later)  # age, exam and training only ever become true


# --- the record ---------------------------------------------------------------------------------


def test_the_record_normalises_and_refuses() -> None:
    guard = qualified(certificate_no=" 沪ba-20200123 ", beat="  ", name=" 王芳 ")
    assert (guard.certificate_no, guard.beat, guard.name) == ("沪BA-20200123", None, "王芳")
    for changes, message in (
        ({"certificate_no": "12345"}, "certificate number (保安员证号) must be"),
        ({"certificate_no": "京ABCDEFGH1"}, "at least 6 digits"),
        ({"certificate_expires": None}, "give both or neither"),
        ({"shift_start": time(8)}, "a shift has a start and an end"),
        ({"latitude": 39.9}, "a latitude and a longitude"),
        ({"latitude": 91.0, "longitude": 116.4}, "less than or equal to 90"),
        ({"latitude": 39.9, "longitude": float("nan")}, "finite number"),
        ({"date_of_birth": date(1899, 12, 31)}, "before 1900-01-01"),
        ({"name": "a\tb"}, "control characters"),
        ({"category": "cook"}, "patrol_response"),
    ):
        with pytest.raises(ValidationError, match=re.escape(message)):
            qualified(**changes)


def test_shifts_are_parsed_and_may_wrap() -> None:
    assert parse_shift("08:00-20:00") == (time(8), time(20))
    assert parse_shift(" 20:00 - 8:00 ") == (time(20), time(8))
    assert parse_shift("00:00-24:00") == (time(0), time(0))  # around the clock
    for bad in ("8-20", "08:00", "25:00-08:00", "08:60-09:00"):
        with pytest.raises(ValueError, match="HH:MM-HH:MM"):
            parse_shift(bad)
    assert on_shift(time(20), time(8), time(23, 59)) and on_shift(time(20), time(8), time(7, 59))
    assert not on_shift(time(20), time(8), time(8)) and on_shift(time(20), time(8), time(20))
    assert on_shift(time(8), time(8), time(3)) and not on_shift(time(8), time(20), time(20))


# --- assignment ---------------------------------------------------------------------------------

GUOMAO = (39.9087, 116.4605)  # the site
AT = datetime(2025, 6, 1, 2, 30, tzinfo=UTC)  # 10:30 in Beijing


def test_distance_is_haversine() -> None:
    assert distance_m(GUOMAO, GUOMAO) == 0
    # Tiananmen to Guomao: about 5.4 km east along Chang'an Avenue.
    assert 5_300 < distance_m((39.9087, 116.3975), GUOMAO) < 5_500
    assert abs(distance_m((0, 0), (0, 180)) - 20_015_115) < 1  # half the equator


def test_propose_ranks_by_distance_then_load_then_name() -> None:
    near = stored("近", latitude=39.9090, longitude=116.4610)
    far = stored("远", latitude=39.95, longitude=116.50)
    busy_a = stored("甲", latitude=39.92, longitude=116.47)
    busy_b = stored("乙", latitude=39.92, longitude=116.47)  # same place, less loaded
    unknown = stored("不知", beat=None)
    loads = {near.staff_id: 3, busy_a.staff_id: 2, busy_b.staff_id: 1}
    proposals = propose(
        [unknown, far, busy_a, busy_b, near],
        site_position=GUOMAO,
        beat=None,
        at=AT,
        open_assignments=loads,
    )
    assert [p.staff.name for p in proposals] == ["近", "乙", "甲", "远", "不知"]
    assert proposals[0].load == 3 and proposals[0].distance_m is not None
    assert proposals[0].distance_m < 60 and proposals[-1].distance_m is None
    # Without the site's position, load decides, then name.
    blind = propose([near, far], site_position=None, beat=None, at=AT, open_assignments=loads)
    assert [(p.staff.name, p.distance_m) for p in blind] == [("远", None), ("近", None)]


def test_every_guard_not_proposed_is_explained() -> None:
    night = stored("夜班", shift_start=time(20), shift_end=time(8))
    operator = stored("值守", category=Category.DUTY_OPERATORS)
    expired = stored("过期", certificate_expires=date(2025, 5, 31))
    elsewhere = stored("望京", beat="朝阳-望京")
    no_beat = stored("无区")
    no_shift = Staff.model_validate(dict(stored("无班")) | {"shift_start": None, "shift_end": None})
    ok = stored("国贸", beat=" 朝阳-国贸 ")
    ranking = rank(
        [night, operator, expired, elsewhere, no_beat, no_shift, ok],
        site_position=GUOMAO,
        beat="朝阳-国贸",
        at=AT,
        open_assignments={},
    )
    assert [p.staff.name for p in ranking.proposals] == ["国贸"]
    why = {e.staff.name: e.reason for e in ranking.excluded}
    assert "off shift at 10:30 Beijing time (shift 20:00-08:00)" in why["夜班"]
    assert "not patrol & on-site response staff (category duty_operators)" in why["值守"]
    assert "保安员证已过期" in why["过期"]
    assert "not on beat 朝阳-国贸 (beat 朝阳-望京)" in why["望京"]
    assert "(beat none)" in why["无区"] and why["无班"].startswith("no shift recorded")
    assert len(why) == 6


def test_the_moment_is_beijing_time_and_must_be_aware() -> None:
    guard = stored("夜班", shift_start=time(20), shift_end=time(8))
    evening_utc = datetime(2025, 6, 1, 13, 0, tzinfo=UTC)  # 21:00 in Beijing
    assert propose([guard], site_position=None, beat=None, at=evening_utc, open_assignments={})
    assert datetime(2025, 6, 1, 21, 0, tzinfo=BEIJING) == evening_utc
    with pytest.raises(ValueError, match="timezone-aware"):
        rank(
            [guard], site_position=None, beat=None, at=AT.replace(tzinfo=None), open_assignments={}
        )


def test_guard_check_answers_the_dispatchers_question() -> None:
    ok, expired = stored("国贸"), stored("过期", certificate_expires=date(2020, 1, 1))
    check = guard_check([ok, expired])
    assert check(str(ok.staff_id), AT) is None
    assert "保安员证已过期" in (check(str(expired.staff_id), AT) or "")
    assert "no member of staff" in (check("nobody", AT) or "")
