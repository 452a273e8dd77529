"""``arc rules classify | unclassify | plan | unplan | list | show``: the centre's R4 rules.

Added to the ``arc rules`` parser of ``arc.guards.cli`` (beside ``arc rules
staffing``). Each change goes through ``arc.dispatch.rules_store``, which
checks it, writes it with its ``audit_log`` row and so tells the running
dispatchers (NOTIFY ``arc_rules``). Exit status: 0 done, 1 refused (the
message names the rule) or no database, 2 wrong usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import sys
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from arc import audit, runtime
from arc.config import Settings
from arc.db import Connection
from arc.dispatch import rules_store
from arc.dispatch.classification import CLASSES, Grade
from arc.dispatch.plans import STEP_NAMES_ZH, PlanStep, StepKind
from arc.dispatch.rules import (
    GRADE_NAMES_ZH,
    LEVEL_NAMES_ZH,
    EffectiveClassification,
    EffectivePlan,
    RulesRefused,
    class_name,
    describe_scope,
    format_step,
    parse_step,
    seconds,
)
from arc.model import BEIJING
from arc.terminal import print_table

COMMANDS = ("classify", "unclassify", "plan", "unplan", "list", "show")

_MATCH_HELP = "SIA:XX (e.g. SIA:BA), CID:NNN (e.g. CID:130) or class:NAME (e.g. class:burglary)"
_STEP_HELP = (
    "a step KIND:SECONDS[:optional], in order; the deadline counts from the incident's opening"
    " (at most 86400). Kinds: " + ", ".join(k.value for k in StepKind)
)


def _step(text: str) -> PlanStep:
    try:
        return parse_step(text)
    except RulesRefused as refused:
        raise argparse.ArgumentTypeError(refused.message) from None


def _scope(cmd: argparse.ArgumentParser, *, zone: bool) -> None:
    cmd.add_argument("--account", default="", metavar="A", help="one account's (default: global)")
    if zone:
        cmd.add_argument("--zone", default="", metavar="Z", help="one zone of --account")


def add_commands(topics: Any) -> None:
    """Add the classification and plan subcommands to the ``arc rules`` parser."""
    classify = topics.add_parser(
        "classify",
        help="override how a code or class is classed and graded (audited)",
        description="Grade signals matching MATCH (and optionally give them another class), "
        "globally, for one account or one zone of it. The most specific override wins: zone, "
        "account, global; within one, a code before a class. Audited; the dispatchers apply "
        "it to the next signal.",
    )
    classify.add_argument("match", metavar="MATCH", help=_MATCH_HELP)
    classify.add_argument(
        "--grade", type=int, required=True, metavar="N", help="1 life at risk ... 4 information"
    )
    classify.add_argument(
        "--class", dest="event_class", metavar="CLASS", help=", ".join(sorted(CLASSES))
    )
    _scope(classify, zone=True)
    classify.add_argument("--reason", required=True, help="why (recorded)")

    unclassify = topics.add_parser(
        "unclassify",
        help="remove a classification override (audited)",
        description="Remove the override of MATCH in this scope; the next level applies again.",
    )
    unclassify.add_argument("match", metavar="MATCH", help=_MATCH_HELP)
    _scope(unclassify, zone=True)
    unclassify.add_argument("--reason", required=True, help="why (recorded)")

    plan = topics.add_parser(
        "plan",
        help="set the response plan of a class (audited)",
        description="Replace the steps of CLASS's response plan (报警处置预案), for one grade or "
        "every grade, globally or for one account. An incident keeps the plan it opened with.",
    )
    plan.add_argument("event_class", metavar="CLASS", help=", ".join(sorted(CLASSES)))
    plan.add_argument("--grade", type=int, default=0, metavar="N", help="1-3; 0 every grade (0)")
    _scope(plan, zone=False)
    plan.add_argument(
        "--step",
        dest="steps",
        type=_step,
        action="append",
        required=True,
        metavar="KIND:SECONDS[:optional]",
        help=_STEP_HELP,
    )
    plan.add_argument("--reason", required=True, help="why (recorded)")

    unplan = topics.add_parser(
        "unplan",
        help="remove the centre's plan of a class (audited)",
        description="Remove CLASS's plan in this scope; the next level (or the default) applies.",
    )
    unplan.add_argument("event_class", metavar="CLASS")
    unplan.add_argument("--grade", type=int, default=0, metavar="N", help="0 every grade (0)")
    _scope(unplan, zone=False)
    unplan.add_argument("--reason", required=True, help="why (recorded)")

    listing = topics.add_parser(
        "list",
        help="the centre's classification overrides and plans, with who, when and why",
        description="List the overrides and plans the centre has set (the defaults are in "
        "docs/dispatch.md).",
    )
    listing.add_argument("--json", action="store_true", help="one JSON object")

    show = topics.add_parser(
        "show",
        help="which class, grade and plan a code gets here, and from which level",
        description="What a new signal of CODE at this account and zone is classed, graded and "
        "planned as, and whether each comes from the default, a global, an account or a zone "
        "override. CODE: SIA:BA or BA, CID:130 or 130, class:burglary.",
    )
    show.add_argument("code", metavar="CODE")
    _scope(show, zone=True)
    show.add_argument("--json", action="store_true", help="one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run one of the ``arc rules`` subcommands of this module; return the exit status."""
    name = f"arc rules {args.rules_command}"
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"{name}: configuration: {error}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_run(settings, args))
    except runtime.DatabaseUnavailable as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    except RulesRefused as refused:
        print(f"{name}: {refused}", file=sys.stderr)
        return 1


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    # Written once the connection is closed: a reader that leaves early (``| head``)
    # is then not mistaken for a database that went away.
    out = io.StringIO()
    async with runtime.admin_connection(settings, application_name="arc-rules") as conn:
        with contextlib.redirect_stdout(out):
            status = await _act(conn, args)
    sys.stdout.write(out.getvalue())
    return status


async def _act(conn: Connection, args: argparse.Namespace) -> int:
    action = args.rules_command
    actor = audit.cli_actor()
    if action == "classify":
        override = await rules_store.set_override(
            conn=conn,
            match=args.match,
            grade=args.grade,
            event_class=args.event_class,
            account=args.account,
            zone=args.zone,
            reason=args.reason,
            actor=actor,
        )
        target = "" if override.event_class is None else f"{class_name(override.event_class)} "
        scope = describe_scope(override.account, override.zone)
        print(
            f"报警分级已设置 classification set: {scope}"
            f" {override.match} → {target}{_grade(override.grade)}"
        )
        return 0
    if action == "unclassify":
        removed = await rules_store.remove_override(
            conn=conn,
            match=args.match,
            account=args.account,
            zone=args.zone,
            reason=args.reason,
            actor=actor,
        )
        now = await rules_store.effective_classification(
            conn=conn, code=removed.match, account=removed.account, zone=removed.zone
        )
        print(
            f"报警分级已删除 classification override removed: "
            f"{describe_scope(removed.account, removed.zone)} {removed.match}; 现行 now:"
            f" {class_name(now.event_class)} {_grade(now.grade)} ({_level(now)})"
        )
        return 0
    if action == "plan":
        plan = await rules_store.set_plan(
            conn=conn,
            event_class=args.event_class,
            grade=args.grade,
            account=args.account,
            steps=args.steps,
            reason=args.reason,
            actor=actor,
        )
        print(
            f"处置预案已设置 response plan set: {describe_scope(plan.account)}"
            f" {class_name(plan.event_class)} {_plan_grade(plan.grade or 0)}:"
            f" {', '.join(format_step(s) for s in plan.steps)}"
        )
        return 0
    if action == "unplan":
        gone = await rules_store.remove_plan(
            conn=conn,
            event_class=args.event_class,
            grade=args.grade,
            account=args.account,
            reason=args.reason,
            actor=actor,
        )
        print(
            f"处置预案已删除 response plan removed: {describe_scope(gone.account)}"
            f" {class_name(gone.event_class)} {_plan_grade(gone.grade or 0)}"
        )
        return 0
    if action == "list":
        return await _list(conn, as_json=args.json)
    return await _show(conn, args)


def _beijing(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _grade(grade: int) -> str:
    return f"{grade} {GRADE_NAMES_ZH[Grade(grade)]}"


def _plan_grade(grade: int) -> str:
    return "各级 every grade" if not grade else f"{grade} 级 grade {grade}"


def _level(effective: EffectiveClassification | EffectivePlan) -> str:
    return f"{LEVEL_NAMES_ZH[effective.level]} {effective.level.value}"


def _write_json(data: object) -> None:
    print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


async def _list(conn: Connection, *, as_json: bool) -> int:
    overrides = await rules_store.list_overrides(conn=conn)
    plans = await rules_store.list_plans(conn=conn)
    if as_json:
        _write_json(
            {
                "overrides": [o.as_json() for o in overrides],
                "plans": [p.as_json() for p in plans],
            }
        )
        return 0
    print("报警分级 classification overrides")
    table = [("SCOPE", "MATCH", "CLASS", "GRADE", "UPDATED (北京时间)", "BY", "REASON")]
    for o in overrides:
        r = o.override
        table.append(
            (
                describe_scope(r.account, r.zone),
                r.match,
                "(保留 kept)" if r.event_class is None else class_name(r.event_class),
                _grade(r.grade),
                _beijing(o.updated_at),
                o.updated_by,
                o.reason,
            )
        )
    print_table(table)
    print(f"{len(overrides)} override{'s' if len(overrides) != 1 else ''}")
    print()
    print("处置预案 response plans")
    table = [("SCOPE", "CLASS", "GRADE", "STEPS", "UPDATED (北京时间)", "BY", "REASON")]
    for p in plans:
        table.append(
            (
                describe_scope(p.plan.account),
                class_name(p.plan.event_class),
                _plan_grade(p.plan.grade or 0),
                " ".join(format_step(s) for s in p.plan.steps),
                _beijing(p.updated_at),
                p.updated_by,
                p.reason,
            )
        )
    print_table(table)
    print(f"{len(plans)} plan{'s' if len(plans) != 1 else ''}; other classes follow the defaults")
    return 0


def _step_json(step: PlanStep) -> dict[str, object]:
    return {**step.as_json(), "name_zh": STEP_NAMES_ZH[step.kind]}


async def _show(conn: Connection, args: argparse.Namespace) -> int:
    verdict = await rules_store.effective_classification(
        conn=conn, code=args.code, account=args.account, zone=args.zone
    )
    plan = await rules_store.effective_plan(
        conn=conn, event_class=verdict.event_class, grade=verdict.grade, account=verdict.account
    )
    stored_override = next(
        (
            o
            for o in await rules_store.list_overrides(conn=conn)
            if verdict.override is not None and o.override == verdict.override
        ),
        None,
    )
    stored_plan = next(
        (
            p
            for p in await rules_store.list_plans(conn=conn)
            if plan.plan is not None and p.plan == plan.plan
        ),
        None,
    )
    code = verdict.code
    if args.json:
        _write_json(
            {
                "code": code.code,
                "name": code.name,
                "known": code.known,
                "looked_up": [k for k in (code.code_key, code.cid_key) if k],
                "default_class": code.default_class,
                "default_grade": int(code.default_grade),
                "account": verdict.account,
                "zone": verdict.zone,
                "event_class": verdict.event_class,
                "grade": int(verdict.grade),
                "level": verdict.level.value,
                "override": None if stored_override is None else stored_override.as_json(),
                "opens_incident": plan.opens_incident,
                "plan": {
                    "level": plan.level.value,
                    "fallback": plan.fallback,
                    "steps": [_step_json(s) for s in plan.steps] if plan.opens_incident else [],
                    "confirmed_adds": [_step_json(s) for s in plan.confirmed_steps],
                    "stored": None if stored_plan is None else stored_plan.as_json(),
                },
            }
        )
        return 0
    looked_up = " + ".join(k for k in (code.code_key, code.cid_key) if k)
    print(f"{code.code} {code.name}" + (f" (查 looked up as {looked_up})" if code.cid_key else ""))
    print(
        f"  {describe_scope(verdict.account, verdict.zone)}; 默认 default:"
        f" {class_name(code.default_class)} {_grade(code.default_grade)}"
    )
    print(f"分类 class   {class_name(verdict.event_class)}")
    print(f"分级 grade   {_grade(verdict.grade)}")
    source = _level(verdict)
    if stored_override is not None:
        o = stored_override.override
        where = o.account + (f" 防区 zone {o.zone}" if o.zone else "")
        source += (
            f" ({where + ', ' if where else ''}{o.match}), {stored_override.updated_by}"
            f" {_beijing(stored_override.updated_at)}: {stored_override.reason}"
        )
    print(f"来源 from    {source}")
    if not plan.opens_incident:
        print("预案 plan    无 none: grade 4 opens no incident (site state and the log only)")
        return 0
    source = _level(plan)
    if stored_plan is not None:
        p = stored_plan.plan
        where = f"{p.account}, " if p.account else ""
        source += (
            f" ({where}{_plan_grade(p.grade or 0)}), {stored_plan.updated_by}"
            f" {_beijing(stored_plan.updated_at)}: {stored_plan.reason}"
        )
    elif plan.fallback:
        source += f": {verdict.event_class} has no plan of its own, the catch-all one"
    print(f"预案 plan    {source}")
    rows = [("", "STEP", "DEADLINE", "")]
    for index, step in enumerate(plan.steps, start=1):
        rows.append(
            (
                f"{index}.",
                f"{STEP_NAMES_ZH[step.kind]} {step.kind.value}",
                f"{seconds(step.deadline)} s",
                "" if step.required else "可选 optional",
            )
        )
    print_table(rows)
    for step in plan.confirmed_steps:
        print(
            f"已确认 confirmed: + {STEP_NAMES_ZH[step.kind]} {step.kind.value}"
            f" {seconds(step.deadline)} s"
        )
    return 0
