"""When the dispatcher writes an incident's projection: a flood's joins once an interval.

Every change of an incident is appended to ``incident_log`` with the batch
that decided it; that log is the record. The projection (``incidents``) is
what the console's queue and the next owner of the shard read, and
rewriting its whole state (2 kB with many zones) for every signal that
joins a flooded incident cost the dispatcher, the database and the broker
(which carries each written state to the console) a fifth of the centre's
work per signal in a flood.

So in a flood (a batch of at least ``FLOOD`` signals) a join, whose change
the operator sees as a count and a zone, is held here when the incident's
projection was written less than ``interval`` ago, and written with the
first batch after that: a quiet incident's join goes out with its own
batch, a flooded one's at most once an interval. Out of a flood every
change is written with its batch, and the signal→incident latency stays as
it was. Every other change (an opening, a grade raised, anything a person
or the clock does) is always written with its batch, and writes what was
held of its incident with it.

Nothing held is lost with the process. Each written projection carries the
shard's chain position it reflects (``incidents.chain_seq``), and each shard
the position before which every change is in the projection
(``incident_chain_heads.projected_seq``): a dispatcher that takes the shard
over applies the log's changes after that to the incidents they are newer
than (``store.load_shard``), and writes them.

Sans-I/O: the caller passes the clock (monotonic seconds).
"""

from __future__ import annotations

import math
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from arc.dispatch.lifecycle import Change, Incident, Kind, apply

# Seconds between two writes of a flooded incident's projection: how far
# behind the console's count of its signals may be.
INTERVAL: Final = 1.0
# Signals in one batch from which joins may be held: at the dispatcher's
# pace of 50 ms, 2,000 signals a second.
FLOOD: Final = 100


@dataclass(frozen=True, slots=True)
class Held:
    """An incident whose newest state is not in the projection yet."""

    shard: int
    incident: Incident
    first_seq: int  # the chain position of its first change the projection lacks


@dataclass(frozen=True)
class Plan:
    """What one batch writes of the projection, and what stays held once it commits."""

    write: dict[uuid.UUID, tuple[int, Incident]]
    held: dict[uuid.UUID, Held]

    def projected_seq(self, shard: int, head: int) -> int:
        """The position of ``shard``'s chain up to which every change is in the projection.

        ``head``: the shard's chain head once the batch is written.
        """
        return min((h.first_seq - 1 for h in self.held.values() if h.shard == shard), default=head)


class IncidentHolds:
    """The held incidents, and when each recently written one was written."""

    def __init__(self, interval: float = INTERVAL, flood: int = FLOOD) -> None:
        self.interval = interval
        self.flood = flood
        self._held: dict[uuid.UUID, Held] = {}
        # Oldest write first; entries older than the interval are dropped.
        self._written: OrderedDict[uuid.UUID, float] = OrderedDict()

    @property
    def held(self) -> Mapping[uuid.UUID, Held]:
        """The incidents held now."""
        return self._held

    def plan(
        self,
        changed: Mapping[uuid.UUID, tuple[int, Incident]],
        entries: Iterable[tuple[uuid.UUID, Kind, int]],
        now: float,
        *,
        signals: int = 0,
        everything: bool = False,
    ) -> Plan:
        """Which of a batch's ``changed`` incidents to write, and which held ones are due.

        ``entries`` are the batch's log rows: incident, kind and chain position;
        ``signals``: how many signals the batch decided on (a flood holds joins).
        ``everything``: write every changed and held incident (a dispatcher that stops).
        """
        flood = signals >= self.flood and not everything
        first: dict[uuid.UUID, int] = {}
        not_joins: set[uuid.UUID] = set()
        for incident_id, kind, seq in entries:
            first.setdefault(incident_id, seq)
            if kind is not Kind.JOIN:
                not_joins.add(incident_id)
        held = dict(self._held)
        write: dict[uuid.UUID, tuple[int, Incident]] = {}
        for incident_id, (shard, incident) in changed.items():
            before = held.pop(incident_id, None)
            if not flood or incident_id in not_joins or incident_id not in first:
                write[incident_id] = (shard, incident)
            elif before is not None:
                held[incident_id] = Held(shard, incident, before.first_seq)
            elif self._recent(incident_id, now):
                held[incident_id] = Held(shard, incident, first[incident_id])
            else:
                write[incident_id] = (shard, incident)
        for incident_id, waiting in list(held.items()):
            if everything or not self._recent(incident_id, now):
                write[incident_id] = (waiting.shard, waiting.incident)
                del held[incident_id]
        return Plan(write, held)

    def due(self, now: float) -> bool:
        """Whether a held incident is due to be written (with or without a batch)."""
        return any(not self._recent(incident_id, now) for incident_id in self._held)

    def committed(self, plan: Plan, now: float) -> None:
        """``plan``'s batch committed at ``now``."""
        self._held = plan.held
        written = self._written
        for incident_id in plan.write:
            written[incident_id] = now
            written.move_to_end(incident_id)
        while written:
            incident_id, at = next(iter(written.items()))
            if now - at < self.interval or incident_id in self._held:
                break
            del written[incident_id]

    def hold_behind(self, shard: int, behind: Mapping[uuid.UUID, tuple[Incident, int]]) -> None:
        """Hold incidents a takeover brought up to date from the log, to write at once.

        ``behind``: incident id -> its state and the first change its stored projection lacked.
        """
        for incident_id, (incident, first_seq) in behind.items():
            self._held[incident_id] = Held(shard, incident, first_seq)
            self._written.pop(incident_id, None)

    def forget(self, shard: int) -> None:
        """Drop what is held of ``shard`` (revoked, or reloaded after a failed batch).

        Its next owner brings those incidents up to date from the log.
        """
        self._held = {i: h for i, h in self._held.items() if h.shard != shard}

    def _recent(self, incident_id: uuid.UUID, now: float) -> bool:
        return now - self._written.get(incident_id, -math.inf) < self.interval


def catch_up(
    incidents: dict[uuid.UUID, tuple[Incident, int]],
    log: Iterable[tuple[uuid.UUID, int, Change]],
) -> dict[uuid.UUID, tuple[Incident, int]]:
    """Apply ``log`` to the stored ``incidents`` whose projection lacks it, in place.

    ``incidents``: id -> stored state and the chain position it reflects;
    ``log``: a shard's changes (incident, chain position, change) after its
    ``projected_seq``, in order. Returns the incidents that lacked changes,
    each with its state now and the first change it lacked.
    """
    behind: dict[uuid.UUID, tuple[Incident, int]] = {}
    for incident_id, seq, change in log:
        known = incidents.get(incident_id)
        if known is None or seq <= known[1]:
            continue  # closed (a close is written at once), or in its projection already
        incident = apply(known[0], change)
        incidents[incident_id] = (incident, seq)
        behind[incident_id] = (incident, behind.get(incident_id, (incident, seq))[1])
    return behind
