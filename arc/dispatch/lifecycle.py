"""The incident state machine, written once: live changes and rebuilds both fold ``apply``.

Theory of operation. An incident is what an operator works: one or more
signals of one account and class that belong together. Its life::

    new ──acknowledge──▶ acknowledged ──step──▶ in_progress
     acknowledged / in_progress ──dispatch──▶ dispatched ──arrive──▶ on_site
     dispatched ──cancel_dispatch──▶ in_progress
     acknowledged / in_progress / on_site ──resolve──▶ resolved ──close──▶ closed
     (on_site: the dispatched guard may resolve too, "site cleared"; people close)

Every change is a ``Change`` (who, when, what). ``apply(state, change)``
either returns the new state or raises ``Refused`` naming the rule it
breaks; a refused change changes nothing. The dispatcher appends each
accepted change to ``incident_log`` (append-only, hash-chained) and keeps
``incidents`` as the projection: folding ``apply`` over an incident's log
rows gives that row back, which is how ``incidents`` is rebuilt.

Some changes happen in any open status: a signal joins (``join``: more
zones, a restore), a step's deadline passes (``escalate``), the grade rises
(``raise_grade``: a second zone, a guard's or video's confirmation), a note.
Closing needs every required plan step done or waived; only a supervisor
waives, with a reason (REGULATION.md R4: the plan is followed, or the
departure from it is recorded).

Storm mode (``arc.dispatch.storm``) adds two changes the system alone makes:
``release`` (a held incident enters the queue; its plan's deadlines count
from then) and ``auto_close`` (an incident nobody has taken is closed as
``storm_logged`` or ``restored``, the departure from the plan recorded in
the change's reason, which names the storm mode).

The incident's stored and published form (JSON) is ``incident_json``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from arc.dispatch.plans import StepKind


class Status(StrEnum):
    """Where an incident stands."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    DISPATCHED = "dispatched"
    ON_SITE = "on_site"
    RESOLVED = "resolved"
    CLOSED = "closed"


# Signals join an incident while it is being worked; after it is resolved a
# new alarm is a new incident.
JOINABLE = frozenset(
    {Status.NEW, Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.DISPATCHED, Status.ON_SITE}
)


class Role(StrEnum):
    """Who makes a change: the centre itself, or a person in a role."""

    SYSTEM = "system"
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    GUARD = "guard"


class Resolution(StrEnum):
    """Why an incident was closed (the regulator's response-time reports group by it)."""

    REAL_ALARM = "real_alarm"  # 真实警情
    FALSE_ALARM = "false_alarm"  # 误报 (cause required)
    TEST = "test"  # 测试
    TECHNICAL_FAULT = "technical_fault"  # 设备故障 (a fault incident, repaired or scheduled)
    RESTORED = "restored"  # 已自行恢复 (a fault or supervision incident that ended by itself)
    DUPLICATE = "duplicate"  # 重复 (of another incident)
    STORM_LOGGED = "storm_logged"  # 风暴模式自动记录 (closed by the system: arc.dispatch.storm)


# What the system closes an untouched incident with (``auto_close``): storm
# mode's log, and a held alarm restored before it reached the queue. People
# may close with ``restored``, never with ``storm_logged``.
AUTOMATIC = frozenset({Resolution.RESTORED, Resolution.STORM_LOGGED})


class FalseAlarmCause(StrEnum):
    """What caused a false alarm; the 12-month false-alarm count is kept per account."""

    USER_ERROR = "user_error"  # 用户操作失误
    EQUIPMENT = "equipment"  # 设备故障
    ENVIRONMENT = "environment"  # 环境因素 (animals, weather, drafts)
    INSTALLATION = "installation"  # 安装问题
    UNKNOWN = "unknown"  # 原因不明


class StepStatus(StrEnum):
    """Where one plan step stands."""

    PENDING = "pending"
    DONE = "done"
    WAIVED = "waived"


class Kind(StrEnum):
    """What a change does (the ``kind`` column of ``incident_log``)."""

    OPEN = "open"
    JOIN = "join"
    ACKNOWLEDGE = "acknowledge"
    STEP_DONE = "step_done"
    STEP_WAIVED = "step_waived"
    DISPATCH = "dispatch"
    GUARD_ACCEPT = "guard_accept"
    GUARD_ARRIVE = "guard_arrive"
    GUARD_REPORT = "guard_report"
    CANCEL_DISPATCH = "cancel_dispatch"
    RAISE_GRADE = "raise_grade"
    ESCALATE = "escalate"
    NOTE = "note"
    RESOLVE = "resolve"
    CLOSE = "close"
    RELEASE = "release"  # a held incident enters the queue (storm mode ``delay``)
    AUTO_CLOSE = "auto_close"  # the system closes an untouched incident (storm mode)


# How a raised grade was confirmed (``raise_grade``'s "confirmation"): by a second
# zone in sequence, by a second zone of another detector technology (PIR and a
# door contact, say: one cause rarely fools both), or by a person (a guard on
# site, an operator who saw it on video).
CONFIRMATIONS = frozenset({"sequential", "two_technology", "person"})


class Refused(Exception):
    """A change the rules do not allow; ``rule`` names the rule, ``message`` says why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} ({rule})")
        self.rule = rule
        self.message = message


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the incident's response plan, as it was when the incident opened."""

    kind: str  # arc.dispatch.plans.StepKind value
    deadline: datetime
    required: bool
    status: StepStatus = StepStatus.PENDING
    by: str | None = None
    outcome: str | None = None
    done_at: datetime | None = None
    escalated: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """One change to one incident: what ``incident_log`` stores, one row each."""

    kind: Kind
    at: datetime
    actor: str
    role: Role
    details: Mapping[str, Any] = field(default_factory=dict)
    signal_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident's state: the ``incidents`` projection of its log."""

    incident_id: uuid.UUID
    account: str
    event_class: str
    grade: int
    status: Status
    opened_at: datetime
    updated_at: datetime
    title: str
    steps: tuple[Step, ...]
    zones: frozenset[str] = frozenset()
    zones_in_alarm: frozenset[str] = frozenset()  # zones whose last signal was not a restore
    restored: bool = False  # every alarm of it restored: shown to the operator, not hidden
    signal_count: int = 1
    first_signal_id: uuid.UUID | None = None
    owner: str | None = None  # the operator who took it
    guard: str | None = None  # staff id of the dispatched guard
    guard_dispatched_at: datetime | None = None  # the response clocks start here
    guard_accepted_at: datetime | None = None
    guard_arrived_at: datetime | None = None
    guard_cleared_at: datetime | None = None  # the guard reported the site cleared
    confirmed: bool = False
    # How it was confirmed (CONFIRMATIONS), so that the operator sees why.
    confirmation: str | None = None
    escalation_level: int = 0
    resolution: Resolution | None = None
    cause: FalseAlarmCause | None = None
    closed_at: datetime | None = None
    changes: int = 1  # log rows so far, OPEN included
    # Storm mode (arc.dispatch.storm): the mode that handled it, the accounts
    # a grouped storm incident collects, and until when a delayed one is held
    # out of the queue.
    storm: str | None = None
    accounts: frozenset[str] = frozenset()
    held_until: datetime | None = None
    # The account's false alarms in the 12 months before it opened, and the
    # warning shown when the police's limit is near (arc.dispatch.false_alarms).
    false_alarms_12m: int = 0
    warning: str | None = None

    @property
    def open_required_steps(self) -> tuple[int, ...]:
        """Indexes of required steps neither done nor waived: they keep it from closing."""
        return tuple(
            i for i, s in enumerate(self.steps) if s.required and s.status is StepStatus.PENDING
        )

    def overdue_steps(self, now: datetime) -> tuple[int, ...]:
        """Indexes of pending steps past their deadline that were not escalated yet."""
        if self.status in (Status.RESOLVED, Status.CLOSED) or self.held_until is not None:
            return ()  # a held incident's plan starts when it enters the queue
        return tuple(
            i
            for i, s in enumerate(self.steps)
            if s.status is StepStatus.PENDING and not s.escalated and s.deadline <= now
        )


# Rule names quoted in refusals: the lifecycle and the regulation.
_LIFECYCLE = "事件处置流程 incident lifecycle"
_PLAN = "报警处置预案 response plan (联网报警运营规范 §8.4.1)"


def open_incident(
    *,
    incident_id: uuid.UUID,
    account: str,
    event_class: str,
    grade: int,
    title: str,
    steps: Sequence[tuple[str, timedelta, bool]],
    at: datetime,
    zone: str | None,
    signal_id: uuid.UUID | None,
    actor: str = "arc",
    more: Mapping[str, Any] | None = None,
) -> tuple[Incident, Change]:
    """A new incident and its OPEN change; ``steps`` are (kind, deadline, required).

    ``more`` adds details to the OPEN change; those ``opened`` reads are
    ``storm``, ``held_until``, ``false_alarms_12m`` and ``warning``.
    """
    if not 1 <= grade <= 4:
        raise Refused(_LIFECYCLE, f"grade must be 1 to 4, got {grade}")
    change = Change(
        kind=Kind.OPEN,
        at=at,
        actor=actor,
        role=Role.SYSTEM,
        signal_id=signal_id,
        details={
            "incident_id": str(incident_id),
            "account": account,
            "event_class": event_class,
            "grade": grade,
            "title": title,
            "zone": zone,
            "steps": [
                {"kind": kind, "deadline_s": delay.total_seconds(), "required": required}
                for kind, delay, required in steps
            ],
            **(more or {}),
        },
    )
    return opened(change), change


def opened(change: Change) -> Incident:
    """The incident an OPEN change creates (what a rebuild starts from)."""
    if change.kind is not Kind.OPEN:
        raise Refused(_LIFECYCLE, f"an incident's log starts with open, not {change.kind}")
    d = change.details
    zone = d.get("zone")
    zones = frozenset() if zone is None else frozenset({zone})
    storm = d.get("storm")
    held_until = d.get("held_until")
    return Incident(
        incident_id=uuid.UUID(d["incident_id"]),
        account=d["account"],
        event_class=d["event_class"],
        grade=d["grade"],
        status=Status.NEW,
        opened_at=change.at,
        updated_at=change.at,
        title=d["title"],
        steps=tuple(
            Step(
                kind=s["kind"],
                deadline=change.at + timedelta(seconds=s["deadline_s"]),
                required=s["required"],
            )
            for s in d["steps"]
        ),
        zones=zones,
        zones_in_alarm=zones,
        first_signal_id=change.signal_id,
        storm=None if storm is None else str(storm["mode"]),
        accounts=frozenset({d["account"]}),
        held_until=None if held_until is None else datetime.fromisoformat(held_until),
        false_alarms_12m=int(d.get("false_alarms_12m") or 0),
        warning=d.get("warning"),
    )


def apply(incident: Incident, change: Change) -> Incident:
    """The incident after ``change``; ``Refused`` (changing nothing) if the rules forbid it."""
    if incident.status is Status.CLOSED:
        raise Refused(_LIFECYCLE, "a closed incident does not change; open a new one")
    handler = _HANDLERS.get(change.kind)
    if handler is None:
        raise Refused(_LIFECYCLE, f"{change.kind} cannot be applied to an open incident")
    # The handler says which fields change, and the incident is copied once:
    # copying this many fields costs more than the rest of applying a join.
    return replace(
        incident,
        **handler(incident, change),
        updated_at=max(incident.updated_at, change.at),
        changes=incident.changes + 1,
    )


def rebuild(changes: Sequence[Change]) -> Incident:
    """The incident its log describes: the OPEN change, then every other one in order."""
    if not changes:
        raise Refused(_LIFECYCLE, "an incident needs at least its open change")
    incident = opened(changes[0])
    for change in changes[1:]:
        incident = apply(incident, change)
    return incident


# -- the handlers, one per kind -------------------------------------------------------

# What a handler returns: the fields the change sets, by name (``apply`` sets the rest).
_Fields = dict[str, Any]


def _need_status(incident: Incident, allowed: frozenset[Status], doing: str) -> None:
    if incident.status not in allowed:
        raise Refused(_LIFECYCLE, f"cannot {doing} an incident that is {incident.status}")


def _need_role(change: Change, allowed: frozenset[Role], doing: str) -> None:
    if change.role not in allowed:
        raise Refused(
            "最小权限 least privilege (REGULATION.md R5)",
            f"{change.role} may not {doing}",
        )


_PEOPLE = frozenset({Role.OPERATOR, Role.SUPERVISOR})
_WORKING = frozenset({Status.ACKNOWLEDGED, Status.IN_PROGRESS})


def _join(incident: Incident, change: Change) -> _Fields:
    _need_role(change, frozenset({Role.SYSTEM}), "join a signal")
    _need_status(incident, JOINABLE, "join a signal to")
    zone = change.details.get("zone")
    restore = bool(change.details.get("restore"))
    zones, in_alarm = incident.zones, incident.zones_in_alarm
    if zone is not None:
        zones = zones | {zone}
        in_alarm = in_alarm - {zone} if restore else in_alarm | {zone}
    elif restore:
        in_alarm = frozenset()
    account = change.details.get("account")  # another account joining a storm incident
    return {
        "zones": zones,
        "zones_in_alarm": in_alarm,
        "restored": restore and not in_alarm,
        "signal_count": incident.signal_count + 1,
        "accounts": incident.accounts if account is None else incident.accounts | {account},
    }


def _acknowledge(incident: Incident, change: Change) -> _Fields:
    _need_role(change, _PEOPLE, "take an incident")
    _need_status(incident, frozenset({Status.NEW}), "take")
    return {"status": Status.ACKNOWLEDGED, "owner": change.actor}


def _step_index(incident: Incident, change: Change) -> int:
    index = change.details.get("step")
    if not isinstance(index, int) or not 0 <= index < len(incident.steps):
        raise Refused(_PLAN, f"the plan has no step {index!r}")
    if incident.steps[index].status is not StepStatus.PENDING:
        raise Refused(_PLAN, f"step {index} is {incident.steps[index].status} already")
    return index


def _with_step(incident: Incident, index: int, step: Step) -> tuple[Step, ...]:
    return incident.steps[:index] + (step,) + incident.steps[index + 1 :]


def _step_done(incident: Incident, change: Change) -> _Fields:
    _need_role(change, _PEOPLE, "complete a plan step")
    # Also once resolved: a step done on the phone is often recorded after the guard cleared.
    _need_status(
        incident,
        _WORKING | {Status.DISPATCHED, Status.ON_SITE, Status.RESOLVED},
        "work the plan of",
    )
    index = _step_index(incident, change)
    step = replace(
        incident.steps[index],
        status=StepStatus.DONE,
        by=change.actor,
        outcome=str(change.details.get("outcome") or ""),
        done_at=change.at,
    )
    status = Status.IN_PROGRESS if incident.status is Status.ACKNOWLEDGED else incident.status
    return {"steps": _with_step(incident, index, step), "status": status}


def _reason(change: Change, doing: str) -> str:
    reason = str(change.details.get("reason") or "").strip()
    if not reason:
        raise Refused(_PLAN, f"{doing} needs a reason, which is recorded")
    return reason


def _step_waived(incident: Incident, change: Change) -> _Fields:
    _need_role(change, frozenset({Role.SUPERVISOR}), "waive a plan step")
    index = _step_index(incident, change)
    step = replace(
        incident.steps[index],
        status=StepStatus.WAIVED,
        by=change.actor,
        outcome=_reason(change, "waiving a step"),
        done_at=change.at,
    )
    return {"steps": _with_step(incident, index, step)}


def _dispatch(incident: Incident, change: Change) -> _Fields:
    _need_role(change, _PEOPLE, "dispatch a guard")
    _need_status(incident, _WORKING, "dispatch a guard to")
    guard = str(change.details.get("guard") or "")
    if not guard:
        raise Refused(_LIFECYCLE, "dispatch names the guard")
    if change.details.get("override") is not None:
        _reason(change, "overriding the proposed guard")
    # Sending the guard is the plan's "dispatch a guard" step, done by this change.
    steps = incident.steps
    for index, step in enumerate(steps):
        if step.kind == StepKind.DISPATCH_GUARD and step.status is StepStatus.PENDING:
            done = replace(
                step, status=StepStatus.DONE, by=change.actor, outcome=guard, done_at=change.at
            )
            steps = _with_step(incident, index, done)
            break
    return {
        "steps": steps,
        "status": Status.DISPATCHED,
        "guard": guard,
        "guard_dispatched_at": change.at,
        "guard_accepted_at": None,
        "guard_arrived_at": None,
    }


def _need_the_guard(incident: Incident, change: Change, doing: str) -> None:
    _need_role(change, frozenset({Role.GUARD}), doing)
    if change.actor != incident.guard:
        raise Refused(_LIFECYCLE, f"only the dispatched guard may {doing}")


def _guard_accept(incident: Incident, change: Change) -> _Fields:
    _need_the_guard(incident, change, "accept the dispatch")
    _need_status(incident, frozenset({Status.DISPATCHED}), "accept")
    if incident.guard_accepted_at is not None:
        raise Refused(_LIFECYCLE, "the guard accepted already")
    return {"guard_accepted_at": change.at}


def _guard_arrive(incident: Incident, change: Change) -> _Fields:
    _need_the_guard(incident, change, "report arrival")
    _need_status(incident, frozenset({Status.DISPATCHED}), "arrive at")
    if incident.guard_accepted_at is None:
        raise Refused(_LIFECYCLE, "the guard accepts the dispatch before arriving")
    return {"status": Status.ON_SITE, "guard_arrived_at": change.at}


def _guard_report(incident: Incident, change: Change) -> _Fields:
    _need_the_guard(incident, change, "report from the site")
    _need_status(incident, frozenset({Status.ON_SITE}), "report on")
    return {}


def _cancel_dispatch(incident: Incident, change: Change) -> _Fields:
    _need_role(change, _PEOPLE, "cancel a dispatch")
    _need_status(incident, frozenset({Status.DISPATCHED}), "cancel the dispatch of")
    _reason(change, "cancelling a dispatch")
    return {
        "status": Status.IN_PROGRESS,
        "guard": None,
        "guard_dispatched_at": None,
        "guard_accepted_at": None,
        "guard_arrived_at": None,
    }


def _raise_grade(incident: Incident, change: Change) -> _Fields:
    _need_status(incident, JOINABLE, "raise the grade of")
    grade = change.details.get("grade")
    if not isinstance(grade, int) or not 1 <= grade < incident.grade:
        raise Refused(_LIFECYCLE, f"grade {grade!r} is not above grade {incident.grade}")
    _reason(change, "raising the grade")
    added = tuple(
        Step(
            kind=s["kind"],
            deadline=change.at + timedelta(seconds=s["deadline_s"]),
            required=s["required"],
        )
        for s in change.details.get("steps", ())
    )
    how = change.details.get("confirmation")
    if how not in CONFIRMATIONS:
        # Rows written before the kind was recorded were the dispatcher's sequential ones.
        how = "sequential" if change.role is Role.SYSTEM else "person"
    return {"grade": grade, "confirmed": True, "confirmation": how, "steps": incident.steps + added}


def _escalate(incident: Incident, change: Change) -> _Fields:
    _need_role(change, frozenset({Role.SYSTEM, Role.SUPERVISOR}), "escalate")
    _need_status(incident, JOINABLE, "escalate")
    index = change.details.get("step")
    steps = incident.steps
    if index is not None:
        if not isinstance(index, int) or not 0 <= index < len(steps):
            raise Refused(_PLAN, f"the plan has no step {index!r}")
        if steps[index].escalated:
            raise Refused(_PLAN, f"step {index} was escalated already")
        steps = _with_step(incident, index, replace(steps[index], escalated=True))
    return {"steps": steps, "escalation_level": incident.escalation_level + 1}


def _note(incident: Incident, change: Change) -> _Fields:
    if not str(change.details.get("text") or "").strip():
        raise Refused(_LIFECYCLE, "a note needs text")
    return {}


def _resolve(incident: Incident, change: Change) -> _Fields:
    if change.role is Role.GUARD:
        # The guard on site clears it (现场处置完毕); an operator still closes it
        # with the resolution code.
        _need_the_guard(incident, change, "clear the site")
        _need_status(incident, frozenset({Status.ON_SITE}), "clear")
        return {"status": Status.RESOLVED, "guard_cleared_at": change.at}
    _need_role(change, _PEOPLE, "resolve an incident")
    _need_status(incident, _WORKING | {Status.ON_SITE}, "resolve")
    return {"status": Status.RESOLVED}


def _close(incident: Incident, change: Change) -> _Fields:
    _need_role(change, _PEOPLE, "close an incident")
    _need_status(incident, frozenset({Status.RESOLVED}), "close")
    try:
        resolution = Resolution(str(change.details.get("resolution")))
    except ValueError:
        codes = ", ".join(r for r in Resolution if r is not Resolution.STORM_LOGGED)
        raise Refused(_LIFECYCLE, f"closing needs a resolution code ({codes})") from None
    if resolution is Resolution.STORM_LOGGED:
        raise Refused(_LIFECYCLE, "storm_logged is given by storm mode only, not by people")
    cause = None
    if resolution is Resolution.FALSE_ALARM:
        try:
            cause = FalseAlarmCause(str(change.details.get("cause")))
        except ValueError:
            raise Refused(
                _LIFECYCLE, f"a false alarm is closed with its cause ({', '.join(FalseAlarmCause)})"
            ) from None
    pending = incident.open_required_steps
    if pending:
        kinds = ", ".join(incident.steps[i].kind for i in pending)
        raise Refused(
            _PLAN, f"required steps are still open ({kinds}); a supervisor may waive them"
        )
    return {
        "status": Status.CLOSED,
        "resolution": resolution,
        "cause": cause,
        "closed_at": change.at,
    }


def _release(incident: Incident, change: Change) -> _Fields:
    _need_role(change, frozenset({Role.SYSTEM}), "release a held incident")
    _need_status(incident, JOINABLE, "release")
    if incident.held_until is None:
        raise Refused(_LIFECYCLE, "the incident is not held")
    # The plan's deadlines count from when it reaches the queue, as if it
    # opened then: otherwise a delay longer than a step's deadline would
    # put it in front of the operator already overdue.
    shift = change.at - incident.opened_at
    steps = tuple(
        replace(s, deadline=s.deadline + shift) if s.status is StepStatus.PENDING else s
        for s in incident.steps
    )
    return {"held_until": None, "steps": steps}


def _auto_close(incident: Incident, change: Change) -> _Fields:
    _need_role(change, frozenset({Role.SYSTEM}), "close an incident automatically")
    # Only what no person has touched: once someone took it, people close it.
    _need_status(incident, frozenset({Status.NEW}), "close automatically")
    try:
        resolution = Resolution(str(change.details.get("resolution")))
    except ValueError:
        resolution = None
    if resolution not in AUTOMATIC:
        raise Refused(_LIFECYCLE, f"the system closes with {' or '.join(sorted(AUTOMATIC))} only")
    _reason(change, "closing automatically")
    return {
        "status": Status.CLOSED,
        "resolution": resolution,
        "held_until": None,
        "closed_at": change.at,
    }


_HANDLERS = {
    Kind.JOIN: _join,
    Kind.ACKNOWLEDGE: _acknowledge,
    Kind.STEP_DONE: _step_done,
    Kind.STEP_WAIVED: _step_waived,
    Kind.DISPATCH: _dispatch,
    Kind.GUARD_ACCEPT: _guard_accept,
    Kind.GUARD_ARRIVE: _guard_arrive,
    Kind.GUARD_REPORT: _guard_report,
    Kind.CANCEL_DISPATCH: _cancel_dispatch,
    Kind.RAISE_GRADE: _raise_grade,
    Kind.ESCALATE: _escalate,
    Kind.NOTE: _note,
    Kind.RESOLVE: _resolve,
    Kind.CLOSE: _close,
    Kind.RELEASE: _release,
    Kind.AUTO_CLOSE: _auto_close,
}
