"""Which of the centre's overrides and plans decide at one account, as its page shows them."""

from __future__ import annotations

from datetime import timedelta

from arc.dispatch.classification import Grade, Override, Overrides
from arc.dispatch.plans import PlanOverride, PlanStep, StepKind
from arc.dispatch.rules import Level, overrides_at, parse_code, plans_at, resolve_classification

GUARD = (PlanStep(StepKind.DISPATCH_GUARD, timedelta(seconds=300)),)
CALL = (PlanStep(StepKind.CALL_KEYHOLDERS, timedelta(seconds=120)),)


def test_own_overrides_come_first_and_replace_the_global_ones() -> None:
    own = Override("SIA:BA", None, Grade.LIFE, account="1234")
    zone = Override("SIA:FA", None, Grade.URGENT, account="1234", zone="003")
    replaced = Override("SIA:BA", None, Grade.URGENT)
    by_class = Override("class:burglary", None, Grade.ATTENTION)
    fire = Override("SIA:FA", None, Grade.LIFE)
    elsewhere = Override("SIA:BA", None, Grade.LIFE, account="9999")
    here = overrides_at([replaced, by_class, fire, elsewhere, own, zone], "1234")
    assert [(h.override, h.level) for h in here] == [
        (own, Level.ACCOUNT),
        (zone, Level.ZONE),
        (replaced, Level.GLOBAL),
        (fire, Level.GLOBAL),
        (by_class, Level.GLOBAL),
    ]
    found = {h.override: h for h in here}
    # SIA:BA everywhere at 1234 is its own; class:burglary still decides its other codes;
    # the global SIA:FA decides every zone but 003.
    assert found[replaced].superseded and found[replaced].taken_over_by == (own,)
    assert not found[by_class].superseded and found[by_class].taken_over_by == (own,)
    assert not found[fire].superseded and found[fire].taken_over_by == (zone,)
    assert not found[own].superseded and found[own].taken_over_by == ()
    table = Overrides([replaced, by_class, fire, own, zone])
    code = parse_code("SIA:BA")
    assert resolve_classification(code, table, account="1234").override == own


def test_an_account_wide_class_override_replaces_a_global_code_one() -> None:
    own = Override("class:burglary", None, Grade.LIFE, account="1234")
    code = Override("CID:130", None, Grade.ATTENTION)  # a burglary code, sent as SIA:BA
    (_, global_one) = overrides_at([code, own], "1234")
    assert global_one.override == code and global_one.superseded


def test_plans_show_the_grades_each_decides_here() -> None:
    own_grade1 = PlanOverride("burglary", GUARD, grade=1, account="1234")
    every = PlanOverride("burglary", CALL)
    fire = PlanOverride("fire", CALL, grade=1)
    own_fire = PlanOverride("fire", GUARD, account="1234")
    here = plans_at(
        [every, fire, own_grade1, own_fire, PlanOverride("fire", CALL, account="9")], "1234"
    )
    assert [(h.plan, h.grades, h.taken_over) for h in here] == [
        (own_grade1, (Grade.LIFE,), ()),
        (own_fire, (Grade.LIFE, Grade.URGENT, Grade.ATTENTION), ()),
        (every, (Grade.URGENT, Grade.ATTENTION), (Grade.LIFE,)),
        (fire, (), (Grade.LIFE,)),  # the account's every-grade plan wins over a global grade's
    ]
