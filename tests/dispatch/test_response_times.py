"""The guard's clocks: from the dispatch to each of the guard's actions, against the targets."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from arc.dispatch.lifecycle import Change, Incident, Kind, Role, Status, apply, open_incident
from arc.dispatch.response_times import TARGETS, Leg, clocks

T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
STEPS = (
    ("call_keyholders", timedelta(seconds=120), True),
    ("dispatch_guard", timedelta(seconds=300), True),
)


def dispatched(grade: int = 2) -> Incident:
    incident, _ = open_incident(
        incident_id=uuid.uuid4(),
        account="1234",
        event_class="burglary",
        grade=grade,
        title="盗警",
        steps=STEPS,
        at=T0,
        zone="001",
        signal_id=uuid.uuid4(),
    )
    for change in (
        Change(Kind.ACKNOWLEDGE, T0 + timedelta(seconds=5), "op1", Role.OPERATOR),
        Change(Kind.DISPATCH, T0 + timedelta(seconds=60), "op1", Role.OPERATOR, {"guard": "g1"}),
    ):
        incident = apply(incident, change)
    return incident


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=60 + seconds)  # seconds after the dispatch


def test_no_clock_runs_before_a_guard_is_sent() -> None:
    incident, _ = open_incident(
        incident_id=uuid.uuid4(),
        account="1234",
        event_class="burglary",
        grade=2,
        title="盗警",
        steps=STEPS,
        at=T0,
        zone="001",
        signal_id=None,
    )
    assert clocks(incident, T0 + timedelta(hours=1)) == ()


def test_each_clock_stops_at_the_guards_own_action() -> None:
    incident = dispatched()
    assert incident.guard_dispatched_at == at(0)
    for kind, seconds in (
        (Kind.GUARD_ACCEPT, 45),
        (Kind.GUARD_ARRIVE, 1_000),
        (Kind.RESOLVE, 1_600),
    ):
        incident = apply(incident, Change(kind, at(seconds), "g1", Role.GUARD))
    assert incident.status is Status.RESOLVED and incident.guard_cleared_at == at(1_600)
    accept, arrive, clear = clocks(incident, at(99_999))
    assert (accept.leg, accept.elapsed, accept.running, accept.late) == (
        Leg.ACCEPT,
        timedelta(seconds=45),
        False,
        False,
    )
    assert arrive.elapsed == timedelta(seconds=1_000) and arrive.late  # grade 2: 15 minutes
    assert clear.elapsed == timedelta(seconds=1_600) and not clear.late


def test_a_running_clock_is_late_once_its_target_passed() -> None:
    incident = dispatched(grade=1)
    accept = clocks(incident, at(59))[0]
    assert accept.running and not accept.late
    accept = clocks(incident, at(61))[0]
    assert accept.running and accept.late


def test_a_cancelled_dispatch_stops_the_clocks() -> None:
    incident = dispatched()
    incident = apply(
        incident,
        Change(Kind.CANCEL_DISPATCH, at(30), "op1", Role.OPERATOR, {"reason": "客户已到场"}),
    )
    assert clocks(incident, at(10_000)) == ()


@given(grade=st.integers(1, 4), seconds=st.floats(0, 20_000))
def test_late_means_past_the_grades_target(grade: int, seconds: float) -> None:
    incident = replace(dispatched(grade), grade=grade)
    for clock in clocks(incident, at(seconds)):
        assert clock.target == TARGETS[grade][clock.leg]
        assert clock.late == (timedelta(seconds=seconds) > clock.target)
