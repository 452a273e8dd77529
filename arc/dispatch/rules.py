"""The centre's changes to classification and response plans, checked (REGULATION.md R4).

Theory of operation. The defaults ship in the code (``classification``,
``plans``); a centre overrides them in two tables, ``classification_overrides``
(globally, per account, per zone; by code or by class) and ``response_plans``
(per class, grade and account). This module is what a change must satisfy
before ``arc.dispatch.rules_store`` writes it, and what "what applies here,
and why" means, both without I/O:

- a match is ``SIA:BA``, ``CID:130``, ``class:burglary``, or one of the codes
  of the dispatcher's own incidents, ``ARC:SCHEDULE`` (open/close
  supervision) and ``ARC:LINK`` (a missed link test): the forms the table's
  CHECK allows (migrations 0004, 0011);
- a plan step is ``KIND:SECONDS[:optional]``, its deadline counted from the
  incident's opening, more than 0 and at most a day;
- the level that decided is ``default``, ``global``, ``account`` or ``zone``,
  found by the same lookups the dispatcher makes (``Overrides.find``,
  ``Plans.override_for``), so that what is shown is what it does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Final

from arc.dispatch.classification import (
    CLASS_NAMES_ZH,
    CLASSES,
    DEFAULT_GRADES,
    UNCLASSIFIED,
    Grade,
    Override,
    Overrides,
)
from arc.dispatch.plans import (
    CONFIRMED_STEPS,
    DEFAULT_PLANS,
    FALLBACK_PLAN,
    STEP_NAMES_ZH,
    PlanOverride,
    Plans,
    PlanStep,
    StepKind,
)
from protocols.contact_id import CID_CODES, sia_for_cid
from protocols.events import Qualifier
from protocols.sia_codes import SIA_CODES

CLASSIFICATION_RULE: Final = "报警分级 classification (联网报警运营规范 §8.4.1, REGULATION R4)"
PLAN_RULE: Final = "报警处置预案 response plan (联网报警运营规范 §8.4.1, REGULATION R4)"

# The longest deadline a step may have: the defaults' longest (schedule a
# service visit) is a day, and a step due later than that is not a response.
MAX_DEADLINE: Final = timedelta(days=1)
# Text the tables keep for good and every screen shows: short, one line.
_MAX_TEXT = 64
_MAX_REASON = 500

_SIA = re.compile(r"[A-Z]{2}")
_CID = re.compile(r"[0-9]{3}")
_CLASS = re.compile(r"[a-z_]+")
_SCOPE = re.compile(r"[0-9A-Za-z_.:-]+")
# The dispatcher's own codes (open/close and link-test supervision).
_OWN_CODES: Final = ("ARC:SCHEDULE", "ARC:LINK")
_OWN_CODE_NAMES: Final = {
    "ARC:SCHEDULE": ("open_close", "未按时布防/非时段撤防 open/close outside the schedule"),
    "ARC:LINK": ("communication", "链路测试超时 link test missed"),
}

_UNKNOWN: Final = "代码表中没有 not in the code table"

GRADE_NAMES_ZH: Final = {
    Grade.LIFE: "危及生命 life at risk",
    Grade.URGENT: "紧急 urgent",
    Grade.ATTENTION: "一般 attention",
    Grade.INFORMATION: "信息 information",
}


class RulesRefused(Exception):
    """A change to the rules that is not allowed; ``rule`` names the rule, ``message`` says why."""

    def __init__(self, message: str, rule: str = CLASSIFICATION_RULE) -> None:
        super().__init__(f"{message} ({rule})")
        self.rule = rule
        self.message = message


class Level(StrEnum):
    """Where what applies comes from, least specific first."""

    DEFAULT = "default"  # 默认: the code's table and the class's plan in the code
    GLOBAL = "global"  # 全局: the centre's override for every account
    ACCOUNT = "account"  # 用户: one account's
    ZONE = "zone"  # 防区: one zone of one account


LEVEL_NAMES_ZH: Final = {
    Level.DEFAULT: "默认",
    Level.GLOBAL: "全局",
    Level.ACCOUNT: "用户",
    Level.ZONE: "防区",
}


def class_name(event_class: str) -> str:
    """``盗警 burglary``: a class as people read it."""
    return f"{CLASS_NAMES_ZH.get(event_class, event_class)} {event_class}"


def _check_class(event_class: str, rule: str, what: str = "class") -> str:
    if event_class not in CLASSES:
        raise RulesRefused(
            f"no {what} {event_class!r}; the classes are {', '.join(sorted(CLASSES))}", rule
        )
    return event_class


# -- matches and codes ---------------------------------------------------------------


def parse_match(text: str) -> str:
    """The match (``SIA:BA``, ``CID:130``, ``class:burglary``, ``ARC:LINK``) in ``text``."""
    value = text.strip()
    prefix, colon, rest = value.partition(":")
    kind = prefix.lower()
    if colon and kind == "sia" and _SIA.fullmatch(rest.upper()):
        return f"SIA:{rest.upper()}"
    if colon and kind == "cid" and _CID.fullmatch(rest):
        return f"CID:{rest}"
    if colon and kind == "class" and _CLASS.fullmatch(rest.lower()):
        return "class:" + _check_class(rest.lower(), CLASSIFICATION_RULE)
    if value.upper() in _OWN_CODES:
        return value.upper()
    raise RulesRefused(
        f"{text!r} is not a match: SIA:XX (two letters, e.g. SIA:BA), CID:NNN (three digits,"
        " e.g. CID:130), class:NAME (e.g. class:burglary), ARC:SCHEDULE or ARC:LINK"
    )


@dataclass(frozen=True, slots=True)
class Code:
    """An event code as the dispatcher reads it: its keys, its default class and name."""

    code: str  # as given, normalised: "SIA:BA", "CID:130" or "class:burglary"
    code_key: str | None  # Signal.code_key of such a signal (None: a class, no code)
    cid_key: str | None  # the CID key also looked up (a CID code mapped to SIA)
    default_class: str
    name: str  # "盗警 Burglary alarm", or what the tables do not know
    known: bool  # whether a code table has it

    @property
    def default_grade(self) -> Grade:
        """The grade of its class by default."""
        return DEFAULT_GRADES[self.default_class]


def parse_code(text: str) -> Code:
    """The code ``arc rules show`` asks about: a match, or a bare ``BA`` or ``130``."""
    value = text.strip()
    if _SIA.fullmatch(value.upper()) and ":" not in value:
        value = f"SIA:{value}"
    elif _CID.fullmatch(value):
        value = f"CID:{value}"
    match = parse_match(value)
    kind, _, rest = match.partition(":")
    if kind == "class":
        return Code(match, None, None, rest, class_name(rest), True)
    if kind == "ARC":
        event_class, name = _OWN_CODE_NAMES[match]
        return Code(match, match, None, event_class, name, True)
    if kind == "SIA":
        sia = SIA_CODES.get(rest)
        if sia is None:
            return Code(match, match, None, UNCLASSIFIED, _UNKNOWN, False)
        return Code(match, match, None, sia.event_class.value, f"{sia.name_zh} {sia.name_en}", True)
    cid = CID_CODES.get(rest)
    if cid is None:
        return Code(match, match, None, UNCLASSIFIED, _UNKNOWN, False)
    # A known Contact ID code travels with its SIA code (qualifier 1, a new event),
    # which the dispatcher looks up first.
    sia_code = sia_for_cid(rest, Qualifier.NEW)
    name = f"{cid.name_zh} {cid.name_en}"
    if sia_code is None:
        return Code(match, match, None, cid.event_class.value, name, True)
    return Code(match, f"SIA:{sia_code}", match, cid.event_class.value, name, True)


# -- checked changes -----------------------------------------------------------------


def _check_text(value: str, what: str, rule: str, *, limit: int = _MAX_TEXT) -> str:
    text = value.strip()
    if len(text) > limit:
        raise RulesRefused(f"{what} is at most {limit} characters, got {len(text)}", rule)
    return text


def check_reason(reason: str, rule: str) -> str:
    """The reason of a change, which is recorded: required."""
    text = _check_text(reason, "the reason", rule, limit=_MAX_REASON)
    if not text:
        raise RulesRefused("a change to the rules needs a reason, which is recorded", rule)
    return text


def check_scope(account: str, zone: str, rule: str) -> tuple[str, str]:
    """``(account, zone)`` of a change: "" is every; a zone needs its account."""
    checked = []
    for value, what in ((account, "account"), (zone, "zone")):
        text = _check_text(value, f"the {what}", rule)
        if text and not _SCOPE.fullmatch(text):
            raise RulesRefused(f"the {what} {text!r} has characters an {what} never has", rule)
        checked.append(text)
    if checked[1] and not checked[0]:
        raise RulesRefused(
            f"a zone ({checked[1]}) is a zone of one account: give the account too", rule
        )
    return checked[0], checked[1]


def check_override(
    *, match: str, grade: int, event_class: str | None, account: str, zone: str
) -> Override:
    """The override asked for, checked; ``RulesRefused`` naming the rule otherwise."""
    checked_match = parse_match(match)
    if isinstance(grade, bool) or grade not in tuple(Grade):
        raise RulesRefused(
            f"a grade is 1 ({GRADE_NAMES_ZH[Grade.LIFE]}) to 4"
            f" ({GRADE_NAMES_ZH[Grade.INFORMATION]}), not {grade!r}"
        )
    target = None
    if event_class is not None and event_class.strip():
        target = _check_class(event_class.strip(), CLASSIFICATION_RULE)
    checked_account, checked_zone = check_scope(account, zone, CLASSIFICATION_RULE)
    return Override(
        match=checked_match,
        event_class=target,
        grade=Grade(grade),
        account=checked_account,
        zone=checked_zone,
    )


def parse_step(text: str) -> PlanStep:
    """The step ``KIND:SECONDS[:optional]`` (``:required`` by default), e.g. ``call_police:60``."""
    parts = text.strip().split(":")
    kinds = ", ".join(k.value for k in StepKind)
    if not 2 <= len(parts) <= 3:
        raise RulesRefused(
            f"{text!r} is not a step KIND:SECONDS[:optional] (e.g. dispatch_guard:300)", PLAN_RULE
        )
    try:
        kind = StepKind(parts[0].strip().lower())
    except ValueError:
        raise RulesRefused(f"no step kind {parts[0]!r}; the kinds are {kinds}", PLAN_RULE) from None
    seconds = parts[1].strip()
    if not seconds.isascii() or not seconds.isdigit():
        raise RulesRefused(
            f"the deadline of {text!r} is whole seconds after the incident opened, not {seconds!r}",
            PLAN_RULE,
        )
    required = True
    if len(parts) == 3:
        flag = parts[2].strip().lower()
        if flag not in ("optional", "required"):
            raise RulesRefused(
                f"{text!r}: after the seconds comes optional or required, not {parts[2]!r}",
                PLAN_RULE,
            )
        required = flag == "required"
    return PlanStep(kind, timedelta(seconds=int(seconds)), required)


def seconds(deadline: timedelta) -> str:
    """A deadline in seconds, without ``.0`` or an exponent: ``86400``, ``1.5``."""
    value = deadline.total_seconds()
    return str(int(value)) if value == int(value) else str(value)


def format_step(step: PlanStep) -> str:
    """A step as ``parse_step`` reads it."""
    text = f"{step.kind.value}:{seconds(step.deadline)}"
    return text if step.required else text + ":optional"


def check_plan(
    *, event_class: str, grade: int, account: str, steps: Sequence[PlanStep]
) -> PlanOverride:
    """The plan asked for, checked; ``RulesRefused`` naming the rule otherwise."""
    checked_class = _check_class(event_class.strip(), PLAN_RULE)
    if isinstance(grade, bool) or grade not in (0, 1, 2, 3):
        # A grade-4 signal opens no incident: its plan would never run.
        why = " (grade 4 opens no incident)" if grade == 4 else ""
        raise RulesRefused(
            f"a plan is for grade 1, 2 or 3, or 0 for every grade, not {grade!r}{why}", PLAN_RULE
        )
    checked_account, _ = check_scope(account, "", PLAN_RULE)
    if not steps:
        raise RulesRefused("a plan has at least one step", PLAN_RULE)
    seen: set[StepKind] = set()
    for step in steps:
        if not isinstance(step, PlanStep) or not isinstance(step.kind, StepKind):
            raise RulesRefused(f"{step!r} is not a plan step", PLAN_RULE)
        if step.kind in seen:
            raise RulesRefused(
                f"step {step.kind.value} ({STEP_NAMES_ZH[step.kind]}) appears twice; each kind"
                " once, in the order the operator works them",
                PLAN_RULE,
            )
        seen.add(step.kind)
        if not timedelta(0) < step.deadline <= MAX_DEADLINE:
            raise RulesRefused(
                f"the deadline of step {step.kind.value} is more than 0 and at most"
                f" {seconds(MAX_DEADLINE)} s (a day), not {seconds(step.deadline)} s",
                PLAN_RULE,
            )
    if not any(step.required for step in steps):
        raise RulesRefused(
            "a plan has at least one required step: with none, an incident closes with"
            " nothing done",
            PLAN_RULE,
        )
    if checked_class == "holdup" and StepKind.CALL_KEYHOLDERS in seen:
        raise RulesRefused(
            "a hold-up/duress plan never calls the site (call_keyholders): a call could"
            " endanger the person under threat",
            PLAN_RULE,
        )
    return PlanOverride(
        event_class=checked_class,
        steps=tuple(steps),
        grade=grade or None,
        account=checked_account,
    )


# -- what applies, and why -----------------------------------------------------------


def override_level(override: Override | None) -> Level:
    """The level an override is of (``default`` for none)."""
    if override is None:
        return Level.DEFAULT
    if override.zone:
        return Level.ZONE
    return Level.ACCOUNT if override.account else Level.GLOBAL


def plan_level(plan: PlanOverride | None) -> Level:
    """The level a plan override is of (``default`` for none)."""
    if plan is None:
        return Level.DEFAULT
    return Level.ACCOUNT if plan.account else Level.GLOBAL


@dataclass(frozen=True, slots=True)
class EffectiveClassification:
    """The class and grade a signal of ``code`` gets here, and the override that decided."""

    code: Code
    account: str
    zone: str
    event_class: str
    grade: Grade
    level: Level
    override: Override | None


@dataclass(frozen=True, slots=True)
class EffectivePlan:
    """The steps an incident of this class and grade follows here, and where they come from."""

    account: str
    event_class: str
    grade: Grade
    steps: tuple[PlanStep, ...]
    level: Level
    plan: PlanOverride | None  # the centre's, or None: the code's
    fallback: bool  # the class has no plan in the code: the catch-all one
    confirmed_steps: tuple[PlanStep, ...]  # what a confirmation adds (burglary)

    @property
    def opens_incident(self) -> bool:
        """Grades 1-3 open an incident, and only an incident has a plan."""
        return self.grade < Grade.INFORMATION


def resolve_classification(
    code: Code, overrides: Overrides, *, account: str = "", zone: str = ""
) -> EffectiveClassification:
    """What the dispatcher makes of a (new) signal of ``code`` at ``account``'s ``zone``."""
    # A class asked about (no code): only the class's overrides can apply.
    found = overrides.find(
        account, zone or None, code.code_key or "", code.default_class, code.cid_key
    )
    if found is None:
        return EffectiveClassification(
            code, account, zone, code.default_class, code.default_grade, Level.DEFAULT, None
        )
    return EffectiveClassification(
        code,
        account,
        zone,
        found.event_class or code.default_class,
        found.grade,
        override_level(found),
        found,
    )


def resolve_plan(plans: Plans, *, account: str, event_class: str, grade: Grade) -> EffectivePlan:
    """The plan an incident of ``account``, ``event_class`` and ``grade`` opens with."""
    found = plans.override_for(account, event_class, grade)
    confirmed = CONFIRMED_STEPS.get(event_class, ())
    if found is not None:
        return EffectivePlan(
            account, event_class, grade, found.steps, plan_level(found), found, False, confirmed
        )
    default = DEFAULT_PLANS.get(event_class)
    return EffectivePlan(
        account,
        event_class,
        grade,
        FALLBACK_PLAN if default is None else default,
        Level.DEFAULT,
        None,
        default is None,
        confirmed,
    )


def describe_scope(account: str, zone: str = "") -> str:
    """``全局 global``, ``用户 account 1234``, ``用户 account 1234 防区 zone 003``."""
    if not account:
        return "全局 global"
    return f"用户 account {account}" + (f" 防区 zone {zone}" if zone else "")


# -- what applies at one account ------------------------------------------------------
#
# An account's page lists its own overrides and plans and the global ones, each
# with how far it decides there: a more specific scope wins over any match of a
# less specific one (``Overrides.find``, ``Plans.override_for``), so a global
# override is replaced wherever this account has one for the same signals.


@dataclass(frozen=True, slots=True)
class OverrideHere:
    """A classification override as it concerns one account, and whether it decides there."""

    override: Override
    level: Level
    superseded: bool  # this account's own decide every signal it would
    taken_over_by: tuple[Override, ...]  # this account's own that decide some of its signals


@dataclass(frozen=True, slots=True)
class PlanHere:
    """A plan override as it concerns one account, and the grades it decides there."""

    plan: PlanOverride
    level: Level
    grades: tuple[Grade, ...]  # the grades whose incidents open with it here
    taken_over: tuple[Grade, ...]  # the grades it names where a more specific plan decides


_SCOPE_RANK: Final = {Level.GLOBAL: 0, Level.ACCOUNT: 1, Level.ZONE: 2}
_INCIDENT_GRADES: Final = tuple(g for g in Grade if g < Grade.INFORMATION)


def _competes_with(match: str) -> frozenset[str]:
    """The matches that catch every signal ``match`` catches (itself, its SIA code, its class)."""
    try:
        code = parse_code(match)
    except RulesRefused:
        return frozenset({match})
    keys = (match, code.code_key, code.cid_key, f"class:{code.default_class}")
    return frozenset(k for k in keys if k)


def overrides_at(overrides: Sequence[Override], account: str) -> list[OverrideHere]:
    """The overrides of ``account`` and the global ones, own first, each with how far it applies."""
    here = [o for o in overrides if o.account in ("", account)]
    result: list[OverrideHere] = []
    for o in here:
        level = override_level(o)
        takers = tuple(
            other
            for other in here
            if _SCOPE_RANK[override_level(other)] > _SCOPE_RANK[level]
            and (other.match in _competes_with(o.match) or o.match in _competes_with(other.match))
        )
        superseded = level is Level.GLOBAL and any(
            not t.zone and t.match in _competes_with(o.match) for t in takers
        )
        result.append(OverrideHere(o, level, superseded, takers))
    result.sort(key=lambda h: (h.level is Level.GLOBAL, h.override.zone, h.override.match))
    return result


def plans_at(plans: Sequence[PlanOverride], account: str) -> list[PlanHere]:
    """The plans of ``account`` and the global ones, own first, with the grades each decides."""
    here = [p for p in plans if p.account in ("", account)]
    table = Plans(here)
    result: list[PlanHere] = []
    for p in here:
        named = (Grade(p.grade),) if p.grade else _INCIDENT_GRADES
        deciding = tuple(g for g in named if table.override_for(account, p.event_class, g) == p)
        taken = tuple(g for g in named if g not in deciding)
        result.append(PlanHere(p, plan_level(p), deciding, taken))
    result.sort(key=lambda h: (h.level is Level.GLOBAL, h.plan.event_class, h.plan.grade or 0))
    return result
