"""Which patrol guards to propose for an alarm at a site, best first, and why not the others.

Pure: the staff, the site, the moment and each guard's open assignments are
given. A guard is proposed when they are patrol & on-site response staff
(现场处置巡逻), qualify that day (R2: never assign a guard without a valid
certificate), are on shift at that moment (Beijing time; a shift such as
20:00-08:00 wraps midnight, one that starts when it ends lasts all day) and,
when the site is on a beat, patrol that beat. Proposals are ordered by
distance to the site (guards whose position is unknown come after every guard
whose position is known), then by open assignments, then by name and id, so
the same input always gives the same order. Every guard not proposed is
listed with the reasons, so that an operator who is offered nobody sees why.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time

from arc.guards.eligibility import ineligibility
from arc.guards.models import Staff
from arc.guards.staffing import Category
from arc.model import BEIJING

# Mean radius of the Earth (IUGG), metres: haversine on a sphere is within
# 0.5 % of the ellipsoid, far better than a guard's last known position.
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class Proposal:
    """A guard who may be sent, with what ranked them."""

    staff: Staff
    distance_m: float | None  # None: the guard's or the site's position is unknown
    load: int  # open assignments


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A guard who may not be sent now, and every reason."""

    staff: Staff
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        """The reasons in one line."""
        return "; ".join(self.reasons)


@dataclass(frozen=True, slots=True)
class Ranking:
    """The proposed guards, best first, and the others with their reasons."""

    proposals: tuple[Proposal, ...]
    excluded: tuple[Exclusion, ...]


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (latitude, longitude) points in degrees, in metres."""
    lat1, lon1 = map(math.radians, a)
    lat2, lon2 = map(math.radians, b)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def on_shift(start: time, end: time, at: time) -> bool:
    """Whether the daily shift ``start``-``end`` covers the time of day ``at``."""
    if start == end:
        return True  # around the clock
    if start < end:
        return start <= at < end
    return at >= start or at < end  # wraps midnight


def rank(
    candidates: Iterable[Staff],
    *,
    site_position: tuple[float, float] | None,
    beat: str | None,
    at: datetime,
    open_assignments: Mapping[uuid.UUID, int],
) -> Ranking:
    """Rank ``candidates`` for an alarm at a site at ``at`` (timezone-aware)."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    local = at.astimezone(BEIJING)
    day, clock = local.date(), local.time().replace(tzinfo=None)
    wanted_beat = _beat_key(beat)
    proposals: list[Proposal] = []
    excluded: list[Exclusion] = []
    for staff in candidates:
        reasons: list[str] = []
        if staff.category is not Category.PATROL_RESPONSE:
            reasons.append(f"not patrol & on-site response staff (category {staff.category})")
        reasons.extend(ineligibility(staff, day))
        if staff.shift_start is None or staff.shift_end is None:
            reasons.append("no shift recorded")
        elif not on_shift(staff.shift_start, staff.shift_end, clock):
            reasons.append(f"off shift at {clock:%H:%M} Beijing time (shift {staff.shift})")
        if wanted_beat is not None and _beat_key(staff.beat) != wanted_beat:
            reasons.append(f"not on beat {beat} (beat {staff.beat or 'none'})")
        if reasons:
            excluded.append(Exclusion(staff, tuple(reasons)))
            continue
        position = staff.position
        distance = (
            None
            if position is None or site_position is None
            else distance_m(position, site_position)
        )
        proposals.append(Proposal(staff, distance, open_assignments.get(staff.staff_id, 0)))
    proposals.sort(
        key=lambda p: (
            p.distance_m is None,
            p.distance_m or 0.0,
            p.load,
            p.staff.name,
            str(p.staff.staff_id),
        )
    )
    excluded.sort(key=lambda e: (e.staff.name, str(e.staff.staff_id)))
    return Ranking(tuple(proposals), tuple(excluded))


def propose(
    candidates: Iterable[Staff],
    *,
    site_position: tuple[float, float] | None,
    beat: str | None,
    at: datetime,
    open_assignments: Mapping[uuid.UUID, int],
) -> list[Proposal]:
    """The guards who may be sent, best first (``rank`` also says why not the others)."""
    ranking = rank(
        candidates, site_position=site_position, beat=beat, at=at, open_assignments=open_assignments
    )
    return list(ranking.proposals)


def _beat_key(beat: str | None) -> str | None:
    # "朝阳-国贸" and " 朝阳-国贸 " are one beat; Latin names compare without case.
    if beat is None or not beat.strip():
        return None
    return beat.strip().casefold()


def guard_check(staff: Iterable[Staff]) -> Callable[[str, datetime], str | None]:
    """Why a guard (by staff id) may not be dispatched at a moment, None if they may.

    The shape of ``arc.dispatch.engine.GuardCheck``: an operator who picks a
    guard by hand is still refused one the rules exclude (R2). The site's beat
    is not known here, so only who the guard is and when is checked.
    """
    directory = {str(member.staff_id): member for member in staff}

    def check(staff_id: str, at: datetime) -> str | None:
        member = directory.get(staff_id)
        if member is None:
            return f"no member of staff has the id {staff_id!r}"
        ranking = rank([member], site_position=None, beat=None, at=at, open_assignments={})
        return ranking.excluded[0].reason if ranking.excluded else None

    return check
