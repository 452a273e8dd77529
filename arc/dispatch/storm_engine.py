"""The engine's storm-mode decisions: a part of ``Engine``, kept apart to keep each readable.

``StormDecisions`` is a mixin of ``arc.dispatch.engine.Engine``: what a
signal of a class in storm mode does (``arc.dispatch.storm`` has the rules
and the changes they make; ``Engine.on_signal`` calls ``_in_storm`` for a
signal of grade 2-3 that would open a new incident, and ``on_tick`` calls
``_release_held``). Like the engine it does no I/O: it records changes in
the batch through the engine's ``_open`` and ``_record``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from arc.dispatch import lifecycle, storm
from arc.dispatch.classification import CLASS_NAMES_ZH, Classification, Grade
from arc.dispatch.lifecycle import Change, Incident, Kind, Role
from arc.dispatch.plans import CONFIRMED_STEPS, Plans
from arc.dispatch.signal import Signal
from arc.dispatch.storm import SYSTEM, Storm, StormMode, Storms

if TYPE_CHECKING:  # the engine imports this module
    from arc.dispatch.engine import Batch, Shard


class StormDecisions:
    """Storm mode's handling of signals and held incidents, for ``Engine``."""

    # Engine's, used here.
    storms: Storms
    plans: Plans
    confirm_window: timedelta
    _new_id: Callable[[], uuid.UUID]

    if TYPE_CHECKING:

        def _open(
            self,
            shard: Shard,
            signal: Signal,
            verdict: Classification,
            batch: Batch,
            *,
            more: Mapping[str, Any] | None = None,
        ) -> Incident: ...

        def _record(
            self,
            shard: Shard,
            incident: Incident,
            change: Change,
            batch: Batch,
            *,
            command_id: uuid.UUID | None = None,
        ) -> Incident: ...

        technologies: dict[str, Mapping[str, str]]

        @staticmethod
        def _confirmation(
            signal: Signal,
            event_class: str,
            zones: Iterable[str],
            technologies: Mapping[str, str] | None = None,
        ) -> Change: ...

    def _in_storm(
        self, shard: Shard, found: Storm, signal: Signal, verdict: Classification, batch: Batch
    ) -> None:
        """Handle, as ``found`` says, a signal that would open a new incident of grade 2-3."""
        if found.mode is StormMode.DELAY:
            held = signal.received_at + (found.delay or timedelta(0))
            more = {"storm": found.details(), "held_until": held.isoformat()}
            self._open(shard, signal, verdict, batch, more=more)
            return
        if self._confirmed_in_storm(shard, found, signal, verdict, batch):
            return
        if found.mode is StormMode.LOG:
            incident = self._open(shard, signal, verdict, batch, more={"storm": found.details()})
            self._record(shard, incident, storm.logged(found, signal.received_at, None), batch)
            return
        zone = _storm_zone(signal)
        incident_id = shard.storm_incidents.get(verdict.event_class)
        if incident_id is None:
            name = CLASS_NAMES_ZH.get(verdict.event_class, verdict.event_class)
            steps = self.plans.steps_for(signal.account, verdict.event_class, verdict.grade)
            opened, change = lifecycle.open_incident(
                incident_id=self._new_id(),
                account=signal.account,
                event_class=verdict.event_class,
                grade=verdict.grade,
                title=f"{name} 风暴合并 (storm: {verdict.event_class} grouped)",
                steps=[s.as_tuple() for s in steps],
                at=signal.received_at,
                zone=zone,
                signal_id=signal.signal_id,
                more={
                    "storm": found.details(),
                    "shard": shard.number,
                    "classified_by": verdict.source,
                    "code": signal.code_key,
                },
            )
            self._record(shard, opened, change, batch)
            return
        join = Change(
            kind=Kind.JOIN,
            at=signal.received_at,
            actor=SYSTEM,
            role=Role.SYSTEM,
            signal_id=signal.signal_id,
            details={
                "zone": zone,
                "restore": False,
                "code": signal.code_key,
                "account": signal.account,
                "storm": found.details(),
            },
        )
        self._record(shard, shard.incidents[incident_id], join, batch)

    def _confirmed_in_storm(
        self, shard: Shard, found: Storm, signal: Signal, verdict: Classification, batch: Batch
    ) -> bool:
        """Open a burglary a second zone confirms as grade 1, storm or not; say if it did."""
        if verdict.event_class not in CONFIRMED_STEPS or signal.zone is None:
            return False
        key = (signal.account, verdict.event_class)
        earlier = shard.storm_zones.get(key)
        shard.storm_zones[key] = (signal.zone, signal.received_at)
        if (
            earlier is None
            or earlier[0] == signal.zone
            or signal.received_at - earlier[1] > self.confirm_window
        ):
            return False
        more = {"storm_set_aside": found.details()}  # grade 1 keeps its priority
        incident = self._open(shard, signal, verdict, batch, more=more)
        zones = incident.zones | {earlier[0]}
        confirmation = self._confirmation(
            signal, verdict.event_class, zones, self.technologies.get(signal.account)
        )
        self._record(shard, incident, confirmation, batch)
        return True

    def _restore_in_storm(
        self, shard: Shard, signal: Signal, verdict: Classification, batch: Batch
    ) -> None:
        """Join a restore to the storm incident its account's alarm joined, if one is open."""
        incident_id = shard.storm_incidents.get(verdict.event_class)
        if incident_id is None or signal.account not in shard.incidents[incident_id].accounts:
            return
        change = Change(
            kind=Kind.JOIN,
            at=signal.received_at,
            actor=SYSTEM,
            role=Role.SYSTEM,
            signal_id=signal.signal_id,
            details={
                "zone": _storm_zone(signal),
                "restore": True,
                "code": signal.code_key,
                "account": signal.account,
            },
        )
        self._record(shard, shard.incidents[incident_id], change, batch)

    def _held_join(
        self,
        shard: Shard,
        incident: Incident,
        signal: Signal,
        verdict: Classification,
        batch: Batch,
    ) -> None:
        """After a signal joined a held incident: release it for grade 1, close it if restored."""
        at = signal.received_at
        found = self.storms.active(incident.event_class, at)
        if incident.grade == Grade.LIFE or verdict.grade == Grade.LIFE:
            self._record(shard, incident, storm.released(at, storm.GRADE_ONE_NOTE, found), batch)
        elif incident.restored and incident.status is lifecycle.Status.NEW:
            self._record(shard, incident, storm.restored(at, signal.signal_id, found), batch)

    def _release_held(self, shard: Shard, now: datetime, batch: Batch) -> None:
        """Put in the queue the held incidents whose delay, or whose storm, is over."""
        for incident in list(shard.incidents.values()):
            if incident.held_until is None:
                continue
            found = self.storms.active(incident.event_class, now)
            if now >= incident.held_until or found is None or found.mode is not StormMode.DELAY:
                self._record(
                    shard, incident, storm.released(now, storm.RELEASED_NOTE, found), batch
                )


def _storm_zone(signal: Signal) -> str:
    """A zone as a storm incident keeps it: accounts share it, so the account comes first."""
    return f"{signal.account}:{signal.zone}" if signal.zone else signal.account
