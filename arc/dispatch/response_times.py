"""A dispatched guard's clocks: time to accept, to arrive, to clear, against the targets.

Each clock starts when the guard is dispatched (``guard_dispatched_at``) and
stops at the guard's own action, as the incident log records it; a clock
still running counts up to ``now``. The targets are per grade: the more
urgent the alarm, the sooner the guard must be on the way and on site.
They are what an experienced supervisor starts from (an urban beat of a few
kilometres, 15 minutes to arrive for an alarm of grade 1-2); a centre whose
contracts promise other times changes ``TARGETS``. Pure: the incident and
the moment are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from arc.dispatch.lifecycle import Incident


class Leg(StrEnum):
    """What a clock measures, from the dispatch."""

    ACCEPT = "accept"  # 接受派遣
    ARRIVE = "arrive"  # 到达现场
    CLEAR = "clear"  # 处置完毕


LEG_NAMES_ZH: Final[Mapping[Leg, str]] = MappingProxyType(
    {Leg.ACCEPT: "接受用时", Leg.ARRIVE: "到场用时", Leg.CLEAR: "处置用时"}
)


def _targets(accept: int, arrive: int, clear: int) -> Mapping[Leg, timedelta]:
    return MappingProxyType(
        {
            Leg.ACCEPT: timedelta(seconds=accept),
            Leg.ARRIVE: timedelta(seconds=arrive),
            Leg.CLEAR: timedelta(seconds=clear),
        }
    )


# Grade → target of each leg, counted from the dispatch.
TARGETS: Final[Mapping[int, Mapping[Leg, timedelta]]] = MappingProxyType(
    {
        1: _targets(60, 900, 3_600),
        2: _targets(120, 900, 3_600),
        3: _targets(300, 1_800, 7_200),
        4: _targets(600, 3_600, 14_400),
    }
)


@dataclass(frozen=True, slots=True)
class Clock:
    """One leg: how long it took (or has taken so far) and whether that beat the target."""

    leg: Leg
    elapsed: timedelta
    target: timedelta
    running: bool  # not yet stopped by the guard's action

    @property
    def late(self) -> bool:
        """Whether the target has passed (a running clock may be late already)."""
        return self.elapsed > self.target


def clocks(incident: Incident, now: datetime) -> tuple[Clock, ...]:
    """The guard's clocks of ``incident`` at ``now`` (none before a guard is dispatched)."""
    started = incident.guard_dispatched_at
    if started is None:
        return ()
    targets = TARGETS.get(incident.grade, TARGETS[4])
    stops = {
        Leg.ACCEPT: incident.guard_accepted_at,
        Leg.ARRIVE: incident.guard_arrived_at,
        Leg.CLEAR: incident.guard_cleared_at,
    }
    # A clock stops for good when the incident closes without that action
    # (a dispatch cancelled, a site cleared by the operator): it is not running.
    end = incident.closed_at or now
    return tuple(
        Clock(
            leg=leg,
            elapsed=max(timedelta(0), (stop or end) - started),
            target=targets[leg],
            running=stop is None and incident.closed_at is None,
        )
        for leg, stop in stops.items()
    )
