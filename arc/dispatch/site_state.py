"""Each account's last known site state: a pure projection of its signals.

Theory of operation
-------------------
The dispatcher keeps one ``SiteState`` per account (jsonb in ``site_state``,
so it survives restarts) and folds every signal of the account into it with
``apply``. Nothing here does I/O or reads a clock: the signal's
``received_at`` is the only time, so replaying ``signal_log`` rebuilds the
same state.

What a signal means comes from the code tables (PROTOCOLS.md §2.3, §3.3):

* the *effect* of its code (arm, disarm, AC, battery, bypass, link test) from
  the explicit code sets below. When a signal has a SIA code, that code
  decides: the Contact ID codec fills it in from the table (CID 401 with
  qualifier 3 arrives as ``CL``), so a report means the same whichever way it
  was sent. Only without a SIA code (CID 442, 450-452, 572-575, 603, 910/911)
  do the Contact ID event and its qualifier decide;
* zone conditions from the table's class and qualifier: a hazard class
  (burglary, hold-up, panic, fire, gas, water, medical) puts the zone in
  alarm, TAMPER tampers it, TROUBLE and COMMUNICATION fault it; the RESTORE
  qualifier ends the condition. STATUS (Contact ID 6, "still present") counts
  as NEW.

Newer wins. Every condition (a partition's armed flag, each zone's alarm,
bypass, fault and tamper, AC, battery) remembers when it was last reported
(``at``) and takes a report only if it is at least as new, by
``received_at``: a late retransmission never flips a partition back. Reports
with the same ``received_at`` (the events of one DC-09 frame) apply in
delivery order. So the value of each condition is that of its newest report,
whatever order the reports were delivered in; ``since`` (when the current
value began) is kept across repeats of the same value and is exact only for
in-order delivery. ``last_seen``, ``last_link_test_at`` and
``last_signal_at`` are maxima; ``signals_seen`` counts every signal.

Arming and alarms. Disarming clears nothing: an operator must still see the
zone that went off. A closing means the intrusion zones of that partition are
normal (a panel does not arm over an open zone it has not bypassed), so it
clears the *burglary* alarms recorded for that partition and not newer than
the closing; a burglary alarm older than the partition's latest closing,
delivered late, is ignored for the same reason. Hold-up, panic, fire, gas,
water and medical alarms (24-hour zones) stay until their restore.

Normalisation
-------------
* Partition: leading zeros dropped (CID "01" and SIA ``ri1`` are "1"). No
  partition (CID "00", which the codec turns into None, SIA without ``ri``)
  is partition "1": a panel without partitions has one area, and most
  single-area panels send 00 or 01 interchangeably.
* Zone: leading zeros dropped (CID "003" and SIA "BA3" are "3"). Zone "0" is
  the panel itself: alarms and tampers without a zone (a duress code, a
  keypad panic, the panel lid) and numbers that name a device or door rather
  than a detection zone (SIA codes whose table address is a device or door:
  expanders, relays, lines, printers...). Troubles are tracked only for real
  zones; the panel's own troubles other than AC and battery are for the
  incident, not for the state.
* User: leading zeros dropped.
* Path of ``last_seen``: ``"<protocol>/<transport>"``, e.g. ``dc09/tcp``. Not
  the peer address: a GPRS panel's address changes with every connection.

Contact ID events whose restore has no meaning in the table ("—": wrong code
entry, panel on/offline...) are one-shot reports, not conditions: they change
no zone.

Cost. ``apply`` runs for every signal, so each kind of zone condition has a
mapping of its own and a signal copies only the one it changes (a link test
copies none but the tiny ``last_seen``). A zone keeps its entry once its
condition ends (the entry holds the clock that makes newer-wins work). At
most ``MAX_ZONES`` entries are kept per mapping, so a panel that makes up zone
numbers cannot grow the jsonb without bound: at the limit, entries whose
condition has ended are dropped to make room, and if none has, the new zone
is not tracked.

Its stored form (the jsonb) is ``site_state_json``; how it reads to an
operator, ``site_summary``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final, Generic, Literal, TypeVar

from arc.dispatch.signal import Signal
from protocols.contact_id_codes import CID_CODES
from protocols.events import Address, EventClass, Qualifier
from protocols.sia_codes import SIA_CODES

__all__ = [
    "MAX_ZONES",
    "AcPower",
    "Battery",
    "PartitionState",
    "Reported",
    "SiteState",
    "ZoneAlarm",
    "apply",
    "arming",
]

MAX_ZONES: Final = 1024  # more than any panel has (CID zones run to 999)
DEFAULT_PARTITION: Final = "1"
PANEL: Final = "0"  # the zone key of the panel itself

AcPower = Literal["ok", "lost"]
Battery = Literal["ok", "low", "missing"]
T = TypeVar("T")


# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reported(Generic[T]):
    """A reported condition: its value, since when it holds, when last reported."""

    value: T
    since: datetime  # the first report of this value (in delivery order)
    at: datetime  # the newest report: the newer-wins clock


@dataclass(frozen=True, slots=True)
class PartitionState:
    """One partition's armed state; ``armed`` None means never reported."""

    armed: bool | None = None
    armed_changed_at: datetime | None = None
    by_user: str | None = None  # the user of the newest open/close report
    reported_at: datetime | None = None  # the newest open/close report: newer-wins clock
    closed_at: datetime | None = None  # the newest closing, even one delivered late


@dataclass(frozen=True, slots=True)
class ZoneAlarm:
    """A zone's newest alarm report: the hazard while in alarm, None once restored."""

    hazard: EventClass | None
    partition: str | None  # the partition the alarm was reported in
    since: datetime
    at: datetime  # the newest report: the newer-wins clock


@dataclass(frozen=True, slots=True)
class SiteState:
    """An account's last known state. Immutable: ``apply`` returns a new one.

    The zone mappings (``alarms``, ``bypass``, ``fault``, ``tamper``) hold each
    zone's newest report of that condition, ended ones included; the
    properties ``in_alarm``, ``bypassed``, ``faulted`` and ``tampered`` give
    the zones where it holds. Mappings are never changed once built, so
    states share them freely; keys are normalised numbers (see the module doc).
    """

    partitions: Mapping[str, PartitionState] = field(default_factory=dict)
    alarms: Mapping[str, ZoneAlarm] = field(default_factory=dict)
    bypass: Mapping[str, Reported[bool]] = field(default_factory=dict)
    fault: Mapping[str, Reported[bool]] = field(default_factory=dict)
    tamper: Mapping[str, Reported[bool]] = field(default_factory=dict)
    ac_power: Reported[AcPower] | None = None
    battery: Reported[Battery] | None = None
    last_seen: Mapping[str, datetime] = field(default_factory=dict)  # path -> newest signal
    last_link_test_at: datetime | None = None
    last_signal_at: datetime | None = None
    signals_seen: int = 0

    @property
    def in_alarm(self) -> Mapping[str, tuple[EventClass, datetime]]:
        """Zones in alarm: zone -> (hazard class, since); "0" is the panel."""
        return {k: (a.hazard, a.since) for k, a in self.alarms.items() if a.hazard is not None}

    @property
    def bypassed(self) -> frozenset[str]:
        """Zones bypassed."""
        return frozenset(k for k, r in self.bypass.items() if r.value)

    @property
    def faulted(self) -> frozenset[str]:
        """Zones with a trouble."""
        return frozenset(k for k, r in self.fault.items() if r.value)

    @property
    def tampered(self) -> frozenset[str]:
        """Zones tampered; "0" is the panel (or a device of it)."""
        return frozenset(k for k, r in self.tamper.items() if r.value)


# ---------------------------------------------------------------------------
# Code sets
# ---------------------------------------------------------------------------

_Effect = Literal[
    "arm",
    "disarm",
    "ac_lost",
    "ac_ok",
    "battery_low",
    "battery_missing",
    "battery_ok",
    "bypass",
    "unbypass",
    "link_test",
]

# Closings (SIA table: class OPEN_CLOSE, qualifier RESTORE): the partition is armed.
# CZ (point closing) is left out: it arms one point, not the partition.
SIA_CLOSINGS: Final = frozenset(
    {"CA", "CB", "CF", "CG", "CJ", "CK", "CL", "CP", "CQ", "CS", "CW", "NF", "NL", "NM"}
)
# Openings: the partition is disarmed. NO/NP end night (perimeter) mode, the
# counterpart of NL/NF/NM; ND is a night-mode disarm under duress (class HOLDUP,
# so it also puts the panel in hold-up alarm). OZ (point opening) is left out.
SIA_OPENINGS: Final = frozenset(
    {"OA", "OB", "OG", "OH", "OJ", "OK", "OL", "OP", "OQ", "OR", "OS", "NO", "NP", "ND"}
)
# OPEN_CLOSE codes that change no armed state, for the record: arming failed
# or a scenario announced (CC, NE, AF, NB); schedule delinquencies, where no
# opening or closing took place (CD closing delinquent, CI fail to close, CT
# late to open, OI fail to open, OT late to close, CE closing time extended);
# exit error (EE); alarm soon after closing (CR). Contact ID likewise: 404/405
# (late to / deferred open-close), 406 (cancel), 453-455, 457-459, 463, 464.

SIA_BYPASSES: Final = frozenset(
    # Zone-type bypasses and XW, a point forced out (bypassed) at arming.
    {"BB", "FB", "GB", "HB", "KB", "MB", "PB", "QB", "SB", "TB", "UB", "WB", "ZB", "XW"}
)
SIA_UNBYPASSES: Final = frozenset(
    {"BU", "FU", "GU", "HU", "KU", "MU", "PU", "QU", "SU", "TU", "UU", "WU", "ZU"}
)
# Periodic and manual test reports prove the path, like a DC-09 NULL message.
# Zone tests (BX, FX, TP...) are about detectors, not the path.
SIA_LINK_TESTS: Final = frozenset({"RP", "RX", "TX"})

_SIA_EFFECTS: Final[Mapping[str, _Effect]] = {
    **dict.fromkeys(SIA_CLOSINGS, "arm"),
    **dict.fromkeys(SIA_OPENINGS, "disarm"),
    **dict.fromkeys(SIA_BYPASSES, "bypass"),
    **dict.fromkeys(SIA_UNBYPASSES, "unbypass"),
    **dict.fromkeys(SIA_LINK_TESTS, "link_test"),
    "AT": "ac_lost",
    "AR": "ac_ok",
    "YT": "battery_low",  # system battery trouble (CID 302, 309)
    "YM": "battery_missing",  # system battery missing (CID 311)
    "YR": "battery_ok",
}

# Contact ID openings/closings: qualifier 1 is the opening (disarm), 3 the closing (arm).
CID_OPEN_CLOSE: Final = frozenset(
    {"400", "401", "402", "403", "407", "408", "409", "441", "442", "450", "451", "452", "456"}
)
CID_CLOSINGS: Final = frozenset({"910", "911"})  # auto-close / closing with bypass: armed
CID_BYPASSES: Final = frozenset({"570", "571", "572", "573", "574", "575"})  # 576/577: doors
CID_LINK_TESTS: Final = frozenset({"601", "602", "603", "608"})

# (effect with qualifier 1 or 6, effect with qualifier 3)
_CID_EFFECTS: Final[Mapping[str, tuple[_Effect, _Effect]]] = {
    **dict.fromkeys(CID_OPEN_CLOSE, ("disarm", "arm")),
    **dict.fromkeys(CID_CLOSINGS, ("arm", "arm")),
    **dict.fromkeys(CID_BYPASSES, ("bypass", "unbypass")),
    **dict.fromkeys(CID_LINK_TESTS, ("link_test", "link_test")),
    "301": ("ac_lost", "ac_ok"),
    "302": ("battery_low", "battery_ok"),
    "309": ("battery_low", "battery_ok"),  # battery test failure
    "311": ("battery_missing", "battery_ok"),
}

# Effects that say all a signal means: no zone condition besides.
_NOT_ZONE_EFFECTS: Final = frozenset(
    {"ac_lost", "ac_ok", "battery_low", "battery_missing", "battery_ok", "link_test"}
)

_BURGLARY = EventClass.BURGLARY
HAZARDS: Final = frozenset(
    {
        EventClass.BURGLARY,
        EventClass.HOLDUP,
        EventClass.PANIC,
        EventClass.FIRE,
        EventClass.GAS,
        EventClass.WATER,
        EventClass.MEDICAL,
    }
)
_ALARM, _TAMPER, _FAULT = 0, 1, 2
_ASPECTS: Final[Mapping[EventClass, int]] = {
    **dict.fromkeys(HAZARDS, _ALARM),
    EventClass.TAMPER: _TAMPER,
    EventClass.TROUBLE: _FAULT,
    EventClass.COMMUNICATION: _FAULT,
}
# SIA codes whose number names a device or a door, not a detection zone.
_NOT_A_ZONE: Final = frozenset(
    code
    for code, row in SIA_CODES.items()
    if row.address is Address.DEVICE or row.address is Address.DOOR
)
_ONE_SHOT: Final = frozenset(
    code for code, row in CID_CODES.items() if row.restore_meaning_zh == "—"
)

_RESTORE, _TEST = Qualifier.RESTORE, EventClass.TEST
_NO_PARTITION = PartitionState()


def _effect(signal: Signal) -> _Effect | None:
    code = signal.code
    if code is not None:
        return _SIA_EFFECTS.get(code)
    cid = signal.cid_event
    if cid is not None:
        pair = _CID_EFFECTS.get(cid)
        if pair is None:
            return None
        return pair[1] if signal.qualifier is _RESTORE else pair[0]
    # A DC-09 NULL message (link test) is the only signal with neither code.
    return "link_test" if signal.event_class is _TEST else None


def _number(value: str | None, default: str) -> str:
    if value is None:
        return default
    return value.lstrip("0") or default


# ---------------------------------------------------------------------------
# apply
# ---------------------------------------------------------------------------


def _report(old: Reported[T] | None, value: T, at: datetime) -> Reported[T]:
    """Return the condition after a report of ``value`` at ``at`` (newer wins)."""
    if old is None:
        return Reported(value, at, at)
    if at < old.at:
        return old
    return Reported(value, old.since if old.value == value else at, at)


def apply(state: SiteState, signal: Signal) -> SiteState:
    """Return the state after ``signal``; ``state`` is left as it was."""
    at = signal.received_at
    seen = state.last_seen
    path = f"{signal.protocol}/{signal.transport}"
    previous = seen.get(path)
    if previous is None or at > previous:
        seen = {**seen, path: at}
    last = state.last_signal_at
    if last is None or at > last:
        last = at
    partitions, alarms = state.partitions, state.alarms
    bypass, fault, tamper = state.bypass, state.fault, state.tamper
    ac, battery, link = state.ac_power, state.battery, state.last_link_test_at

    effect = _effect(signal)
    if effect is not None:
        if effect == "arm" or effect == "disarm":
            partitions, alarms = _open_close(partitions, alarms, signal, effect == "arm")
        elif effect == "link_test":
            if link is None or at > link:
                link = at
        elif effect == "bypass" or effect == "unbypass":
            key = _number(signal.zone, PANEL)
            if key != PANEL:  # a bypass names a zone; without one it says nothing
                bypass = _flag(bypass, key, effect == "bypass", at)
        elif effect == "ac_lost":
            ac = _report(ac, "lost", at)
        elif effect == "ac_ok":
            ac = _report(ac, "ok", at)
        elif effect == "battery_low":
            battery = _report(battery, "low", at)
        elif effect == "battery_missing":
            battery = _report(battery, "missing", at)
        else:
            battery = _report(battery, "ok", at)
    event_class = signal.event_class
    if event_class is not None and effect not in _NOT_ZONE_EFFECTS:
        aspect = _ASPECTS.get(event_class)
        if aspect is not None and signal.cid_event not in _ONE_SHOT:
            zone = signal.zone
            if zone is None or signal.code in _NOT_A_ZONE:
                key = PANEL
            else:
                key = zone.lstrip("0") or PANEL
            on = signal.qualifier is not _RESTORE
            if aspect == _ALARM:
                alarms = _alarm(alarms, partitions, key, event_class if on else None, signal)
            elif aspect == _TAMPER:
                tamper = _flag(tamper, key, on, at)
            elif key != PANEL:  # the panel's own troubles are for the incident
                fault = _flag(fault, key, on, at)
    return SiteState(
        partitions,
        alarms,
        bypass,
        fault,
        tamper,
        ac,
        battery,
        seen,
        link,
        last,
        state.signals_seen + 1,
    )


def _open_close(
    partitions: Mapping[str, PartitionState],
    alarms: Mapping[str, ZoneAlarm],
    signal: Signal,
    armed: bool,
) -> tuple[Mapping[str, PartitionState], Mapping[str, ZoneAlarm]]:
    at = signal.received_at
    key = _number(signal.partition_no, DEFAULT_PARTITION)
    old = partitions.get(key, _NO_PARTITION)
    new = old
    if old.reported_at is None or at >= old.reported_at:
        changed = old.armed_changed_at if old.armed is armed else at
        user = None if signal.user_no is None else _number(signal.user_no, "0")
        new = PartitionState(armed, changed, user, at, old.closed_at)
    if armed:
        if old.closed_at is None or at > old.closed_at:
            new = replace(new, closed_at=at)
        cleared = {
            zone: ZoneAlarm(None, key, at, at)
            for zone, alarm in alarms.items()
            if alarm.hazard is _BURGLARY and alarm.partition == key and alarm.at <= at
        }
        if cleared:
            alarms = {**alarms, **cleared}
    if new is not old:
        partitions = {**partitions, key: new}
    return partitions, alarms


def _alarm(
    alarms: Mapping[str, ZoneAlarm],
    partitions: Mapping[str, PartitionState],
    key: str,
    hazard: EventClass | None,
    signal: Signal,
) -> Mapping[str, ZoneAlarm]:
    at = signal.received_at
    old = alarms.get(key)
    if old is not None and at < old.at:
        return alarms
    if hazard is None:  # a restore
        partition = None if old is None else old.partition
    else:
        partition = _number(signal.partition_no, DEFAULT_PARTITION)
        if hazard is _BURGLARY:
            closed_at = partitions.get(partition, _NO_PARTITION).closed_at
            if closed_at is not None and at < closed_at:
                return alarms  # the partition has been armed since: cleared
    since = old.since if old is not None and old.hazard is hazard else at
    return _put(alarms, key, ZoneAlarm(hazard, partition, since, at))


def _flag(
    flags: Mapping[str, Reported[bool]], key: str, on: bool, at: datetime
) -> Mapping[str, Reported[bool]]:
    old = flags.get(key)
    new = _report(old, on, at)
    return flags if new is old else _put(flags, key, new)


_V = TypeVar("_V", ZoneAlarm, Reported[bool])


def _put(entries: Mapping[str, _V], key: str, entry: _V) -> Mapping[str, _V]:
    if key not in entries and len(entries) >= MAX_ZONES:
        kept = {k: e for k, e in entries.items() if _holds(e)}
        if len(kept) >= MAX_ZONES:
            return entries
        entries = kept
    return {**entries, key: entry}


def _holds(entry: ZoneAlarm | Reported[bool]) -> bool:
    return entry.hazard is not None if isinstance(entry, ZoneAlarm) else entry.value


def arming(signal: Signal) -> bool | None:
    """True for a closing (the partition is armed), False for an opening, None otherwise."""
    effect = _effect(signal)
    if effect == "arm":
        return True
    if effect == "disarm":
        return False
    return None
