"""Response plans (报警处置预案, REGULATION.md R4): the ordered steps each class of alarm calls for.

A plan is a list of steps, each with a deadline counted from the moment the
incident opened and whether it is required (an incident closes only when
its required steps are done or a supervisor waived them). The defaults
below are what an experienced supervisor starts from; a centre replaces
them per class and grade, or per account (``response_plans``).

Hold-up and duress are never verified by calling the site: a call could
endanger the person under threat, so the plan goes to the police first.
A confirmed burglary (two zones in sequence, a guard or video seeing an
intruder) adds the step "report to 110", the rule the police apply to
area alarms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class StepKind(StrEnum):
    """What a plan step asks the operator to do."""

    CALL_KEYHOLDERS = "call_keyholders"  # 按顺序联系紧急联系人
    VERIFY_VIDEO = "verify_video"  # 视频复核
    DISPATCH_GUARD = "dispatch_guard"  # 派遣巡逻保安
    CALL_POLICE = "call_police"  # 报警 110
    CALL_FIRE_SERVICE = "call_fire_service"  # 报警 119
    CALL_AMBULANCE = "call_ambulance"  # 呼叫 120
    NOTIFY_CUSTOMER = "notify_customer"  # 通知客户
    SCHEDULE_SERVICE = "schedule_service"  # 安排维修
    REVIEW_SIGNAL = "review_signal"  # 人工核查未知信号


STEP_NAMES_ZH: Final[Mapping[StepKind, str]] = MappingProxyType(
    {
        StepKind.CALL_KEYHOLDERS: "按顺序联系紧急联系人",
        StepKind.VERIFY_VIDEO: "视频复核",
        StepKind.DISPATCH_GUARD: "派遣巡逻保安",
        StepKind.CALL_POLICE: "报警 110",
        StepKind.CALL_FIRE_SERVICE: "报警 119",
        StepKind.CALL_AMBULANCE: "呼叫 120",
        StepKind.NOTIFY_CUSTOMER: "通知客户",
        StepKind.SCHEDULE_SERVICE: "安排维修",
        StepKind.REVIEW_SIGNAL: "人工核查未知信号",
    }
)


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One step: what, by when after the incident opened, and whether it must be done."""

    kind: StepKind
    deadline: timedelta
    required: bool = True

    def as_tuple(self) -> tuple[str, timedelta, bool]:
        """The form ``lifecycle.open_incident`` takes."""
        return (self.kind.value, self.deadline, self.required)

    def as_json(self) -> dict[str, object]:
        """The form a RAISE_GRADE change carries for steps it adds."""
        return {
            "kind": self.kind.value,
            "deadline_s": self.deadline.total_seconds(),
            "required": self.required,
        }


def _s(kind: StepKind, seconds: int, required: bool = True) -> PlanStep:
    return PlanStep(kind, timedelta(seconds=seconds), required)


_K = StepKind
DEFAULT_PLANS: Final[Mapping[str, tuple[PlanStep, ...]]] = MappingProxyType(
    {
        "holdup": (_s(_K.CALL_POLICE, 60), _s(_K.DISPATCH_GUARD, 120), _s(_K.NOTIFY_CUSTOMER, 900)),
        "panic": (
            _s(_K.CALL_KEYHOLDERS, 60),
            _s(_K.DISPATCH_GUARD, 120),
            _s(_K.CALL_POLICE, 180, required=False),
        ),
        "fire": (
            _s(_K.CALL_KEYHOLDERS, 60),
            _s(_K.CALL_FIRE_SERVICE, 120),
            _s(_K.DISPATCH_GUARD, 180),
        ),
        "gas": (
            _s(_K.CALL_KEYHOLDERS, 60),
            _s(_K.DISPATCH_GUARD, 180),
            _s(_K.CALL_FIRE_SERVICE, 300, required=False),
        ),
        "medical": (
            _s(_K.CALL_KEYHOLDERS, 60),
            _s(_K.CALL_AMBULANCE, 120),
            _s(_K.DISPATCH_GUARD, 300, required=False),
        ),
        "burglary": (
            _s(_K.VERIFY_VIDEO, 60, required=False),
            _s(_K.CALL_KEYHOLDERS, 120),
            _s(_K.DISPATCH_GUARD, 300),
        ),
        "tamper": (_s(_K.CALL_KEYHOLDERS, 120), _s(_K.DISPATCH_GUARD, 600, required=False)),
        "water": (_s(_K.CALL_KEYHOLDERS, 120), _s(_K.DISPATCH_GUARD, 900, required=False)),
        "trouble": (_s(_K.NOTIFY_CUSTOMER, 1800), _s(_K.SCHEDULE_SERVICE, 86_400, required=False)),
        "communication": (
            _s(_K.CALL_KEYHOLDERS, 900),
            _s(_K.SCHEDULE_SERVICE, 86_400, required=False),
        ),
        "unclassified": (_s(_K.REVIEW_SIGNAL, 600),),
        # Open/close supervision (未按时布防, 非时段撤防): the keyholders know whether it
        # is them (a manager who forgot, staff working late); a guard when nobody does.
        "open_close": (
            _s(_K.CALL_KEYHOLDERS, 300),
            _s(_K.DISPATCH_GUARD, 1800, required=False),
        ),
    }
)
# A plan for anything a centre raised above grade 4 that has no plan of its own.
FALLBACK_PLAN: Final = (_s(_K.CALL_KEYHOLDERS, 300),)

# What confirmation of a burglary adds (the police's rule for area alarms).
CONFIRMED_STEPS: Final[Mapping[str, tuple[PlanStep, ...]]] = MappingProxyType(
    {"burglary": (_s(_K.CALL_POLICE, 60),)}
)


@dataclass(frozen=True, slots=True)
class PlanOverride:
    """One row of ``response_plans``: this class (and grade, and account) gets these steps."""

    event_class: str
    steps: tuple[PlanStep, ...]
    grade: int | None = None  # None: every grade
    account: str = ""  # "": every account


class Plans:
    """The centre's plans: overrides (account, then global; grade, then any), then defaults."""

    def __init__(self, overrides: Iterable[PlanOverride] = ()) -> None:
        self._table = {(o.account, o.event_class, o.grade): o for o in overrides}

    def override_for(self, account: str, event_class: str, grade: int) -> PlanOverride | None:
        """The centre's plan that applies to this account, class and grade (None: the default)."""
        table = self._table
        if table:
            for key in (
                (account, event_class, grade),
                (account, event_class, None),
                ("", event_class, grade),
                ("", event_class, None),
            ):
                found = table.get(key)
                if found is not None:
                    return found
        return None

    def steps_for(self, account: str, event_class: str, grade: int) -> Sequence[PlanStep]:
        """The steps an incident of this account, class and grade follows."""
        found = self.override_for(account, event_class, grade)
        if found is not None:
            return found.steps
        return DEFAULT_PLANS.get(event_class, FALLBACK_PLAN)
