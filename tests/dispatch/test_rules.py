"""The centre's classification and plan changes, checked and resolved without I/O (R4)."""

from __future__ import annotations

import string
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arc.dispatch.classification import (
    CLASSES,
    Grade,
    Override,
    Overrides,
    classify,
)
from arc.dispatch.plans import DEFAULT_PLANS, FALLBACK_PLAN, PlanOverride, Plans, PlanStep, StepKind
from arc.dispatch.rules import (
    MAX_DEADLINE,
    PLAN_RULE,
    Level,
    RulesRefused,
    check_override,
    check_plan,
    format_step,
    parse_code,
    parse_match,
    parse_step,
    resolve_classification,
    resolve_plan,
)
from arc.dispatch.signal import Signal
from protocols.events import EventClass, Qualifier

CALL = PlanStep(StepKind.CALL_KEYHOLDERS, timedelta(seconds=120))
GUARD = PlanStep(StepKind.DISPATCH_GUARD, timedelta(seconds=300))
steps_st = st.builds(
    PlanStep,
    st.sampled_from(list(StepKind)),
    st.integers(1, 86_400).map(lambda s: timedelta(seconds=s)),
    st.booleans(),
)


def signal(code: str | None, cid: str | None, zone: str | None = "003") -> Signal:
    return Signal(
        signal_id=uuid.uuid4(),
        received_at=datetime(2026, 12, 2, tzinfo=UTC),
        account="1234",
        protocol="dc09",
        transport="tcp",
        peer=None,
        qualifier=Qualifier.NEW,
        code=code,
        cid_event=cid,
        event_class=EventClass.BURGLARY,
        zone=zone,
        user_no=None,
        partition_no=None,
        event_text=None,
    )


# -- MATCH -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("SIA:BA", "SIA:BA"),
        (" sia:ba ", "SIA:BA"),
        ("CID:130", "CID:130"),
        ("cid:130", "CID:130"),
        ("class:burglary", "class:burglary"),
        ("CLASS:Open_Close", "class:open_close"),
        ("arc:schedule", "ARC:SCHEDULE"),
        ("ARC:LINK", "ARC:LINK"),
    ],
)
def test_matches_in_the_forms_the_table_allows_are_normalised(text: str, match: str) -> None:
    assert parse_match(text) == match


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("BA", "is not a match"),
        ("SIA:B", "is not a match"),
        ("SIA:BAA", "is not a match"),
        ("CID:13", "is not a match"),
        ("CID:1300", "is not a match"),
        ("class:", "is not a match"),
        ("class:fridge", "no class 'fridge'"),
        ("ARC:OTHER", "is not a match"),
    ],
)
def test_other_matches_are_refused_naming_the_rule(text: str, why: str) -> None:
    with pytest.raises(RulesRefused, match=why) as refused:
        parse_match(text)
    assert "报警分级 classification" in str(refused.value)


@given(st.text(alphabet=string.ascii_letters + string.digits + ":_ ", max_size=20))
def test_parse_match_accepts_only_what_the_table_check_accepts(text: str) -> None:
    try:
        match = parse_match(text)
    except RulesRefused:
        return
    kind, _, rest = match.partition(":")
    assert (
        (kind == "SIA" and len(rest) == 2 and rest.isalpha() and rest.isupper())
        or (kind == "CID" and len(rest) == 3 and rest.isdigit())
        or (kind == "class" and rest in CLASSES)
        or match in ("ARC:SCHEDULE", "ARC:LINK")
    )
    assert parse_match(match) == match  # normal form is a fixed point


@given(st.sampled_from([f"SIA:{a}{b}" for a in "ABZ" for b in "AYZ"] + ["CID:000", "CID:999"]))
def test_codes_match_in_any_case(match: str) -> None:
    assert parse_match(match.lower()) == match


def test_a_contact_id_code_is_looked_up_as_its_sia_code_and_itself() -> None:
    code = parse_code("130")
    assert (code.code, code.code_key, code.cid_key) == ("CID:130", "SIA:BA", "CID:130")
    assert code.default_class == "burglary" and code.known
    unknown = parse_code("SIA:QQ")
    assert (unknown.default_class, unknown.known, unknown.default_grade) == (
        "unclassified",
        False,
        Grade.ATTENTION,
    )
    assert parse_code("BA").code == "SIA:BA"
    assert parse_code("class:fire").code_key is None


# -- KIND:SECONDS[:optional] -------------------------------------------------------


@given(steps_st)
def test_steps_round_trip_through_their_text(step: PlanStep) -> None:
    assert parse_step(format_step(step)) == step


@pytest.mark.parametrize(
    ("text", "step"),
    [
        ("call_police:60", PlanStep(StepKind.CALL_POLICE, timedelta(seconds=60))),
        (" Dispatch_Guard:300:OPTIONAL", PlanStep(StepKind.DISPATCH_GUARD, GUARD.deadline, False)),
        ("verify_video:60:required", PlanStep(StepKind.VERIFY_VIDEO, timedelta(seconds=60))),
    ],
)
def test_steps_are_read(text: str, step: PlanStep) -> None:
    assert parse_step(text) == step


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("call_police", "is not a step KIND:SECONDS"),
        ("call_police:60:optional:x", "is not a step KIND:SECONDS"),
        ("call_the_mayor:60", "no step kind 'call_the_mayor'; the kinds are call_keyholders"),
        ("call_police:-5", "whole seconds"),
        ("call_police:1.5", "whole seconds"),
        ("call_police:١٢", "whole seconds"),  # Arabic-Indic digits are digits, not seconds
        ("call_police:60:maybe", "optional or required"),
    ],
)
def test_bad_steps_are_refused_naming_the_plan_rule(text: str, why: str) -> None:
    with pytest.raises(RulesRefused, match=why) as refused:
        parse_step(text)
    assert refused.value.rule == PLAN_RULE


@given(st.text(max_size=30))
def test_parse_step_raises_nothing_but_a_refusal(text: str) -> None:
    try:
        parse_step(text)
    except RulesRefused:
        pass


# -- checked changes ---------------------------------------------------------------


def test_an_override_is_checked() -> None:
    checked = check_override(
        match="sia:ba", grade=1, event_class=" holdup ", account=" 1234 ", zone="3"
    )
    assert checked == Override("SIA:BA", "holdup", Grade.LIFE, "1234", "3")
    with pytest.raises(RulesRefused, match=r"a zone \(3\) is a zone of one account"):
        check_override(match="SIA:BA", grade=1, event_class=None, account="", zone="3")
    with pytest.raises(RulesRefused, match="no class 'fridge'"):
        check_override(match="SIA:BA", grade=1, event_class="fridge", account="", zone="")
    for grade in (0, 5, True):
        with pytest.raises(RulesRefused, match="a grade is 1"):
            check_override(match="SIA:BA", grade=grade, event_class=None, account="", zone="")
    with pytest.raises(RulesRefused, match="characters an account never has"):
        check_override(match="SIA:BA", grade=1, event_class=None, account="12 34", zone="")


def _plan(*steps: PlanStep, event_class: str = "burglary", grade: int = 0) -> PlanOverride:
    return check_plan(event_class=event_class, grade=grade, account="", steps=steps)


def test_a_plan_is_checked() -> None:
    assert _plan(CALL, GUARD, grade=2) == PlanOverride("burglary", (CALL, GUARD), 2, "")
    assert _plan(CALL).grade is None  # 0: every grade
    refusals = [
        ((), {}, "at least one step"),
        ((CALL, GUARD, CALL), {}, "call_keyholders .* appears twice"),
        ((PlanStep(StepKind.CALL_POLICE, MAX_DEADLINE + timedelta(seconds=1)),), {}, "a day"),
        ((PlanStep(StepKind.CALL_POLICE, timedelta(0)),), {}, "more than 0"),
        ((PlanStep(StepKind.CALL_POLICE, timedelta(seconds=60), False),), {}, "one required"),
        ((CALL,), {"event_class": "holdup"}, "never calls the site"),
        ((CALL,), {"event_class": "fridge"}, "no class 'fridge'"),
        ((CALL,), {"grade": 4}, "grade 4 opens no incident"),
        ((CALL,), {"grade": 7}, "a plan is for grade 1, 2 or 3"),
    ]
    for steps, more, why in refusals:
        with pytest.raises(RulesRefused, match=why) as refused:
            _plan(*steps, **more)  # type: ignore[arg-type]
        assert refused.value.rule == PLAN_RULE


@given(st.lists(steps_st, min_size=1, max_size=9))
def test_a_plan_is_refused_exactly_when_a_kind_repeats_or_none_is_required(
    steps: list[PlanStep],
) -> None:
    kinds = [s.kind for s in steps]
    fine = len(set(kinds)) == len(kinds) and any(s.required for s in steps)
    try:
        plan = _plan(*steps)
    except RulesRefused:
        assert not fine
    else:
        assert fine and plan.steps == tuple(steps)


# -- the dispatcher's lookups, and "what applies and why" ---------------------------


def test_a_contact_id_override_applies_to_a_cid_signal_carrying_its_sia_code() -> None:
    cid_signal = signal("BA", "130")
    by_cid = Overrides([Override("CID:130", None, Grade.LIFE)])
    assert classify(cid_signal, by_cid).grade == Grade.LIFE
    assert classify(signal("BA", None), by_cid).grade == Grade.URGENT  # a SIA panel's BA
    both = Overrides(
        [Override("CID:130", None, Grade.LIFE), Override("SIA:BA", None, Grade.ATTENTION)]
    )
    assert classify(cid_signal, both).grade == 3  # within one scope the SIA code first


def test_zone_overrides_compare_zones_as_account_zones_do() -> None:
    overrides = Overrides([Override("SIA:BA", None, Grade.LIFE, "1234", "3")])
    assert classify(signal("BA", None, zone="003"), overrides).grade == Grade.LIFE
    assert classify(signal("BA", None, zone="004"), overrides).grade == Grade.URGENT
    zero = Overrides([Override("SIA:BA", None, Grade.LIFE, "1234", "000")])
    assert classify(signal("BA", None, zone="0"), zero).grade == Grade.LIFE


def test_the_most_specific_level_decides_and_says_which() -> None:
    overrides = Overrides(
        [
            Override("class:burglary", None, Grade.ATTENTION),
            Override("SIA:BA", "holdup", Grade.LIFE, "1234"),
            Override("CID:130", None, Grade.INFORMATION, "1234", "7"),
        ]
    )
    ba = parse_code("SIA:BA")
    assert resolve_classification(ba, overrides).level is Level.GLOBAL
    assert resolve_classification(ba, overrides, account="5678").grade == Grade.ATTENTION
    here = resolve_classification(ba, overrides, account="1234", zone="003")
    assert (here.level, here.event_class, here.grade) == (Level.ACCOUNT, "holdup", Grade.LIFE)
    cid = resolve_classification(parse_code("130"), overrides, account="1234", zone="007")
    assert (cid.level, cid.grade) == (Level.ZONE, Grade.INFORMATION)
    fire = resolve_classification(parse_code("FA"), overrides, account="1234")
    assert (fire.level, fire.grade, fire.override) == (Level.DEFAULT, Grade.LIFE, None)


def test_the_plan_that_applies_and_its_level() -> None:
    mine = (GUARD,)
    plans = Plans(
        [PlanOverride("burglary", mine, None, "1234"), PlanOverride("burglary", (CALL,), 1)]
    )
    assert resolve_plan(plans, account="1234", event_class="burglary", grade=Grade.LIFE).steps == (
        mine
    )
    top = resolve_plan(plans, account="5678", event_class="burglary", grade=Grade.LIFE)
    assert (top.level, top.steps, top.confirmed_steps[0].kind) == (
        Level.GLOBAL,
        (CALL,),
        StepKind.CALL_POLICE,
    )
    plain = resolve_plan(plans, account="5678", event_class="burglary", grade=Grade.URGENT)
    assert (plain.level, plain.steps, plain.fallback) == (
        Level.DEFAULT,
        DEFAULT_PLANS["burglary"],
        False,
    )
    other = resolve_plan(plans, account="", event_class="other", grade=Grade.ATTENTION)
    assert (other.steps, other.fallback) == (FALLBACK_PLAN, True)
    assert not resolve_plan(plans, account="", event_class="test", grade=Grade(4)).opens_incident
