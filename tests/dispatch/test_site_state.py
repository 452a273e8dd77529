"""Tests for arc.dispatch.site_state: the projection of an account's last known state.

Signals are built from the fields the real codecs produce (``sia.to_event``,
``contact_id.to_event``), so zones and partitions look exactly as they do in
production: Contact ID zone "003" and partition "01", SIA "3" and ``ri1``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, tzinfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arc.dispatch import site_state
from arc.dispatch.signal import Signal
from arc.dispatch.site_state import (
    MAX_ZONES,
    PartitionState,
    Reported,
    SiteState,
    ZoneAlarm,
    apply,
)
from arc.dispatch.site_state_json import SCHEMA_VERSION, encode, from_json
from arc.dispatch.site_summary import summary_en, summary_zh
from arc.model import BEIJING
from protocols import contact_id, sia
from protocols.contact_id_codes import CID_CODES
from protocols.events import AlarmEvent, EventClass, Protocol, Qualifier, build_event
from protocols.sia_codes import SIA_CODES

PROPERTY = settings(max_examples=150, deadline=None)

# 2026-12-02 19:30:05 Beijing time.
T0 = datetime(2026, 12, 2, 11, 30, 5, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def signal_of(event: AlarmEvent, t: float = 0, transport: str = "tcp") -> Signal:
    """The ``Signal`` the dispatcher sees for a codec's event."""
    return Signal(
        signal_id=uuid.uuid4(),
        received_at=at(t),
        account=event.account,
        protocol=event.protocol.value,
        transport=transport,
        peer="10.1.2.3:40000",
        qualifier=event.qualifier,
        code=event.code,
        cid_event=event.cid_event,
        event_class=event.event_class,
        zone=event.zone,
        user_no=event.user,
        partition_no=event.partition,
        event_text=event.text,
    )


def sia_signal(
    code: str,
    address: str | None = None,
    *,
    ri: str | None = None,
    user: str | None = None,
    t: float = 0,
    transport: str = "tcp",
) -> Signal:
    report = sia.SiaReport(code, address, ri, user)
    event = sia.to_event(report, account="1234", protocol=Protocol.DC09, raw=b"")
    return signal_of(event, t, transport)


def cid_signal(
    event: str, q: str, gg: str = "01", ccc: str = "000", *, t: float = 0, transport: str = "tcp"
) -> Signal:
    alarm = contact_id.to_event(event, q, gg, ccc, account="1234", protocol=Protocol.DC09, raw=b"")
    return signal_of(alarm, t, transport)


def null_signal(t: float = 0, transport: str = "tcp") -> Signal:
    """A DC-09 NULL message (link test), as the DC-09 receiver builds it."""
    event = build_event(account="1234", protocol=Protocol.DC09, event_class=EventClass.TEST)
    return signal_of(event, t, transport)


def fold(signals: Iterable[Signal], state: SiteState | None = None) -> SiteState:
    state = SiteState() if state is None else state
    for signal in signals:
        state = apply(state, signal)
    return state


def zones(state: SiteState) -> dict[str, tuple[EventClass | None, bool, bool, bool]]:
    """Each zone with a condition that holds: (hazard, bypassed, faulted, tampered)."""
    keys = set(state.alarms) | set(state.bypass) | set(state.fault) | set(state.tamper)
    shown = {}
    for key in keys:
        alarm = state.alarms.get(key)
        row = (
            None if alarm is None else alarm.hazard,
            key in state.bypassed,
            key in state.faulted,
            key in state.tampered,
        )
        if row != (None, False, False, False):
            shown[key] = row
    return shown


def armed(state: SiteState, partition: str = "1") -> bool | None:
    return state.partitions[partition].armed


# ---------------------------------------------------------------------------
# The helpers build what the codecs build
# ---------------------------------------------------------------------------


def test_the_signals_carry_the_codecs_field_forms() -> None:
    close = cid_signal("401", "3", "01", "005")
    assert (close.code, close.cid_event, close.qualifier) == ("CL", "401", Qualifier.RESTORE)
    assert (close.partition_no, close.user_no, close.zone) == ("01", "005", None)
    alarm = cid_signal("130", "1", "00", "003")
    assert (alarm.zone, alarm.partition_no, alarm.event_class) == ("003", None, EventClass.BURGLARY)
    area = sia_signal("CG", "2")
    assert (area.partition_no, area.zone, area.cid_event) == ("2", None, "456")
    zone = sia_signal("BA", "012", ri="1")
    assert (zone.zone, zone.partition_no) == ("012", "1")


# ---------------------------------------------------------------------------
# Open/close
# ---------------------------------------------------------------------------


def test_a_new_state_knows_nothing() -> None:
    state = SiteState()
    assert state.partitions == {} and zones(state) == {}
    assert state.ac_power is None and state.battery is None
    assert state.last_signal_at is None and state.signals_seen == 0


def test_sia_closing_arms_and_opening_disarms() -> None:
    state = apply(SiteState(), sia_signal("CL", "3", ri="1", t=0))
    assert state.partitions["1"] == PartitionState(True, at(0), "3", at(0), at(0))
    state = apply(state, sia_signal("OP", "4", ri="1", t=10))
    assert state.partitions["1"] == PartitionState(False, at(10), "4", at(10), at(0))


def test_contact_id_qualifier_3_arms_and_1_disarms() -> None:
    state = apply(SiteState(), cid_signal("401", "3", "01", "005", t=0))
    assert armed(state) is True and state.partitions["1"].by_user == "5"
    state = apply(state, cid_signal("401", "1", "01", "005", t=5))
    assert armed(state) is False


@pytest.mark.parametrize("code", sorted(site_state.SIA_CLOSINGS))
def test_every_sia_closing_arms(code: str) -> None:
    state = fold([sia_signal("OP", ri="1", t=0), sia_signal(code, "1", ri="1", t=1)])
    assert armed(state) is True


@pytest.mark.parametrize("code", sorted(site_state.SIA_OPENINGS))
def test_every_sia_opening_disarms(code: str) -> None:
    state = fold([sia_signal("CL", ri="1", t=0), sia_signal(code, "1", ri="1", t=1)])
    assert armed(state) is False


@pytest.mark.parametrize("event", sorted(site_state.CID_OPEN_CLOSE))
def test_every_contact_id_open_close_follows_its_qualifier(event: str) -> None:
    state = apply(SiteState(), cid_signal(event, "3", "01", "001", t=0))
    assert armed(state) is True
    assert armed(apply(state, cid_signal(event, "1", "01", "001", t=1))) is False


@pytest.mark.parametrize(
    "signal",
    [
        *(sia_signal(code, "1", ri="1", t=5) for code in ("CI", "CC", "CD", "CT", "CR", "CE")),
        *(sia_signal(code, "1", ri="1", t=5) for code in ("OI", "OT", "EE", "NE", "CZ", "OZ")),
        *(cid_signal(event, "1", "01", "001", t=5) for event in ("404", "405", "406", "453")),
        *(cid_signal(event, "3", "01", "001", t=5) for event in ("404", "454", "455", "459")),
    ],
    ids=lambda signal: signal.code_key,
)
def test_failures_delinquencies_and_cancels_change_no_armed_state(signal: Signal) -> None:
    for before in (sia_signal("CL", ri="1"), sia_signal("OP", ri="1")):
        state = fold([before, signal])
        assert state.partitions["1"] == apply(SiteState(), before).partitions["1"]


def test_partitions_are_independent_and_leading_zeros_do_not_matter() -> None:
    state = fold(
        [
            cid_signal("401", "3", "01", "001", t=0),  # partition "01"
            sia_signal("CG", "2", t=1),  # area 2, from the address
            sia_signal("OP", "7", ri="2", t=2),  # partition 2 from ri
            sia_signal("CL", "7", ri="3", t=3),
        ]
    )
    assert {k: p.armed for k, p in state.partitions.items()} == {"1": True, "2": False, "3": True}
    assert armed(apply(state, sia_signal("OP", "1", ri="01", t=4))) is False


def test_no_partition_is_partition_1() -> None:
    state = apply(SiteState(), cid_signal("401", "3", "00", "001"))  # 00: no partition
    assert armed(state) is True
    assert armed(apply(state, sia_signal("OP", "1", t=1))) is False  # no ri
    assert armed(apply(state, sia_signal("OP", "1", ri="0", t=1))) is False


def test_a_late_retransmission_does_not_flip_the_armed_state() -> None:
    state = fold([sia_signal("OP", ri="1", t=0), sia_signal("CL", "2", ri="1", t=60)])
    late = apply(state, sia_signal("OP", "9", ri="1", t=1))  # the t=0 opening, retried
    assert late.partitions["1"] == state.partitions["1"]
    assert late.last_signal_at == at(60) and late.last_seen == {"dc09/tcp": at(60)}
    assert late.signals_seen == 3


def test_reports_at_the_same_time_apply_in_delivery_order() -> None:
    # One DC-09 frame with two events: both have the frame's received_at.
    state = fold([sia_signal("OP", ri="1", t=0), sia_signal("CL", ri="1", t=0)])
    assert armed(state) is True


def test_armed_changed_at_survives_a_repeat() -> None:
    state = fold([sia_signal("CL", "1", ri="1", t=0), sia_signal("CL", "2", ri="1", t=30)])
    partition = state.partitions["1"]
    assert partition.armed_changed_at == at(0)
    assert (partition.reported_at, partition.by_user) == (at(30), "2")


# ---------------------------------------------------------------------------
# Alarms, tampers, troubles, bypasses
# ---------------------------------------------------------------------------


def test_alarm_and_restore_across_sia_and_contact_id() -> None:
    state = apply(SiteState(), cid_signal("130", "1", "01", "003", t=0))
    assert state.in_alarm == {"3": (EventClass.BURGLARY, at(0))}
    state = apply(state, sia_signal("BH", "3", t=5))
    assert state.in_alarm == {}
    state = apply(state, sia_signal("FA", "12", t=6))
    assert state.in_alarm == {"12": (EventClass.FIRE, at(6))}
    assert apply(state, cid_signal("110", "3", "01", "012", t=7)).in_alarm == {}


@pytest.mark.parametrize(
    ("new", "restore", "hazard"),
    [
        ("HA", "HR", EventClass.HOLDUP),
        ("PA", "PH", EventClass.PANIC),
        ("GA", "GH", EventClass.GAS),
        ("WA", "WH", EventClass.WATER),
        ("MA", "MR", EventClass.MEDICAL),
        ("KA", "KH", EventClass.FIRE),
    ],
)
def test_every_hazard_puts_the_zone_in_alarm(new: str, restore: str, hazard: EventClass) -> None:
    state = apply(SiteState(), sia_signal(new, "4", t=0))
    assert state.in_alarm == {"4": (hazard, at(0))}
    assert apply(state, sia_signal(restore, "4", t=1)).in_alarm == {}


def test_a_repeated_alarm_keeps_its_since_and_a_status_report_counts_as_new() -> None:
    state = fold([sia_signal("BA", "3", t=0), cid_signal("130", "6", "01", "003", t=20)])
    assert state.in_alarm == {"3": (EventClass.BURGLARY, at(0))}
    assert state.alarms["3"] == ZoneAlarm(EventClass.BURGLARY, "1", at(0), at(20))


def test_a_late_alarm_does_not_undo_its_restore() -> None:
    state = fold([sia_signal("BH", "3", t=10), sia_signal("BA", "3", t=5)])
    assert state.in_alarm == {}


def test_an_alarm_without_a_zone_belongs_to_the_panel() -> None:
    state = apply(SiteState(), cid_signal("121", "1", "01", "002"))  # duress, CCC is the user
    assert state.in_alarm == {"0": (EventClass.HOLDUP, at(0))}


def test_a_duress_disarm_disarms_and_raises_a_hold_up() -> None:
    state = fold([sia_signal("CL", ri="1", t=0), sia_signal("ND", "1", t=1)])
    assert armed(state) is False
    assert state.in_alarm == {"0": (EventClass.HOLDUP, at(1))}


def test_disarming_keeps_alarms_and_arming_clears_burglary_of_that_partition() -> None:
    state = fold(
        [
            sia_signal("BA", "3", ri="1", t=0),
            sia_signal("BA", "4", ri="2", t=0),
            sia_signal("FA", "5", ri="1", t=0),
            sia_signal("OR", "1", ri="1", t=10),  # disarm from alarm
        ]
    )
    assert set(state.in_alarm) == {"3", "4", "5"}
    state = apply(state, sia_signal("CL", "1", ri="1", t=20))
    # Zone 4 is in partition 2; the fire zone is a 24-hour zone.
    assert state.in_alarm == {"4": (EventClass.BURGLARY, at(0)), "5": (EventClass.FIRE, at(0))}
    assert state.alarms["3"] == ZoneAlarm(None, "1", at(20), at(20))


def test_a_burglary_alarm_older_than_the_last_closing_is_ignored() -> None:
    state = fold([sia_signal("CL", ri="1", t=20), cid_signal("130", "1", "01", "003", t=10)])
    assert state.in_alarm == {}
    # A late closing still clears what it would have cleared in order.
    state = fold([sia_signal("BA", "3", ri="1", t=10), sia_signal("OP", ri="1", t=30)])
    state = apply(state, sia_signal("CL", ri="1", t=20))
    assert state.in_alarm == {} and armed(state) is False
    assert state.partitions["1"].closed_at == at(20)


def test_an_alarm_after_the_closing_stands() -> None:
    state = fold([sia_signal("CL", ri="1", t=0), sia_signal("BA", "3", ri="1", t=0)])
    assert set(state.in_alarm) == {"3"}


def test_tamper_and_restore() -> None:
    state = apply(SiteState(), sia_signal("TA", "6", t=0))
    assert state.tampered == {"6"}
    assert apply(state, cid_signal("137", "3", "01", "006", t=1)).tampered == set()


def test_a_device_tamper_is_the_panels_and_a_wrong_code_is_one_shot() -> None:
    state = apply(SiteState(), sia_signal("ES", "2", t=0))  # expander 2 tampered
    assert state.tampered == {"0"}
    assert zones(apply(SiteState(), cid_signal("461", "1", "01", "000"))) == {}


def test_zone_troubles_fault_the_zone_and_restore_clears() -> None:
    state = fold([sia_signal("BT", "7", t=0), sia_signal("XT", "8", t=0)])
    assert state.faulted == {"7", "8"}
    state = fold([sia_signal("BJ", "7", t=1), cid_signal("380", "1", "01", "009", t=2)], state)
    assert state.faulted == {"8", "9"}
    assert apply(state, sia_signal("BZ", "10", t=3)).faulted == {"8", "9", "10"}  # missing


def test_panel_and_device_troubles_fault_no_zone() -> None:
    signals = [
        sia_signal("YX", t=0),  # service required
        sia_signal("ET", "3", t=0),  # expander 3
        cid_signal("333", "1", "01", "004", t=0),  # expansion module 4 (ET)
        sia_signal("LT", "1", t=0),  # phone line 1
        sia_signal("YA", t=0),  # bell
    ]
    assert zones(fold(signals)) == {}


def test_bypass_and_unbypass() -> None:
    state = fold([sia_signal("BB", "5", t=0), cid_signal("570", "1", "01", "006", t=0)])
    assert state.bypassed == {"5", "6"}
    state = fold([cid_signal("570", "3", "01", "005", t=1), sia_signal("FU", "6", t=1)], state)
    assert state.bypassed == set()
    state = fold([cid_signal("573", "1", "01", "011", t=2), sia_signal("XW", "12", t=2)], state)
    assert state.bypassed == {"11", "12"}
    assert apply(state, sia_signal("BU", "011", t=3)).bypassed == {"12"}


def test_a_bypass_is_not_an_alarm() -> None:
    for signal in (sia_signal("BB", "5"), sia_signal("FB", "5"), cid_signal("571", "1", ccc="005")):
        state = apply(SiteState(), signal)
        assert state.in_alarm == {} and state.faulted == set()


# ---------------------------------------------------------------------------
# Power, battery, link tests, paths
# ---------------------------------------------------------------------------


def test_ac_loss_and_restore() -> None:
    state = apply(SiteState(), sia_signal("AT", t=0))
    assert state.ac_power == Reported("lost", at(0), at(0))
    state = apply(state, cid_signal("301", "1", "00", "000", t=30))  # still lost
    assert state.ac_power == Reported("lost", at(0), at(30))
    state = apply(state, cid_signal("301", "3", "00", "000", t=60))
    assert state.ac_power == Reported("ok", at(60), at(60))
    assert apply(state, sia_signal("AT", t=45)).ac_power == state.ac_power  # late
    assert zones(state) == {}


@pytest.mark.parametrize(
    ("signal", "battery"),
    [
        (sia_signal("YT"), "low"),
        (sia_signal("YM"), "missing"),
        (cid_signal("302", "1"), "low"),
        (cid_signal("309", "1"), "low"),
        (cid_signal("311", "1"), "missing"),
    ],
    ids=lambda value: value.code_key if isinstance(value, Signal) else value,
)
def test_battery(signal: Signal, battery: str) -> None:
    state = apply(SiteState(), signal)
    assert state.battery is not None and state.battery.value == battery
    for restore in (sia_signal("YR", t=1), cid_signal(signal.cid_event or "302", "3", t=1)):
        restored = apply(state, restore).battery
        assert restored is not None and restored.value == "ok"


def test_link_tests() -> None:
    for signal in (
        null_signal(t=5),
        sia_signal("RP", t=5),
        sia_signal("RX", "2", t=5),
        cid_signal("602", "1", "00", "000", t=5),
        cid_signal("603", "1", "01", "014", t=5),  # wireless periodic, zone-addressed
    ):
        state = apply(SiteState(), signal)
        assert state.last_link_test_at == at(5), signal.code_key
        assert zones(state) == {}
    for not_a_link_test in (sia_signal("BX", "3", t=5), sia_signal("YK", t=5)):
        assert apply(SiteState(), not_a_link_test).last_link_test_at is None
    state = fold([null_signal(t=9), null_signal(t=3)])
    assert state.last_link_test_at == at(9)


def test_last_seen_per_path_and_counters() -> None:
    state = fold(
        [
            null_signal(t=0, transport="tcp"),
            sia_signal("BA", "1", t=5, transport="udp"),
            null_signal(t=3, transport="tcp"),
        ]
    )
    assert state.last_seen == {"dc09/tcp": at(3), "dc09/udp": at(5)}
    assert (state.last_signal_at, state.signals_seen) == (at(5), 3)
    unknown = apply(state, sia_signal("QZ", "1", t=7))  # not in the table: still a signal
    assert (unknown.last_signal_at, unknown.signals_seen) == (at(7), 4)
    assert zones(unknown) == zones(state)


def test_apply_leaves_the_old_state_alone() -> None:
    before = fold([sia_signal("BA", "3", t=0), sia_signal("CL", ri="2", t=0)])
    snapshot = encode(before)
    fold([sia_signal("BH", "3", t=1), sia_signal("OP", ri="2", t=1), sia_signal("AT", t=1)], before)
    assert encode(before) == snapshot


def test_the_zone_count_is_bounded() -> None:
    state = fold(sia_signal("BA", str(n), t=0) for n in range(1, MAX_ZONES + 6))
    assert len(state.alarms) == MAX_ZONES and "1" in state.alarms
    state = apply(state, sia_signal("BH", "1", t=1))  # zone 1 has no condition left
    state = apply(state, sia_signal("BA", "5000", t=2))
    assert "5000" in state.in_alarm and "1" not in state.alarms
    assert len(state.alarms) == MAX_ZONES
    # The other mappings have limits of their own.
    state = fold((sia_signal("BB", str(n), t=3) for n in range(1, MAX_ZONES + 2)), state)
    assert len(state.bypass) == MAX_ZONES and len(state.alarms) == MAX_ZONES


# ---------------------------------------------------------------------------
# Every code of both tables
# ---------------------------------------------------------------------------


def test_every_sia_code_applies() -> None:
    state = SiteState()
    for n, code in enumerate(sorted(SIA_CODES)):
        for signal in (
            sia_signal(code, t=n),
            sia_signal(code, "003", ri="2", user="4", t=n),
            sia_signal(code, "0", t=n, transport="udp"),
        ):
            state = apply(state, signal)
            from_json(orjson.loads(encode(state)))
    assert state.signals_seen == 3 * len(SIA_CODES)
    assert summary_zh(state) and summary_en(state)


def test_every_contact_id_code_applies() -> None:
    state = SiteState()
    for n, event in enumerate(sorted(CID_CODES)):
        for q in ("1", "3", "6"):
            for gg, ccc in (("00", "000"), ("02", "003")):
                state = apply(state, cid_signal(event, q, gg, ccc, t=n))
    assert state.signals_seen == 6 * len(CID_CODES)
    assert summary_zh(state) and summary_en(state)


@pytest.mark.parametrize("event", sorted(CID_CODES))
def test_a_contact_id_event_means_the_same_with_or_without_its_sia_code(event: str) -> None:
    # The codec fills in the SIA code from the table; without it the Contact ID
    # event and qualifier decide. Both must have the same effect. (Zone
    # conditions may differ: a SIA code can say the number names a device.)
    def effects(state: SiteState) -> object:
        power = (state.ac_power, state.battery, state.last_link_test_at)
        return state.partitions, power, state.bypassed

    for q in ("1", "3", "6"):
        for ccc in ("000", "003"):
            signal = cid_signal(event, q, "02", ccc)
            bare = dataclasses.replace(signal, code=None)
            assert effects(apply(SiteState(), signal)) == effects(apply(SiteState(), bare))


# ---------------------------------------------------------------------------
# Order independence (hypothesis)
# ---------------------------------------------------------------------------

# Each template: (what it reports, how to build it at time t). A zone has one
# type and one partition, as on a real panel: zone 1 burglary in partition 1,
# zone 2 fire in 1, zone 3 burglary in 2.
_TEMPLATES: list[tuple[tuple[str, ...], Callable[[int], Signal]]] = [
    (("oc", "1", "arm"), lambda t: sia_signal("CL", "3", ri="1", t=t)),
    (("oc", "1", "disarm"), lambda t: sia_signal("OP", "4", ri="1", t=t)),
    (("oc", "1", "arm"), lambda t: cid_signal("401", "3", "01", "005", t=t)),
    (("oc", "1", "disarm"), lambda t: cid_signal("401", "1", "01", "005", t=t, transport="udp")),
    (("oc", "2", "arm"), lambda t: sia_signal("CG", "2", t=t)),
    (("oc", "2", "disarm"), lambda t: cid_signal("442", "1", "02", "001", t=t)),
    (("oc", "2", "arm"), lambda t: cid_signal("441", "3", "02", "001", t=t)),
    (("zone", "1", "on"), lambda t: sia_signal("BA", "1", ri="1", t=t)),
    (("zone", "1", "off"), lambda t: cid_signal("130", "3", "01", "001", t=t)),
    (("zone", "1", "on"), lambda t: cid_signal("130", "1", "01", "001", t=t)),
    (("zone", "2", "on"), lambda t: sia_signal("FA", "2", ri="1", t=t)),
    (("zone", "2", "off"), lambda t: sia_signal("FH", "2", ri="1", t=t)),
    (("zone", "3", "on"), lambda t: cid_signal("131", "1", "02", "003", t=t)),
    (("zone", "3", "off"), lambda t: sia_signal("BR", "3", ri="2", t=t)),
    ((), lambda t: sia_signal("BB", "4", t=t)),
    ((), lambda t: cid_signal("570", "3", "01", "004", t=t)),
    ((), lambda t: sia_signal("BT", "5", t=t)),
    ((), lambda t: cid_signal("380", "3", "01", "005", t=t)),
    ((), lambda t: sia_signal("TA", "6", t=t)),
    ((), lambda t: sia_signal("TR", "6", t=t)),
    ((), lambda t: sia_signal("AT", t=t)),
    ((), lambda t: cid_signal("301", "3", "00", "000", t=t)),
    ((), lambda t: sia_signal("YT", t=t)),
    ((), lambda t: cid_signal("311", "1", t=t)),
    ((), lambda t: sia_signal("YR", t=t)),
    ((), lambda t: null_signal(t=t, transport="udp")),
    ((), lambda t: cid_signal("602", "1", "00", "000", t=t)),
    ((), lambda t: sia_signal("CI", "1", t=t)),
]
_ZONE_PARTITION = {"1": "1", "3": "2"}  # burglary zones; zone 2 (fire) is not cleared by arming


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[tuple[str, ...], Signal]]:
    """Signals with distinct received_at times, in time order."""
    picks = draw(st.lists(st.sampled_from(range(len(_TEMPLATES))), min_size=1, max_size=30))
    times = draw(
        st.lists(st.integers(0, 100_000), min_size=len(picks), max_size=len(picks), unique=True)
    )
    history = []
    for pick, t in sorted(zip(picks, times, strict=True), key=lambda item: item[1]):
        tag, build = _TEMPLATES[pick]
        history.append((tag, build(t)))
    return history


def values(state: SiteState) -> object:
    """What must not depend on delivery order: each condition's value and the maxima."""
    return (
        {
            key: (p.armed, p.by_user, p.reported_at, p.closed_at)
            for key, p in state.partitions.items()
        },
        zones(state),
        None if state.ac_power is None else (state.ac_power.value, state.ac_power.at),
        None if state.battery is None else (state.battery.value, state.battery.at),
        state.last_seen,
        state.last_link_test_at,
        state.last_signal_at,
        state.signals_seen,
    )


@PROPERTY
@given(histories(), st.data())
def test_the_state_does_not_depend_on_delivery_order(
    history: list[tuple[tuple[str, ...], Signal]], data: st.DataObject
) -> None:
    signals = [signal for _, signal in history]
    shuffled = data.draw(st.permutations(signals))
    assert values(fold(shuffled)) == values(fold(signals))


@PROPERTY
@given(histories(), st.data())
def test_each_condition_is_that_of_its_newest_report(
    history: list[tuple[tuple[str, ...], Signal]], data: st.DataObject
) -> None:
    state = fold(data.draw(st.permutations([signal for _, signal in history])))
    # history is in time order: the last report of a thing is the newest.
    latest_oc: dict[str, str] = {}
    latest_zone: dict[str, str] = {}
    for tag, _ in history:
        if tag[:1] == ("oc",):
            latest_oc[tag[1]] = tag[2]
            if tag[2] == "arm":  # a closing clears the burglary zones of its partition
                for zone, partition in _ZONE_PARTITION.items():
                    if partition == tag[1]:
                        latest_zone[zone] = "off"
        elif tag[:1] == ("zone",):
            latest_zone[tag[1]] = tag[2]
    assert {k: p.armed for k, p in state.partitions.items()} == {
        k: v == "arm" for k, v in latest_oc.items()
    }
    assert set(state.in_alarm) == {zone for zone, v in latest_zone.items() if v == "on"}


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------


@PROPERTY
@given(histories(), st.sampled_from([UTC, BEIJING]))
def test_json_round_trip(history: list[tuple[tuple[str, ...], Signal]], zone: tzinfo) -> None:
    signals = [
        dataclasses.replace(s, received_at=s.received_at.astimezone(zone)) for _, s in history
    ]
    state = fold(signals)
    data = orjson.loads(encode(state))
    assert data["v"] == SCHEMA_VERSION
    assert from_json(data) == state
    # The state read back goes on as the original would.
    more = sia_signal("BA", "9", t=200_000)
    assert apply(from_json(data), more) == apply(state, more)


def test_json_times_are_iso_strings() -> None:
    data = orjson.loads(
        encode(fold([sia_signal("CL", "3", ri="1"), sia_signal("BA", "3", ri="2")]))
    )
    assert data["partitions"]["1"]["armed_changed_at"] == "2026-12-02T11:30:05+00:00"
    assert data["alarms"]["3"] == {
        "hazard": "burglary",
        "partition": "2",
        "since": "2026-12-02T11:30:05+00:00",
        "at": "2026-12-02T11:30:05+00:00",
    }


def test_the_written_form_is_the_schema_older_rows_have() -> None:
    # Every key and time format a row written before 0013 has: from_json reads both.
    quarter = at(0.25)
    state = SiteState(
        partitions={"1": PartitionState(True, at(0), "12", at(0), at(0))},
        alarms={"3": ZoneAlarm(EventClass.BURGLARY, "1", quarter, at(2))},
        bypass={"4": Reported(True, at(0), at(0))},
        ac_power=Reported("lost", at(1).astimezone(BEIJING), at(1)),
        last_seen={"dc09/tcp": at(2)},
        last_signal_at=at(2),
        signals_seen=5,
    )
    t0, t1, t2 = (
        "2026-12-02T11:30:05+00:00",
        "2026-12-02T11:30:06+00:00",
        "2026-12-02T11:30:07+00:00",
    )
    assert orjson.loads(encode(state)) == {
        "v": SCHEMA_VERSION,
        "partitions": {
            "1": {
                "armed": True,
                "armed_changed_at": t0,
                "by_user": "12",
                "reported_at": t0,
                "closed_at": t0,
            }
        },
        "alarms": {
            "3": {
                "hazard": "burglary",
                "partition": "1",
                "since": "2026-12-02T11:30:05.250000+00:00",
                "at": t2,
            }
        },
        "bypass": {"4": {"value": True, "since": t0, "at": t0}},
        "fault": {},
        "tamper": {},
        "ac_power": {"value": "lost", "since": "2026-12-02T19:30:06+08:00", "at": t1},
        "battery": None,
        "last_seen": {"dc09/tcp": t2},
        "last_link_test_at": None,
        "last_signal_at": t2,
        "signals_seen": 5,
    }
    assert from_json(orjson.loads(encode(state))) == state


def test_from_json_tolerates_missing_keys() -> None:
    assert from_json({}) == SiteState()
    assert from_json(
        {"v": 1, "alarms": {"3": {}}, "partitions": {"1": {"armed": True}}}
    ) == SiteState(partitions={"1": PartitionState(armed=True)})
    moment = T0.isoformat()
    assert from_json({"bypass": {"5": {"value": True, "at": moment}}}).bypass == {
        "5": Reported(True, T0, T0)
    }
    # A report without its clock cannot be compared, so it reads as never reported.
    assert from_json({"ac_power": {"value": "lost"}}).ac_power is None
    # Keys a later version adds are ignored.
    assert from_json({"v": 99, "weather": "fine", "signals_seen": 4}).signals_seen == 4


def test_from_json_refuses_unknown_values() -> None:
    with pytest.raises(ValueError, match="unknown value"):
        from_json({"battery": {"value": "flat", "at": T0.isoformat()}})
    with pytest.raises(ValueError, match="ISO 8601"):
        from_json({"last_signal_at": 1764675005})
    with pytest.raises(ValueError, match="meteor"):
        from_json({"alarms": {"1": {"hazard": "meteor", "at": T0.isoformat()}}})


# ---------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------


def test_summaries() -> None:
    state = fold(
        [
            cid_signal("401", "3", "01", "001", t=0),
            sia_signal("OP", "2", ri="2", t=0),
            cid_signal("130", "1", "01", "003", t=0),
            sia_signal("BA", "12", ri="2", t=0),
            sia_signal("HA", t=0),
            sia_signal("TA", "6", t=0),
            sia_signal("BB", "5", t=0),
            sia_signal("BT", "7", t=0),
            sia_signal("AT", t=0),
            sia_signal("YT", t=0),
        ]
    )
    assert summary_zh(state) == (
        "分区1 布防 · 分区2 撤防 · 主机 报警(劫盗) · 防区3,12 报警(盗警) · 防区6 防拆 · "
        "防区7 故障 · 防区5 旁路 · 交流电故障 · 电池欠压 · 最后通讯 2026-12-02 19:30:05 北京时间"
    )
    assert summary_en(state) == (
        "Partition 1 armed · Partition 2 disarmed · Panel in alarm (hold-up) · "
        "Zones 3, 12 in alarm (burglary) · Zone 6 tampered · Zone 7 in trouble · "
        "Zone 5 bypassed · AC power lost · Battery low · "
        "Last signal 2026-12-02 19:30:05 Beijing time"
    )


def test_summaries_of_a_quiet_and_of_an_unknown_site() -> None:
    assert summary_zh(SiteState()) == "布撤防未报告 · 从未通讯"
    assert summary_en(SiteState()) == "Arming never reported · Never heard from"
    quiet = fold([sia_signal("CL", ri="1"), sia_signal("AR"), sia_signal("YR")])
    assert summary_zh(quiet) == "分区1 布防 · 最后通讯 2026-12-02 19:30:05 北京时间"


def test_summaries_shorten_long_zone_lists() -> None:
    state = fold([sia_signal("BA", str(n)) for n in range(1, 13)] + [sia_signal("TA")])
    assert "防区1,2,3,4,5,6,7,8等12个 报警(盗警)" in summary_zh(state)
    assert "Zones 1, 2, 3, 4, 5, 6, 7, 8 (12 in all) in alarm (burglary)" in summary_en(state)
    assert "主机 防拆" in summary_zh(state) and "Panel tampered" in summary_en(state)
    both = apply(state, sia_signal("TA", "4"))
    assert "主机、防区4 防拆" in summary_zh(both) and "Panel, zone 4 tampered" in summary_en(both)
