"""Open/close supervision: a site not armed by its closing time, or disarmed outside its hours.

Theory of operation. An account with a schedule (``account_schedules``,
``arc.accounts.schedule``) says when its premises are open, i.e. disarmed.
Two things open an incident (class ``open_close``, grade 3):

- 未按时布防 (not armed by schedule): at each closing time (the end of an
  opening; adjacent windows across midnight count as one) plus the grace
  (``ARC_SCHEDULE_GRACE``), a partition still disarmed since before the
  closing. The dispatcher checks when the deadline passes, from the site
  state it keeps (``site_state``), so a site armed on time opens nothing and
  one disarmed again after closing is the other case;
- 非时段撤防 (disarmed outside schedule): an opening (disarm) received
  outside every opening, the grace before it excepted (staff arrive early).

Arming later joins the incident as a restore: it is shown there, not hidden.

Deadlines live with the shard that owns the account (``ScheduleWatch``, one
per shard, like ``supervision.Supervisor``) and survive restarts: when a
shard loads, each account's deadline is recomputed from its schedule, the
stored site state and the last 未按时布防 incident opened for it (closings
up to that one were handled). A closing missed while the dispatcher was down
is checked after it starts, but not before ``start + grace``, so that
panels which could not reach a stopped centre may report their arming first.

Sans-I/O: the clock is passed in. A heap orders the deadlines; entries made
stale by a schedule change are skipped when they come up.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final

from arc.accounts.schedule import Schedule
from arc.dispatch.site_state import SiteState

OPEN_CLOSE: Final = "open_close"
NOT_ARMED: Final = "not_armed"
DISARMED_OUTSIDE: Final = "disarmed_outside"
NOT_ARMED_TITLE: Final = "未按时布防 (not armed by schedule)"
DISARMED_TITLE: Final = "非时段撤防 (disarmed outside schedule)"
TITLES: Final = {NOT_ARMED: NOT_ARMED_TITLE, DISARMED_OUTSIDE: DISARMED_TITLE}
# The code an override names to regrade these incidents (classification_overrides).
CODE: Final = "ARC:SCHEDULE"
# How far back a restarted dispatcher looks for its last 未按时布防 (the schedule's horizon).
LOOKBACK: Final = timedelta(days=9)


class ScheduleWatch:
    """The closing deadlines of one shard's accounts."""

    def __init__(
        self,
        *,
        grace: timedelta = timedelta(0),
        started: datetime | None = None,
        schedules: Mapping[str, Schedule] | None = None,
        handled: Mapping[str, datetime] | None = None,
    ) -> None:
        self._grace = grace
        self._earliest = None if started is None else started + grace
        self._schedules = dict(schedules or {})
        self._watched: set[str] = set()
        # account -> the last closing checked (or handled by an incident before a restart).
        self._checked: dict[str, datetime] = {
            a: opened - grace for a, opened in (handled or {}).items()
        }
        self._next: dict[str, tuple[datetime, datetime]] = {}  # account -> (due, closing)
        self._heap: list[tuple[datetime, str, datetime]] = []

    def set_schedules(self, schedules: Mapping[str, Schedule], now: datetime) -> None:
        """New schedules (reloaded on change); deadlines of changed ones are recomputed."""
        old, self._schedules = self._schedules, dict(schedules)
        for account in self._watched:
            if old.get(account) != self._schedules.get(account):
                self._next.pop(account, None)
                self._start(account, now)

    def watch(self, account: str, now: datetime, *, missed: bool = False) -> None:
        """Supervise ``account`` from ``now``; once is enough.

        With ``missed`` (a shard loaded with the account's stored site state)
        the last closing before ``now`` is checked too, unless it was handled.
        """
        if account not in self._watched:
            self._watched.add(account)
            self._start(account, now, missed=missed)

    def _start(self, account: str, now: datetime, *, missed: bool = False) -> None:
        schedule = self._schedules.get(account)
        if schedule is None:
            return
        checked = self._checked.get(account)
        closing = schedule.last_close(now) if missed else None
        if closing is None or (checked is not None and closing <= checked):
            closing = schedule.next_close(now if checked is None else max(now, checked))
        if closing is not None:
            self._push(account, closing)

    def _push(self, account: str, closing: datetime) -> None:
        due = closing + self._grace
        if self._earliest is not None:
            due = max(due, self._earliest)
        self._next[account] = (due, closing)
        heapq.heappush(self._heap, (due, account, closing))

    def due(self, now: datetime) -> list[tuple[str, datetime]]:
        """(account, closing) whose deadline passed by ``now``; each account's next is set."""
        found: list[tuple[str, datetime]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, account, closing = heapq.heappop(heap)
            if self._next.get(account) != (due, closing):
                continue  # the schedule changed meanwhile
            del self._next[account]
            self._checked[account] = closing
            found.append((account, closing))
            schedule = self._schedules.get(account)
            following = None if schedule is None else schedule.next_close(closing)
            if following is not None:
                self._push(account, following)
        return found

    def deadline(self, account: str) -> datetime | None:
        """When ``account`` is next checked for being armed (None: not supervised)."""
        found = self._next.get(account)
        return None if found is None else found[0]


def left_disarmed(state: SiteState, closing: datetime) -> list[str]:
    """The partitions disarmed since before ``closing`` and still disarmed (by number)."""
    return sorted(
        (
            key
            for key, p in state.partitions.items()
            if p.armed is False and p.armed_changed_at is not None and p.armed_changed_at < closing
        ),
        key=lambda k: (len(k), k),
    )
