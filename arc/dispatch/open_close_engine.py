"""The engine's open/close decisions: a part of ``Engine``, kept apart to keep each readable.

``OpenCloseDecisions`` is a mixin of ``arc.dispatch.engine.Engine``: what a
disarm outside the open hours does, and what the clock does at each
closing (``arc.dispatch.open_close`` has the rules and the deadlines).
``Engine.on_signal`` calls ``_open_close_signal`` after classifying, and
``on_tick`` calls ``_open_close_tick`` for shards that are caught up. Like
the engine it does no I/O: changes go in the batch through ``_record``.

Both incidents are class ``open_close``, grade 3 (一般 attention): nothing is
known to be wrong yet (an unarmed shop is most often a forgetful manager, a
night disarm staff working late), but the site is unprotected or entered,
so a person must look, which grade 4 (logged, no incident) would not
ensure; an alarm from the site is graded on its own. A centre may regrade
them with an override on ``ARC:SCHEDULE``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from arc.accounts.schedule import Schedule
from arc.dispatch import lifecycle, site_state
from arc.dispatch.classification import Classification, Grade, Overrides
from arc.dispatch.lifecycle import Change, Incident, Kind, Role
from arc.dispatch.open_close import (
    CODE,
    DISARMED_OUTSIDE,
    NOT_ARMED,
    OPEN_CLOSE,
    TITLES,
    left_disarmed,
)
from arc.dispatch.plans import Plans
from arc.dispatch.signal import Signal

if TYPE_CHECKING:  # the engine imports this module
    from arc.dispatch.engine import Batch, Shard

SYSTEM = "arc"


class OpenCloseDecisions:
    """Open/close supervision of the accounts with a schedule, for ``Engine``."""

    # Engine's, used here.
    shards: dict[int, Shard]
    overrides: Overrides
    plans: Plans
    join_window: timedelta
    schedule_grace: timedelta
    schedules: dict[str, Schedule]
    _new_id: Callable[[], uuid.UUID]

    if TYPE_CHECKING:

        def _record(
            self,
            shard: Shard,
            incident: Incident,
            change: Change,
            batch: Batch,
            *,
            command_id: uuid.UUID | None = None,
        ) -> Incident: ...

    def set_schedules(self, schedules: Mapping[str, Schedule], now: datetime) -> None:
        """The accounts' open hours (``account_schedules``, reloaded on change)."""
        self.schedules = dict(schedules)
        for shard in self.shards.values():
            shard.watch.set_schedules(self.schedules, now)

    def _open_close_signal(
        self, shard: Shard, signal: Signal, verdict: Classification, batch: Batch
    ) -> None:
        """Watch the account's closings; a disarm outside its open hours opens or joins."""
        account = signal.account
        shard.watch.watch(account, signal.received_at)
        schedule = self.schedules.get(account)
        # An opening a centre made an alarm of (override) is that alarm's incident already.
        if schedule is None or verdict.opens_incident or site_state.arming(signal) is not False:
            return
        at = signal.received_at
        if schedule.allows_disarm(at, self.schedule_grace):
            return
        partition = (signal.partition_no or "").lstrip("0") or "1"
        details = {
            "code": CODE,
            "schedule": DISARMED_OUTSIDE,
            "signal_code": signal.code_key,
            "partition": partition,
            "user": signal.user_no,
            "hours": schedule.window_text(at),
            "grace_s": self.schedule_grace.total_seconds(),
        }
        current = self._current_open_close(shard, account)
        if current is not None and at - current.updated_at <= self.join_window:
            change = Change(
                kind=Kind.JOIN,
                at=at,
                actor=SYSTEM,
                role=Role.SYSTEM,
                signal_id=signal.signal_id,
                details={"zone": None, "restore": False, **details},
            )
            self._record(shard, current, change, batch)
            return
        self._open_schedule(shard, account, DISARMED_OUTSIDE, at, signal.signal_id, details, batch)

    def _open_close_tick(self, shard: Shard, now: datetime, batch: Batch) -> None:
        """At each closing + grace, open 未按时布防 for a site still disarmed since before it."""
        for account, closing in shard.watch.due(now):
            state = shard.sites.get(account)
            partitions = [] if state is None else left_disarmed(state, closing)
            if not partitions:
                continue
            current = self._current_open_close(shard, account)
            if current is not None and current.title == TITLES[NOT_ARMED]:
                continue  # still not armed: the incident says so already
            schedule = self.schedules.get(account)
            details = {
                "code": CODE,
                "schedule": NOT_ARMED,
                "closing": closing.isoformat(),
                "partitions": partitions,
                "hours": "" if schedule is None else schedule.window_text(closing - _MINUTE),
                "grace_s": self.schedule_grace.total_seconds(),
            }
            self._open_schedule(shard, account, NOT_ARMED, now, None, details, batch)

    def _current_open_close(self, shard: Shard, account: str) -> Incident | None:
        incident_id = shard.current.get((account, OPEN_CLOSE))
        return None if incident_id is None else shard.incidents[incident_id]

    def _open_schedule(
        self,
        shard: Shard,
        account: str,
        kind: str,
        at: datetime,
        signal_id: uuid.UUID | None,
        details: Mapping[str, Any],
        batch: Batch,
    ) -> None:
        grade = Grade.ATTENTION
        found = self.overrides.find(account, None, CODE, OPEN_CLOSE)
        if found is not None:
            grade = found.grade
        steps = self.plans.steps_for(account, OPEN_CLOSE, grade)
        incident, change = lifecycle.open_incident(
            incident_id=self._new_id(),
            account=account,
            event_class=OPEN_CLOSE,
            grade=grade,
            title=TITLES[kind],
            steps=[s.as_tuple() for s in steps],
            at=at,
            zone=None,
            signal_id=signal_id,
            more=details,
        )
        self._record(shard, incident, change, batch)


_MINUTE = timedelta(minutes=1)
