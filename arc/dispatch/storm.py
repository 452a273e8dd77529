"""Storm mode: what a supervisor may switch a class of signals to when it floods in.

Theory of operation. A power cut across a district makes hundreds of panels
report the same class at once (mains lost, communication faults, burglary
from doors that spring open). Worked one by one they bury the one alarm that
matters. A supervisor switches that class to storm handling for a time
(``arc storm start``, the console), and the dispatcher then handles a signal
of the class that would open a new incident in one of three ways:

- ``log``: the incident is opened and closed at once by the system
  (resolution ``storm_logged``): every signal stays in ``incident_log``,
  nothing lands in the operators' queue;
- ``group``: it joins one storm incident per shard and class, which lists
  the accounts and is worked like any incident (per shard because each
  dispatcher owns the accounts of its Kafka partitions and is the only
  writer of their incidents: one incident across shards would need two
  writers);
- ``delay``: the incident is held out of the queue for ``delay`` seconds;
  restored within them it is closed as ``restored``, otherwise it enters
  the queue when they end (or when the storm does).

Grade 1 (life at risk) is never storm-handled: hold-up, panic, fire, gas and
medical alarms, and anything an override or a sequential confirmation makes
grade 1, go to the queue as always. A signal that joins an incident already
open (the usual join window) joins it: storm mode changes only what would
have been a new incident. Each storm-handled change names the storm in its
``incident_log`` details. A storm ends by itself at ``ends_at`` (at most 24 h
after it started), judged by each signal's receive time, so it stops
applying at that moment whether or not the dispatcher has reloaded.

This module is the rules only (no I/O): the table a dispatcher holds, and
the checks ``arc.dispatch.storm_store`` applies before it writes a storm.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from arc.dispatch.classification import CLASSES, Grade
from arc.dispatch.lifecycle import Change, Kind, Resolution, Role

SYSTEM = "arc"  # the actor of the system's changes, as in arc.dispatch.engine

RULE = "风暴模式 storm mode"
# A storm ends by itself: a class left in storm mode overnight because someone
# forgot it would keep alarms from the queue for good.
MAX_DURATION = timedelta(hours=24)
# A held alarm is one nobody sees: a power cut's restores come within
# minutes, and ten is as long as the centre lets an alarm wait unseen.
MAX_DELAY = timedelta(minutes=10)

LOGGED_NOTE = "风暴模式自动记录 (logged automatically in storm mode)"
RESTORED_NOTE = (
    "风暴模式暂缓期间已恢复，自动关闭 (restored while held in storm mode: closed automatically)"
)
RELEASED_NOTE = "风暴模式暂缓结束，进入队列 (storm-mode delay over: into the queue)"
GRADE_ONE_NOTE = "升为一级，立即进入队列 (grade 1: into the queue now)"


class StormMode(StrEnum):
    """How a class in storm mode is handled."""

    LOG = "log"  # 自动记录
    GROUP = "group"  # 合并
    DELAY = "delay"  # 暂缓


MODE_NAMES_ZH = {StormMode.LOG: "自动记录", StormMode.GROUP: "合并", StormMode.DELAY: "暂缓"}


class StormRefused(Exception):
    """A storm request the rules do not allow; ``rule`` names the rule, ``message`` says why."""

    def __init__(self, message: str, rule: str = RULE) -> None:
        super().__init__(f"{message} ({rule})")
        self.rule = rule
        self.message = message


@dataclass(frozen=True, slots=True)
class Storm:
    """One storm-mode period of one class (a row of ``storm_modes``)."""

    storm_id: uuid.UUID
    event_class: str
    mode: StormMode
    delay: timedelta | None  # mode delay only
    started_at: datetime
    ends_at: datetime
    reason: str
    started_by: str
    stopped_at: datetime | None = None
    stopped_by: str | None = None
    stop_reason: str | None = None

    @property
    def until(self) -> datetime:
        """When it stops applying: stopped early, or at ``ends_at``."""
        if self.stopped_at is not None and self.stopped_at < self.ends_at:
            return self.stopped_at
        return self.ends_at

    def active(self, now: datetime) -> bool:
        """Whether it applies at ``now``."""
        return self.started_at <= now < self.until

    def details(self) -> dict[str, Any]:
        """What an ``incident_log`` row says about the storm that decided it."""
        return {
            "storm_id": str(self.storm_id),
            "mode": self.mode.value,
            "delay_s": None if self.delay is None else self.delay.total_seconds(),
            "ends_at": self.ends_at.isoformat(),
            "started_by": self.started_by,
            "reason": self.reason,
        }


def handles(storm: Storm | None, grade: int) -> bool:
    """Whether ``storm`` handles a signal of ``grade``: never grade 1 (life at risk)."""
    return storm is not None and grade > Grade.LIFE


class Storms:
    """The storms a dispatcher knows, by class (reloaded when ``storm_modes`` changes)."""

    def __init__(self, storms: Iterable[Storm] = ()) -> None:
        self._by_class: dict[str, list[Storm]] = {}
        for storm in storms:
            self._by_class.setdefault(storm.event_class, []).append(storm)

    def __bool__(self) -> bool:
        return bool(self._by_class)

    def active(self, event_class: str, now: datetime) -> Storm | None:
        """The storm that applies to ``event_class`` at ``now``, if any."""
        for storm in self._by_class.get(event_class, ()):
            if storm.active(now):
                return storm
        return None


@dataclass(frozen=True, slots=True)
class StormRequest:
    """A checked request to start a storm."""

    event_class: str
    mode: StormMode
    duration: timedelta
    delay: timedelta | None
    reason: str


def check_start(
    *, event_class: str, mode: str, minutes: float, delay_seconds: float | None, reason: str
) -> StormRequest:
    """The request to start a storm, checked; ``StormRefused`` naming the rule otherwise."""
    if event_class not in CLASSES:
        raise StormRefused(
            f"no class {event_class!r}; storm mode takes one of {', '.join(sorted(CLASSES))}"
        )
    try:
        checked = StormMode(mode)
    except ValueError:
        raise StormRefused(
            f"no mode {mode!r}; the modes are {', '.join(m.value for m in StormMode)}"
        ) from None
    duration = timedelta(minutes=minutes)
    if not timedelta(0) < duration <= MAX_DURATION:
        raise StormRefused(
            f"a storm lasts more than 0 and at most {MAX_DURATION.total_seconds() / 3600:g} h"
            f" (it ends by itself), not {minutes:g} minutes"
        )
    delay: timedelta | None = None
    if checked is StormMode.DELAY:
        if delay_seconds is None:
            raise StormRefused("mode delay needs --delay SECONDS")
        delay = timedelta(seconds=delay_seconds)
        if not timedelta(0) < delay <= MAX_DELAY:
            raise StormRefused(
                f"a delay is more than 0 and at most {MAX_DELAY.total_seconds():g} s"
                f" (a held alarm is one nobody sees), not {delay_seconds:g} s"
            )
    elif delay_seconds is not None:
        raise StormRefused(f"--delay is for mode delay only, not {checked.value}")
    text = reason.strip()
    if not text:
        raise StormRefused("starting storm mode needs a reason, which is recorded")
    return StormRequest(event_class, checked, duration, delay, text)


# -- the changes storm mode makes (the engine records them) ---------------------------


def logged(storm: Storm, at: datetime, signal_id: uuid.UUID | None) -> Change:
    """The ``auto_close`` that logs an incident of a ``log`` storm."""
    return Change(
        kind=Kind.AUTO_CLOSE,
        at=at,
        actor=SYSTEM,
        role=Role.SYSTEM,
        signal_id=signal_id,
        details={
            "resolution": Resolution.STORM_LOGGED.value,
            "reason": LOGGED_NOTE,
            "storm": storm.details(),
        },
    )


def restored(at: datetime, signal_id: uuid.UUID | None, storm: Storm | None) -> Change:
    """The ``auto_close`` of a held incident restored before its delay ended."""
    return Change(
        kind=Kind.AUTO_CLOSE,
        at=at,
        actor=SYSTEM,
        role=Role.SYSTEM,
        signal_id=signal_id,
        details={
            "resolution": Resolution.RESTORED.value,
            "reason": RESTORED_NOTE,
            "storm": None if storm is None else storm.details(),
        },
    )


def released(at: datetime, why: str, storm: Storm | None) -> Change:
    """The ``release`` that puts a held incident in the queue, saying why."""
    return Change(
        kind=Kind.RELEASE,
        at=at,
        actor=SYSTEM,
        role=Role.SYSTEM,
        details={"reason": why, "storm": None if storm is None else storm.details()},
    )
