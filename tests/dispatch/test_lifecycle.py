"""The incident state machine: concrete stories, then hypothesis against its invariants."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from arc.dispatch.incident_json import encode, from_json, to_json
from arc.dispatch.lifecycle import (
    AUTOMATIC,
    Change,
    FalseAlarmCause,
    Incident,
    Kind,
    Refused,
    Resolution,
    Role,
    Status,
    StepStatus,
    apply,
    open_incident,
    rebuild,
)

T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
STEPS = (
    ("call_keyholders", timedelta(seconds=120), True),
    ("verify_video", timedelta(seconds=60), False),
    ("dispatch_guard", timedelta(seconds=300), True),
)


def new(grade: int = 2) -> tuple[Incident, Change]:
    return open_incident(
        incident_id=uuid.uuid4(),
        account="1234",
        event_class="burglary",
        grade=grade,
        title="盗警 防区 003",
        steps=STEPS,
        at=T0,
        zone="003",
        signal_id=uuid.uuid4(),
    )


def change(kind: Kind, role: Role, actor: str, seconds: float, **details: Any) -> Change:
    return Change(
        kind=kind, at=T0 + timedelta(seconds=seconds), actor=actor, role=role, details=details
    )


OP, SUP, GUARD, SYS = Role.OPERATOR, Role.SUPERVISOR, Role.GUARD, Role.SYSTEM


def test_the_whole_story_from_alarm_to_close_rebuilds_from_its_log() -> None:
    incident, opening = new()
    log = [opening]
    story = [
        change(Kind.JOIN, SYS, "arc", 5, zone="004"),
        change(Kind.ACKNOWLEDGE, OP, "op1", 10),
        change(Kind.STEP_DONE, OP, "op1", 30, step=0, outcome="无人接听"),
        change(Kind.DISPATCH, OP, "op1", 40, guard="g1"),
        change(Kind.GUARD_ACCEPT, GUARD, "g1", 50),
        change(Kind.GUARD_ARRIVE, GUARD, "g1", 400),
        change(Kind.GUARD_REPORT, GUARD, "g1", 420, text="后门被撬", photos=["ab" * 32]),
        change(Kind.RESOLVE, OP, "op1", 500),
        change(Kind.CLOSE, OP, "op1", 510, resolution="real_alarm"),
    ]
    for item in story:
        incident = apply(incident, item)
        log.append(item)
    assert incident.status is Status.CLOSED
    assert incident.resolution is Resolution.REAL_ALARM
    assert incident.zones == {"003", "004"}
    assert incident.owner == "op1" and incident.guard == "g1"
    assert incident.guard_arrived_at == T0 + timedelta(seconds=400)
    # Sending the guard was the plan's "dispatch a guard" step.
    assert incident.steps[2].status is StepStatus.DONE and incident.steps[2].outcome == "g1"
    assert incident.changes == len(log)
    assert rebuild(log) == incident


def test_an_open_required_step_keeps_it_open_until_a_supervisor_waives_it() -> None:
    incident, _ = new()
    for item in (
        change(Kind.ACKNOWLEDGE, OP, "op1", 1),
        change(Kind.STEP_DONE, OP, "op1", 2, step=0),
        change(Kind.RESOLVE, OP, "op1", 3),
    ):
        incident = apply(incident, item)
    close = change(Kind.CLOSE, OP, "op1", 4, resolution="false_alarm", cause="user_error")
    with pytest.raises(Refused, match="dispatch_guard") as refused:
        apply(incident, close)
    assert "预案" in refused.value.rule
    with pytest.raises(Refused, match="operator may not waive"):
        apply(incident, change(Kind.STEP_WAIVED, OP, "op1", 4, step=2, reason="客户到场"))
    with pytest.raises(Refused, match="reason"):
        apply(incident, change(Kind.STEP_WAIVED, SUP, "sup", 4, step=2, reason=" "))
    incident = apply(
        incident, change(Kind.STEP_WAIVED, SUP, "sup", 5, step=2, reason="客户到场确认误报")
    )
    assert incident.steps[2].status is StepStatus.WAIVED and incident.steps[2].by == "sup"
    closed = apply(incident, close)
    assert closed.cause is FalseAlarmCause.USER_ERROR


def test_a_false_alarm_needs_its_cause_and_a_closed_incident_never_changes() -> None:
    incident, _ = new()
    incident = apply(incident, change(Kind.ACKNOWLEDGE, OP, "op1", 1))
    incident = apply(incident, change(Kind.STEP_DONE, OP, "op1", 2, step=0))
    incident = apply(incident, change(Kind.STEP_DONE, OP, "op1", 3, step=2))
    incident = apply(incident, change(Kind.RESOLVE, OP, "op1", 4))
    with pytest.raises(Refused, match="cause"):
        apply(incident, change(Kind.CLOSE, OP, "op1", 5, resolution="false_alarm"))
    closed = apply(incident, change(Kind.CLOSE, OP, "op1", 5, resolution="test"))
    with pytest.raises(Refused, match="closed incident"):
        apply(closed, change(Kind.NOTE, OP, "op1", 6, text="补充"))


def test_only_the_dispatched_guard_acts_and_accepts_before_arriving() -> None:
    incident, _ = new()
    incident = apply(incident, change(Kind.ACKNOWLEDGE, OP, "op1", 1))
    incident = apply(incident, change(Kind.DISPATCH, OP, "op1", 2, guard="g1"))
    with pytest.raises(Refused, match="only the dispatched guard"):
        apply(incident, change(Kind.GUARD_ACCEPT, GUARD, "g2", 3))
    with pytest.raises(Refused, match="accepts the dispatch before arriving"):
        apply(incident, change(Kind.GUARD_ARRIVE, GUARD, "g1", 3))
    with pytest.raises(Refused, match="operator may not accept"):
        apply(incident, change(Kind.GUARD_ACCEPT, OP, "g1", 3))


def test_restores_are_shown_and_a_new_alarm_clears_the_mark() -> None:
    incident, _ = new()
    incident = apply(incident, change(Kind.JOIN, SYS, "arc", 1, zone="003", restore=True))
    assert incident.restored and incident.zones_in_alarm == frozenset()
    assert incident.status is Status.NEW  # restored is shown; the operator still works it
    incident = apply(incident, change(Kind.JOIN, SYS, "arc", 2, zone="005"))
    assert not incident.restored and incident.zones_in_alarm == {"005"}


def test_overdue_steps_escalate_once_each() -> None:
    incident, _ = new()
    assert incident.overdue_steps(T0 + timedelta(seconds=59)) == ()
    assert incident.overdue_steps(T0 + timedelta(seconds=120)) == (0, 1)
    incident = apply(incident, change(Kind.ESCALATE, SYS, "arc", 120, step=0))
    assert incident.overdue_steps(T0 + timedelta(seconds=121)) == (1,)
    assert incident.escalation_level == 1
    with pytest.raises(Refused, match="escalated already"):
        apply(incident, change(Kind.ESCALATE, SYS, "arc", 122, step=0))


def test_confirmation_raises_the_grade_and_adds_the_plan_steps_it_calls_for() -> None:
    incident, _ = new(grade=2)
    raised = apply(
        incident,
        change(
            Kind.RAISE_GRADE,
            SYS,
            "arc",
            30,
            grade=1,
            reason="顺序确认: 防区 003, 004",
            steps=[{"kind": "call_police", "deadline_s": 60.0, "required": True}],
        ),
    )
    assert raised.grade == 1 and raised.confirmed
    assert raised.steps[-1].kind == "call_police"
    assert raised.steps[-1].deadline == T0 + timedelta(seconds=90)
    with pytest.raises(Refused, match="not above"):
        apply(raised, change(Kind.RAISE_GRADE, SYS, "arc", 31, grade=1, reason="again"))


# -- hypothesis: any sequence of changes keeps the invariants ---------------------------

# Every status change the lifecycle allows; anything else is a bug.
EDGES = {
    (Status.NEW, Status.ACKNOWLEDGED),
    (Status.ACKNOWLEDGED, Status.IN_PROGRESS),
    (Status.ACKNOWLEDGED, Status.DISPATCHED),
    (Status.IN_PROGRESS, Status.DISPATCHED),
    (Status.DISPATCHED, Status.ON_SITE),
    (Status.DISPATCHED, Status.IN_PROGRESS),
    (Status.ACKNOWLEDGED, Status.RESOLVED),
    (Status.IN_PROGRESS, Status.RESOLVED),
    (Status.ON_SITE, Status.RESOLVED),
    (Status.RESOLVED, Status.CLOSED),
    (Status.NEW, Status.CLOSED),  # auto_close by the system (storm mode), untouched only
}

actors = st.sampled_from(["arc", "op1", "op2", "sup", "g1", "g2"])
details = st.fixed_dictionaries(
    {},
    optional={
        "step": st.integers(-1, 5),
        "guard": st.sampled_from(["g1", "g2", ""]),
        "reason": st.sampled_from(["", "客户确认", "reason"]),
        "resolution": st.sampled_from([*Resolution, "nonsense", None]),
        "cause": st.sampled_from([*FalseAlarmCause, None]),
        "zone": st.sampled_from(["001", "002", None]),
        "restore": st.booleans(),
        "grade": st.integers(0, 5),
        "text": st.sampled_from(["", "note"]),
        "override": st.sampled_from([None, "nearer guard busy"]),
    },
)


_ZONES = st.frozensets(st.text("0123456789", min_size=1, max_size=3), max_size=12)
_TIMES = st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
    timezones=st.sampled_from([UTC, ZoneInfo("Asia/Shanghai")]),
)


@given(
    zones=_ZONES,
    in_alarm=_ZONES,
    accounts=st.frozensets(st.text(min_size=1, max_size=6), max_size=5),
    updated_at=_TIMES,
    done_at=st.none() | _TIMES,
    status=st.sampled_from(Status),
)
def test_encode_writes_the_text_of_to_json(
    zones: frozenset[str],
    in_alarm: frozenset[str],
    accounts: frozenset[str],
    updated_at: datetime,
    done_at: datetime | None,
    status: Status,
) -> None:
    incident, _ = new()
    step = replace(incident.steps[0], done_at=done_at, status=StepStatus.DONE, by="op1")
    incident = replace(
        incident,
        zones=zones,
        zones_in_alarm=in_alarm,
        accounts=accounts,
        updated_at=updated_at,
        status=status,
        steps=(step, *incident.steps[1:]),
        guard_cleared_at=done_at,
    )
    assert encode(incident) == orjson.dumps(to_json(incident))


class IncidentMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.incident, opening = new(grade=3)
        self.log = [opening]
        self.clock = 0.0
        self.escalations = 0

    @rule(choice=st.integers(0, 3), later=st.floats(0, 600))
    def make_a_plausible_change(self, choice: int, later: float) -> None:
        # Random changes are mostly refused; these move the incident on, so
        # that every status, closed included, is reached often.
        incident = self.incident
        pending = [i for i, s in enumerate(incident.steps) if s.status is StepStatus.PENDING]
        guard = incident.guard or "g1"
        options: list[tuple[Kind, Role, str, dict[str, Any]]] = {
            Status.NEW: [(Kind.ACKNOWLEDGE, OP, "op1", {})],
            Status.ACKNOWLEDGED: [(Kind.DISPATCH, OP, "op1", {"guard": "g2"})],
            Status.IN_PROGRESS: [(Kind.DISPATCH, OP, "op1", {"guard": "g1"})],
            Status.DISPATCHED: [
                (Kind.GUARD_ACCEPT, GUARD, guard, {}),
                (Kind.GUARD_ARRIVE, GUARD, guard, {}),
                (Kind.CANCEL_DISPATCH, OP, "op1", {"reason": "改派"}),
            ],
            Status.ON_SITE: [(Kind.RESOLVE, OP, "op1", {})],
            Status.RESOLVED: [
                (Kind.CLOSE, OP, "op1", {"resolution": "false_alarm", "cause": "unknown"}),
                (Kind.CLOSE, OP, "op1", {"resolution": "real_alarm"}),
            ],
            Status.CLOSED: [(Kind.NOTE, OP, "op1", {"text": "after"})],
        }[incident.status]
        if pending:
            options.append((Kind.STEP_DONE, OP, "op1", {"step": pending[0]}))
            options.append((Kind.STEP_WAIVED, SUP, "sup", {"step": pending[-1], "reason": "r"}))
        kind, role, actor, more = options[choice % len(options)]
        self.make_a_change(kind, role, actor, more, later)

    @rule(
        kind=st.sampled_from([k for k in Kind if k is not Kind.OPEN]),
        role=st.sampled_from(list(Role)),
        actor=actors,
        more=details,
        later=st.floats(0, 600),
    )
    def make_a_change(
        self, kind: Kind, role: Role, actor: str, more: dict[str, Any], later: float
    ) -> None:
        self.clock += later
        before = self.incident
        item = change(kind, role, actor, self.clock, **more)
        try:
            after = apply(before, item)
        except Refused as refused:
            assert refused.rule and refused.message
            assert before.status is Status.CLOSED or kind is not Kind.OPEN
            return
        assert before.status is not Status.CLOSED
        if after.status != before.status:
            assert (before.status, after.status) in EDGES
            event(f"reached {after.status}")  # --hypothesis-show-statistics: every status is
        if kind is Kind.ESCALATE:
            self.escalations += 1
        self.incident = after
        self.log.append(item)

    @invariant()
    def the_log_rebuilds_the_projection(self) -> None:
        assert rebuild(self.log) == self.incident
        assert self.incident.changes == len(self.log)

    @invariant()
    def the_state_is_consistent(self) -> None:
        incident = self.incident
        assert 1 <= incident.grade <= 3
        assert incident.escalation_level == self.escalations
        if incident.status in (Status.DISPATCHED, Status.ON_SITE):
            assert incident.guard
        if incident.status is Status.ON_SITE:
            assert incident.guard_accepted_at is not None
        # Closed by the system: nobody took it, and the plan was set aside by storm mode.
        by_system = incident.status is Status.CLOSED and incident.owner is None
        if incident.status is Status.CLOSED:
            assert incident.resolution is not None
            assert by_system or not incident.open_required_steps
            assert (incident.cause is not None) == (incident.resolution is Resolution.FALSE_ALARM)
        if by_system:
            assert incident.resolution in AUTOMATIC
        if incident.status is not Status.NEW and not by_system:
            assert incident.owner is not None
        assert incident.zones_in_alarm <= incident.zones

    @invariant()
    def the_projection_survives_json(self) -> None:
        assert from_json(to_json(self.incident)) == self.incident
        assert encode(self.incident) == orjson.dumps(to_json(self.incident))


IncidentMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None
)
test_incident_machine = IncidentMachine.TestCase
