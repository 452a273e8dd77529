"""Held joins: written at most once an interval, never lost with the process."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from arc.dispatch.incident_holds import FLOOD, IncidentHolds, Plan, catch_up
from arc.dispatch.lifecycle import Change, Incident, Kind, Role, apply, open_incident

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
INTERVAL = 1.0


def _opened(at: datetime) -> tuple[Incident, Change]:
    return open_incident(
        incident_id=uuid.uuid4(),
        account="1234",
        event_class="burglary",
        grade=2,
        title="盗警 防区 003",
        steps=(("call_keyholders", timedelta(seconds=120), True),),
        at=at,
        zone="003",
        signal_id=uuid.uuid4(),
    )


def _join(at: datetime, zone: str) -> Change:
    return Change(kind=Kind.JOIN, at=at, actor="arc", role=Role.SYSTEM, details={"zone": zone})


def _note(at: datetime) -> Change:
    return Change(kind=Kind.NOTE, at=at, actor="op1", role=Role.OPERATOR, details={"text": "看"})


def test_a_quiet_incidents_join_is_written_with_its_batch_a_flooded_ones_once_an_interval() -> None:
    holds = IncidentHolds(INTERVAL)
    incident, _ = _opened(T0)
    key = incident.incident_id
    plan = holds.plan({key: (0, incident)}, [(key, Kind.OPEN, 1)], 10.0)
    assert set(plan.write) == {key}
    holds.committed(plan, 10.0)
    joined = apply(incident, _join(T0, "004"))
    # Out of a flood it goes with its batch.
    assert set(holds.plan({key: (0, joined)}, [(key, Kind.JOIN, 2)], 10.2, signals=99).write) == {
        key
    }
    plan = holds.plan({key: (0, joined)}, [(key, Kind.JOIN, 2)], 10.2, signals=FLOOD)
    assert plan.write == {} and plan.held[key].first_seq == 2
    assert plan.projected_seq(0, 2) == 1
    holds.committed(plan, 10.2)
    assert not holds.due(10.9) and holds.due(11.0)
    plan = holds.plan({}, [], 11.0)
    assert plan.write == {key: (0, joined)} and plan.projected_seq(0, 2) == 2
    holds.committed(plan, 11.0)
    # Quiet for an interval: the next join goes with its batch.
    again = apply(joined, _join(T0, "005"))
    plan = holds.plan({key: (0, again)}, [(key, Kind.JOIN, 3)], 12.0, signals=FLOOD)
    assert set(plan.write) == {key}


def test_a_change_that_is_not_a_join_writes_what_was_held() -> None:
    holds = IncidentHolds(INTERVAL)
    incident, _ = _opened(T0)
    key = incident.incident_id
    holds.committed(holds.plan({key: (0, incident)}, [(key, Kind.OPEN, 1)], 0.0), 0.0)
    joined = apply(incident, _join(T0, "004"))
    joins = holds.plan({key: (0, joined)}, [(key, Kind.JOIN, 2)], 0.1, signals=FLOOD)
    holds.committed(joins, 0.1)
    noted = apply(joined, _note(T0))
    plan = holds.plan({key: (0, noted)}, [(key, Kind.NOTE, 3)], 0.2, signals=FLOOD)
    assert plan.write == {key: (0, noted)} and plan.held == {}


class HeldIncidents(RuleBasedStateMachine):
    """The dispatcher's batches against a model of the database: log, projection, positions.

    Invariants: a dispatcher taking the shard over from what is stored has the
    state this one has; only joins wait, and none longer than the interval.
    """

    def __init__(self) -> None:
        super().__init__()
        self.holds = IncidentHolds(INTERVAL)
        self.now = 100.0
        self.head = 0
        self.latest: dict[uuid.UUID, Incident] = {}  # the engine's state
        self.log: list[tuple[uuid.UUID, int, Change]] = []  # incident_log
        self.stored: dict[uuid.UUID, tuple[Incident, int]] = {}  # incidents (state, chain_seq)
        self.projected = 0  # incident_chain_heads.projected_seq
        self.written_at: dict[uuid.UUID, float] = {}

    @rule(
        changes=st.lists(
            st.tuples(st.integers(0, 4), st.sampled_from(["open", "join", "join", "note"])),
            max_size=6,
        ),
        later=st.floats(0, 1.5),
        commits=st.booleans() | st.just(True),
        flood=st.booleans() | st.just(True),
    )
    def a_batch(
        self, changes: list[tuple[int, str]], later: float, commits: bool, flood: bool
    ) -> None:
        self.now += later
        at = T0 + timedelta(seconds=self.now)
        latest = dict(self.latest)
        ids = list(latest)
        changed: dict[uuid.UUID, tuple[int, Incident]] = {}
        entries: list[tuple[uuid.UUID, Kind, int]] = []
        log: list[tuple[uuid.UUID, int, Change]] = []
        for index, what in changes:
            if what == "open" or index >= len(ids):
                incident, change = _opened(at)
                ids.append(incident.incident_id)
            else:
                before = latest[ids[index]]
                change = _join(at, f"{index:03d}") if what == "join" else _note(at)
                incident = apply(before, change)
            key = incident.incident_id
            latest[key] = incident
            changed[key] = (0, incident)
            seq = self.head + len(entries) + 1
            entries.append((key, change.kind, seq))
            log.append((key, seq, change))
        plan = self.holds.plan(changed, entries, self.now, signals=FLOOD if flood else 1)
        for key, kind, _ in entries:
            if not flood or kind is not Kind.JOIN:
                assert key in plan.write  # written with its batch
            elif self.now - self.written_at.get(key, -1e9) >= INTERVAL:
                assert key in plan.write  # quiet: written with its batch
        if not commits:  # rolled back: the shard is loaded again from what is stored
            self.take_over(self.holds)
            return
        self._commit(plan, latest, log)

    @rule(later=st.floats(0, 1.5))
    def a_pace_without_signals(self, later: float) -> None:
        self.now += later
        if self.holds.due(self.now):
            self._commit(self.holds.plan({}, [], self.now), dict(self.latest), [])

    @rule()
    def a_new_process_takes_the_shard_over(self) -> None:
        self.holds = IncidentHolds(INTERVAL)
        self.take_over(self.holds)

    def take_over(self, holds: IncidentHolds) -> None:
        incidents = dict(self.stored)
        behind = catch_up(incidents, (e for e in self.log if e[1] > self.projected))
        assert {key: state for key, (state, _) in incidents.items()} == self.latest
        holds.forget(0)
        holds.hold_behind(0, behind)
        for key in behind:
            self.written_at.pop(key, None)
        # Its first pace writes them, flood or not.
        assert holds.due(self.now) == bool(behind)
        self._commit(holds.plan({}, [], self.now), dict(self.latest), [])

    def _commit(
        self,
        plan: Plan,
        latest: dict[uuid.UUID, Incident],
        log: list[tuple[uuid.UUID, int, Change]],
    ) -> None:
        self.latest = latest
        self.log.extend(log)
        self.head += len(log)
        for key, (_, incident) in plan.write.items():
            self.stored[key] = (incident, self.head)
            self.written_at[key] = self.now
        self.projected = plan.projected_seq(0, self.head)
        self.holds.committed(plan, self.now)

    @invariant()
    def what_is_stored_is_enough_to_go_on(self) -> None:
        incidents = dict(self.stored)
        catch_up(incidents, (e for e in self.log if e[1] > self.projected))
        assert {key: state for key, (state, _) in incidents.items()} == self.latest

    @invariant()
    def only_held_incidents_lag_and_none_past_the_interval(self) -> None:
        held = self.holds.held
        for key, incident in self.latest.items():
            if self.stored[key][0] != incident:
                assert held[key].incident == incident
                assert self.now - self.written_at[key] < INTERVAL
        # Every change up to projected_seq is in the projection: a takeover reads only after it.
        assert all(self.stored[key][1] >= seq for key, seq, _ in self.log if seq <= self.projected)


TestHeldIncidents = HeldIncidents.TestCase
TestHeldIncidents.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
