"""The dispatcher's decisions, in memory and without I/O: signals and commands in, rows out.

Theory of operation (ARCHITECTURE.md §2: per-account state lives with the
partition that owns the account). The dispatcher owns some partitions
(*shards*) of ``arc.signals`` and the same-numbered ones of ``arc.commands``,
both keyed by account. For each shard it holds in memory what it needs to
decide quickly: the incidents not yet closed, each account's site state and
its link-test deadline. Each decision appends to a ``Batch``: the
``incident_log`` rows, the incidents and site states that changed, the
outcomes of commands. The service writes a batch in one transaction with the
Kafka offsets it covers; should that fail, it forgets the shard and loads it
again from the database, which still holds the state before the batch.

What a signal does, after classification (``classification.classify``):

- every signal updates its account's site state and link-test deadline; the
  first signal after a communication fault restores that incident;
- a restore joins the account's open incident of its class, if any: it is
  shown there ("restored before an operator acted"), never hidden;
- an alarm of grade 1-3 joins the account's open incident of its class if
  that incident last changed within ``join_window`` (a signal joining, or a
  person working it: an incident being worked takes its new alarms rather
  than leaving a second one in the queue); otherwise it opens a new
  incident with the plan for its class and grade;
- a burglary in a second zone within ``confirm_window`` of the first is a
  sequential confirmation: the grade rises to 1 and the plan gains "report
  to 110" (``plans.CONFIRMED_STEPS``); when both zones' detector
  technologies are known (``account_zones``) and differ, it is recorded as a
  two-technology confirmation instead (the change's ``confirmation``);
- grade 4 (open/close, tests, bypasses) changes the site state only, but
  for an account with open hours a disarm outside them opens 非时段撤防, and
  each closing is watched for a site left disarmed, 未按时布防
  (``open_close``, ``open_close_engine``);
- a class in storm mode (``storm``) has its would-be new incidents of grade
  2-3 logged, grouped per shard, or held for a delay; grade 1 never;
- every new incident carries its account's false alarms of the last 12
  months, and a warning near the police's limit (``false_alarms``).

A signal seen twice (a producer's retry: the same signal id) is skipped.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from arc.accounts.schedule import Schedule
from arc.dispatch import false_alarms, lifecycle, site_state, storm
from arc.dispatch.classification import CLASS_NAMES_ZH, Classification, Grade, Overrides, classify
from arc.dispatch.lifecycle import Change, Incident, Kind, Refused, Role
from arc.dispatch.open_close import ScheduleWatch
from arc.dispatch.open_close_engine import OpenCloseDecisions
from arc.dispatch.plans import CONFIRMED_STEPS, Plans
from arc.dispatch.signal import Signal
from arc.dispatch.storm import StormMode, Storms
from arc.dispatch.storm_engine import StormDecisions
from arc.dispatch.supervision import Supervisor

SYSTEM = "arc"
COMMUNICATION = "communication"
_RECENT_IDS = 50_000  # signal ids remembered per shard against a producer's retries

# The incident a missed link test opens.
LINK_LOST_TITLE = "链路测试超时 通讯中断 (link test missed)"


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``incident_log`` row to append (the chain is linked when it is written)."""

    shard: int
    incident_id: uuid.UUID
    account: str
    change: Change
    command_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """An operator's, supervisor's or guard's request to change an incident (``arc.commands``)."""

    command_id: uuid.UUID
    incident_id: uuid.UUID
    account: str
    kind: Kind
    actor: str
    role: Role
    at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, m: Mapping[str, Any]) -> Command:
        """The command of an ``arc.commands`` record."""
        return cls(
            command_id=uuid.UUID(m["command_id"]),
            incident_id=uuid.UUID(m["incident_id"]),
            account=m["account"],
            kind=Kind(m["kind"]),
            actor=m["actor"],
            role=Role(m["role"]),
            at=datetime.fromisoformat(m["at"]),
            details=m.get("details") or {},
        )

    def to_json(self) -> dict[str, Any]:
        """The command as JSON values."""
        return {
            "command_id": str(self.command_id),
            "incident_id": str(self.incident_id),
            "account": self.account,
            "kind": self.kind.value,
            "actor": self.actor,
            "role": self.role.value,
            "at": self.at.isoformat(),
            "details": dict(self.details),
        }


@dataclass
class Batch:
    """What one round of decisions changed: written in one transaction."""

    entries: list[Entry] = field(default_factory=list)
    incidents: dict[uuid.UUID, tuple[int, Incident]] = field(default_factory=dict)
    sites: dict[str, tuple[int, site_state.SiteState, datetime]] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    signals: int = 0

    def __bool__(self) -> bool:
        # Sites alone are not written: the dispatcher holds them (site_checkpoints).
        return bool(self.entries or self.results or self.offsets)


@dataclass
class Shard:
    """One partition's accounts: their open incidents, site states and link-test deadlines."""

    number: int
    supervisor: Supervisor
    incidents: dict[uuid.UUID, Incident] = field(default_factory=dict)
    # (account, class) -> the open incident signals of that class join.
    current: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)
    sites: dict[str, site_state.SiteState] = field(default_factory=dict)
    recent: OrderedDict[uuid.UUID, None] = field(default_factory=OrderedDict)
    false_alarms: false_alarms.FalseAlarms = field(default_factory=false_alarms.FalseAlarms)
    # class -> the open storm incident (mode group) that the class's signals join.
    storm_incidents: dict[str, uuid.UUID] = field(default_factory=dict)
    # (account, class) -> (zone, at) of its last storm-handled signal, to see
    # a sequential confirmation that storm mode must not swallow.
    storm_zones: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    # The accounts' closing deadlines (open/close supervision, arc.dispatch.open_close).
    watch: ScheduleWatch = field(default_factory=ScheduleWatch)

    def fold(self, signal: Signal, batch: Batch) -> bool:
        """Fold a new signal into its site's state (in ``batch``); False if seen already."""
        if signal.signal_id in self.recent:
            return False
        self.recent[signal.signal_id] = None
        if len(self.recent) > _RECENT_IDS:
            self.recent.popitem(last=False)
        account = signal.account
        site = site_state.apply(self.sites.get(account) or site_state.SiteState(), signal)
        self.sites[account] = site
        batch.sites[account] = (self.number, site, signal.received_at)
        return True

    def track(self, incident: Incident) -> None:
        """Keep ``incident`` as the one its account's signals of its class join (while open)."""
        key = (incident.account, incident.event_class)
        if incident.storm == StormMode.GROUP:
            self._track_storm(incident)
            return
        if incident.status is lifecycle.Status.CLOSED:
            self.incidents.pop(incident.incident_id, None)
            if self.current.get(key) == incident.incident_id:
                del self.current[key]
            return
        self.incidents[incident.incident_id] = incident
        if incident.status in lifecycle.JOINABLE:
            known = self.current.get(key)
            if known is None or self.incidents[known].opened_at <= incident.opened_at:
                self.current[key] = incident.incident_id
        elif self.current.get(key) == incident.incident_id:
            del self.current[key]

    def _track_storm(self, incident: Incident) -> None:
        # A storm incident is joined by its class's signals of every account of
        # the shard, not by its first account's alone: it is never `current`.
        cls, incident_id = incident.event_class, incident.incident_id
        if incident.status is lifecycle.Status.CLOSED:
            self.incidents.pop(incident_id, None)
        else:
            self.incidents[incident_id] = incident
        if incident.status in lifecycle.JOINABLE:
            self.storm_incidents[cls] = incident_id
        elif self.storm_incidents.get(cls) == incident_id:
            del self.storm_incidents[cls]


# Why a guard may not be dispatched (None: they may); the staff directory answers it.
GuardCheck = Callable[[str, datetime], str | None]


class Engine(StormDecisions, OpenCloseDecisions):
    """The decisions of one dispatcher process, for the shards it owns."""

    def __init__(
        self,
        *,
        overrides: Overrides | None = None,
        plans: Plans | None = None,
        join_window: timedelta = timedelta(minutes=10),
        confirm_window: timedelta = timedelta(minutes=30),
        supervision_grace: timedelta = timedelta(seconds=30),
        guard_check: GuardCheck | None = None,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
        false_alarm_limit: int = 3,
        schedule_grace: timedelta = timedelta(minutes=15),
    ) -> None:
        self.overrides = overrides or Overrides()
        self.plans = plans or Plans()
        self.join_window = join_window
        self.confirm_window = confirm_window
        self.supervision_grace = supervision_grace
        self.guard_check = guard_check
        self.false_alarm_limit = false_alarm_limit
        self.storms = Storms()  # from storm_modes, reloaded on change
        self.intervals: dict[str, int | None] = {}
        # account -> zone number (no leading zeros) -> detector technology (account_zones).
        self.technologies: dict[str, Mapping[str, str]] = {}
        self.schedule_grace = schedule_grace
        self.schedules: dict[str, Schedule] = {}  # account -> open hours (account_schedules)
        self.shards: dict[int, Shard] = {}
        self._new_id = new_id

    # -- shards ------------------------------------------------------------------

    def load_shard(
        self,
        number: int,
        *,
        incidents: Iterable[Incident],
        sites: Mapping[str, tuple[site_state.SiteState, datetime | None]],
        now: datetime,
        false_alarm_closes: Iterable[tuple[str, datetime]] = (),
        schedule_checked: Mapping[str, datetime] | None = None,
    ) -> Shard:
        """Take over a shard with its stored open incidents, site states and false alarms."""
        shard = Shard(number, Supervisor(grace=self.supervision_grace, started=now))
        shard.false_alarms = false_alarms.FalseAlarms(false_alarm_closes)
        shard.supervisor.set_intervals(self.intervals)
        # schedule_checked: when each account's last 未按时布防 opened (closings up to it were
        # handled before the restart).
        shard.watch = ScheduleWatch(
            grace=self.schedule_grace,
            started=now,
            schedules=self.schedules,
            handled=schedule_checked,
        )
        for incident in sorted(incidents, key=lambda i: i.opened_at):
            shard.track(incident)
            if incident.event_class == COMMUNICATION and incident.title == LINK_LOST_TITLE:
                shard.supervisor.mark_lost(incident.account)
        for account, (state, last_signal_at) in sites.items():
            shard.sites[account] = state
            if last_signal_at is not None and account not in shard.supervisor.lost:
                shard.supervisor.seen(account, last_signal_at)
            shard.watch.watch(account, now, missed=True)
        self.shards[number] = shard
        return shard

    def drop_shard(self, number: int) -> None:
        """Forget a shard (revoked, or its batch failed: it is loaded again)."""
        self.shards.pop(number, None)

    def set_technologies(self, technologies: Mapping[str, Mapping[str, str]]) -> None:
        """The accounts' zone technologies: account -> zone (no leading zeros) -> technology."""
        self.technologies = {a: dict(zones) for a, zones in technologies.items()}

    def set_intervals(self, intervals: Mapping[str, int | None]) -> None:
        """The accounts' link-test intervals (from ``accounts``, reloaded on change)."""
        self.intervals = dict(intervals)
        for shard in self.shards.values():
            shard.supervisor.set_intervals(self.intervals)

    # -- signals -----------------------------------------------------------------

    def on_signal(self, number: int, signal: Signal, batch: Batch) -> None:
        """Decide what ``signal`` changes; append it to ``batch``."""
        shard = self.shards[number]
        if not shard.fold(signal, batch):
            return
        batch.signals += 1
        account = signal.account
        if shard.supervisor.seen(account, signal.received_at):
            self._restore_link(shard, signal, batch)
        verdict = classify(signal, self.overrides)
        self._open_close_signal(shard, signal, verdict, batch)
        current_id = shard.current.get((account, verdict.event_class))
        current = None if current_id is None else shard.incidents[current_id]
        if verdict.restore:
            if current is not None:
                self._join(shard, current, signal, verdict, batch)
            else:
                self._restore_in_storm(shard, signal, verdict, batch)
            return
        if not verdict.opens_incident:
            return
        if current is not None and signal.received_at - current.updated_at <= self.join_window:
            self._join(shard, current, signal, verdict, batch)
            return
        found = self.storms.active(verdict.event_class, signal.received_at)
        if found is not None and storm.handles(found, verdict.grade):
            self._in_storm(shard, found, signal, verdict, batch)
        else:
            self._open(shard, signal, verdict, batch)

    def replay_signal(self, number: int, signal: Signal, batch: Batch) -> None:
        """Fold a signal decided before the shard was loaded into its site state only.

        The signals between the stored site states' offset and the shard's
        stored offset (``site_checkpoints``) opened and joined their incidents
        already; what they did to the site is all that is missing.
        """
        shard = self.shards[number]
        if not shard.fold(signal, batch):
            return
        account = signal.account
        # As load_shard does with the stored last signal: a lost link stays lost until a new one.
        if account not in shard.supervisor.lost:
            shard.supervisor.seen(account, signal.received_at)
        shard.watch.watch(account, signal.received_at)

    def _open(
        self,
        shard: Shard,
        signal: Signal,
        verdict: Classification,
        batch: Batch,
        *,
        more: Mapping[str, Any] | None = None,
    ) -> Incident:
        zone = signal.zone
        where = f" 防区 {zone}" if zone else ""
        name = CLASS_NAMES_ZH.get(verdict.event_class, verdict.event_class)
        code = signal.code_key.split(":", 1)[1]
        title = f"{name}{where}" + (f" ({code})" if code else "")
        steps = self.plans.steps_for(signal.account, verdict.event_class, verdict.grade)
        incident, change = lifecycle.open_incident(
            incident_id=self._new_id(),
            account=signal.account,
            event_class=verdict.event_class,
            grade=verdict.grade,
            title=title,
            steps=[s.as_tuple() for s in steps],
            at=signal.received_at,
            zone=zone,
            signal_id=signal.signal_id,
            more={**self._false_alarms(shard, signal.account, signal.received_at), **(more or {})},
        )
        change = _with_details(change, classified_by=verdict.source, code=signal.code_key)
        return self._record(shard, incident, change, batch)

    def _false_alarms(self, shard: Shard, account: str, at: datetime) -> dict[str, Any]:
        """The OPEN details that show an account's 12-month false alarms to the operator."""
        count = shard.false_alarms.count(account, at)
        found = false_alarms.warning(count, self.false_alarm_limit)
        return {"false_alarms_12m": count} | ({} if found is None else {"warning": found})

    def _join(
        self,
        shard: Shard,
        incident: Incident,
        signal: Signal,
        verdict: Classification,
        batch: Batch,
    ) -> None:
        change = Change(
            kind=Kind.JOIN,
            at=signal.received_at,
            actor=SYSTEM,
            role=Role.SYSTEM,
            signal_id=signal.signal_id,
            details={"zone": signal.zone, "restore": verdict.restore, "code": signal.code_key},
        )
        before = incident
        incident = self._record(shard, incident, change, batch)
        if (
            not verdict.restore
            and not incident.confirmed
            and verdict.event_class in CONFIRMED_STEPS
            and signal.zone is not None
            and len(incident.zones) > len(before.zones) >= 1
            and signal.received_at - incident.opened_at <= self.confirm_window
        ):
            raise_grade = self._confirmation(
                signal, verdict.event_class, incident.zones, self.technologies.get(signal.account)
            )
            if incident.grade > Grade.LIFE:
                incident = self._record(shard, incident, raise_grade, batch)
        if incident.held_until is not None:
            self._held_join(shard, incident, signal, verdict, batch)

    @staticmethod
    def _confirmation(
        signal: Signal,
        event_class: str,
        zones: Iterable[str],
        technologies: Mapping[str, str] | None = None,
    ) -> Change:
        """The RAISE_GRADE of a confirmation by a second zone: grade 1 and the plan's added steps.

        Two-technology when the new zone's detector and an earlier zone's are
        both known and differ (a draught may fool a PIR, not a door contact
        too); sequential when either is unknown or they are the same kind.
        ``technologies`` are the account's (zone without leading zeros -> technology).
        """
        known = technologies or {}

        def technology(zone: str | None) -> str | None:
            # Zones are numbered without leading zeros, as in site_state and account_zones;
            # "other" says nothing about how the detector works, so it confirms as unknown.
            found = None if zone is None else known.get(zone.lstrip("0") or "0")
            return None if found == "other" else found

        new = technology(signal.zone)
        ordered = sorted(zones)
        others = {t for z in ordered if z != signal.zone and (t := technology(z)) is not None}
        two = new is not None and any(t != new for t in others)
        how, words = (
            ("two_technology", "双技术确认 two-technology confirmation")
            if two
            else ("sequential", "顺序确认 sequential confirmation")
        )
        described = ", ".join(
            f"{z} ({t})" if (t := technology(z)) is not None else z for z in ordered
        )
        return Change(
            kind=Kind.RAISE_GRADE,
            at=signal.received_at,
            actor=SYSTEM,
            role=Role.SYSTEM,
            signal_id=signal.signal_id,
            details={
                "grade": int(Grade.LIFE),
                "reason": f"{words}: zones {described}",
                "confirmation": how,
                "technologies": {z: technology(z) for z in ordered},
                "steps": [s.as_json() for s in CONFIRMED_STEPS[event_class]],
            },
        )

    def _restore_link(self, shard: Shard, signal: Signal, batch: Batch) -> None:
        incident_id = shard.current.get((signal.account, COMMUNICATION))
        if incident_id is None:
            return
        change = Change(
            kind=Kind.JOIN,
            at=signal.received_at,
            actor=SYSTEM,
            role=Role.SYSTEM,
            signal_id=signal.signal_id,
            details={"zone": None, "restore": True, "code": "ARC:LINK_RESTORED"},
        )
        self._record(shard, shard.incidents[incident_id], change, batch)

    def _record(
        self,
        shard: Shard,
        incident: Incident,
        change: Change,
        batch: Batch,
        *,
        command_id: uuid.UUID | None = None,
    ) -> Incident:
        """Apply ``change`` (an OPEN created ``incident`` already) and put it in ``batch``."""
        if change.kind is not Kind.OPEN:
            before = incident
            incident = lifecycle.apply(incident, change)
            if (
                incident.resolution is lifecycle.Resolution.FALSE_ALARM
                and before.status is not lifecycle.Status.CLOSED
            ):
                shard.false_alarms.add(incident.account, change.at)
        shard.track(incident)
        batch.entries.append(
            Entry(shard.number, incident.incident_id, incident.account, change, command_id)
        )
        batch.incidents[incident.incident_id] = (shard.number, incident)
        return incident

    # -- commands ----------------------------------------------------------------

    def on_command(self, number: int, command: Command, batch: Batch) -> None:
        """Apply a person's command, or refuse it; either way its outcome goes in ``batch``."""
        shard = self.shards[number]
        incident = shard.incidents.get(command.incident_id)
        outcome: dict[str, Any] = {"command_id": str(command.command_id)}
        try:
            if incident is None or incident.account != command.account:
                raise Refused(
                    "事件处置流程 incident lifecycle",
                    f"incident {command.incident_id} of account {command.account} is not open",
                )
            if command.kind is Kind.DISPATCH and self.guard_check is not None:
                why_not = self.guard_check(str(command.details.get("guard") or ""), command.at)
                if why_not is not None:
                    raise Refused("保安员资格 REGULATION.md R2 (联网报警运营规范 §5.1)", why_not)
            if command.kind is Kind.OPEN:
                raise Refused("事件处置流程 incident lifecycle", "incidents are opened by signals")
            change = Change(
                kind=command.kind,
                at=command.at,
                actor=command.actor,
                role=command.role,
                details=command.details,
            )
            after = self._record(shard, incident, change, batch, command_id=command.command_id)
        except Refused as refused:
            outcome.update(ok=False, rule=refused.rule, message=refused.message)
        else:
            outcome.update(ok=True, incident_id=str(after.incident_id), status=after.status.value)
        batch.results.append(outcome)

    # -- the clock ---------------------------------------------------------------

    def on_tick(self, now: datetime, batch: Batch, *, caught_up: Callable[[int], bool]) -> None:
        """Open faults for missed link tests and closings left disarmed; escalate overdue steps.

        A shard whose consumer is behind is skipped for supervision: the
        signals that would move its deadlines may still be unread.
        """
        for number, shard in self.shards.items():
            self._release_held(shard, now, batch)
            if caught_up(number):
                for account in shard.supervisor.due(now):
                    self._open_link_lost(shard, account, now, batch)
                self._open_close_tick(shard, now, batch)
            for incident in list(shard.incidents.values()):
                for index in incident.overdue_steps(now):
                    change = Change(
                        kind=Kind.ESCALATE,
                        at=now,
                        actor=SYSTEM,
                        role=Role.SYSTEM,
                        details={"step": index, "reason": "step deadline passed"},
                    )
                    incident = self._record(shard, incident, change, batch)

    def _open_link_lost(self, shard: Shard, account: str, now: datetime, batch: Batch) -> None:
        grade = Grade.ATTENTION
        found = self.overrides.find(account, None, "ARC:LINK", COMMUNICATION)
        if found is not None:
            grade = found.grade
        interval = self.intervals.get(account)
        steps = self.plans.steps_for(account, COMMUNICATION, grade)
        incident, change = lifecycle.open_incident(
            incident_id=self._new_id(),
            account=account,
            event_class=COMMUNICATION,
            grade=grade,
            title=LINK_LOST_TITLE,
            steps=[s.as_tuple() for s in steps],
            at=now,
            zone=None,
            signal_id=None,
        )
        change = _with_details(
            change,
            code="ARC:LINK",
            link_test_seconds=interval,
            grace_s=self.supervision_grace.total_seconds(),
        )
        self._record(shard, incident, change, batch)


def _with_details(change: Change, **more: Any) -> Change:
    return Change(
        kind=change.kind,
        at=change.at,
        actor=change.actor,
        role=change.role,
        details={**change.details, **more},
        signal_id=change.signal_id,
    )
