"""Storm mode and the 12-month false-alarm count: the engine's decisions, without I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arc.dispatch import false_alarms
from arc.dispatch.classification import Grade, Override, Overrides
from arc.dispatch.engine import Batch, Command, Engine
from arc.dispatch.lifecycle import (
    Change,
    Kind,
    Refused,
    Resolution,
    Role,
    Status,
    apply,
    rebuild,
)
from arc.dispatch.signal import Signal
from arc.dispatch.storm import (
    LOGGED_NOTE,
    Storm,
    StormMode,
    StormRefused,
    Storms,
    check_start,
)
from protocols.events import EventClass, Qualifier

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
CODES = {
    EventClass.BURGLARY: "BA",
    EventClass.FIRE: "FA",
    EventClass.HOLDUP: "HA",
    EventClass.PANIC: "PA",
    EventClass.TROUBLE: "AT",
    EventClass.COMMUNICATION: "YC",
    EventClass.WATER: "WA",
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def signal(
    account: str,
    t: float,
    event_class: EventClass = EventClass.BURGLARY,
    zone: str | None = "003",
    restore: bool = False,
) -> Signal:
    return Signal(
        signal_id=uuid.uuid4(),
        received_at=at(t),
        account=account,
        protocol="dc09",
        transport="tcp",
        peer=None,
        qualifier=Qualifier.RESTORE if restore else Qualifier.NEW,
        code=CODES[event_class][0] + ("R" if restore else CODES[event_class][1]),
        cid_event=None,
        event_class=event_class,
        zone=zone,
        user_no=None,
        partition_no=None,
        event_text=None,
    )


def storm_of(
    mode: StormMode,
    event_class: str = "burglary",
    minutes: float = 60,
    delay: float | None = None,
) -> Storm:
    return Storm(
        storm_id=uuid.uuid4(),
        event_class=event_class,
        mode=mode,
        delay=None if delay is None else timedelta(seconds=delay),
        started_at=T0,
        ends_at=T0 + timedelta(minutes=minutes),
        reason="朝阳区停电",
        started_by="sup1",
    )


def engine_with(*storms: Storm, overrides: Overrides | None = None) -> Engine:
    engine = Engine(overrides=overrides)
    engine.storms = Storms(storms)
    engine.load_shard(0, incidents=(), sites={}, now=T0)
    return engine


def feed(engine: Engine, *signals: Signal) -> Batch:
    batch = Batch()
    for item in signals:
        engine.on_signal(0, item, batch)
    return batch


def open_incidents(engine: Engine) -> list:
    return list(engine.shards[0].incidents.values())


def test_log_mode_records_each_alarm_and_closes_it_without_the_queue() -> None:
    engine = engine_with(storm_of(StormMode.LOG))
    batch = feed(engine, signal("1234", 1), signal("5678", 2))
    assert open_incidents(engine) == []
    assert [e.change.kind for e in batch.entries] == [Kind.OPEN, Kind.AUTO_CLOSE] * 2
    closed = [i for _, i in batch.incidents.values()]
    assert {i.resolution for i in closed} == {Resolution.STORM_LOGGED}
    assert all(i.status is Status.CLOSED and i.owner is None for i in closed)
    close = batch.entries[1].change
    assert close.details["reason"] == LOGGED_NOTE and close.details["storm"]["mode"] == "log"
    assert batch.entries[0].change.details["storm"]["reason"] == "朝阳区停电"
    assert set(batch.sites) == {"1234", "5678"}  # the site state is kept all the same
    # Each incident's log still rebuilds it.
    for incident_id, (_, incident) in batch.incidents.items():
        log = [e.change for e in batch.entries if e.incident_id == incident_id]
        assert rebuild(log) == incident


def test_group_mode_gathers_the_shards_accounts_into_one_incident_and_their_restores() -> None:
    engine = engine_with(storm_of(StormMode.GROUP))
    batch = feed(engine, signal("1234", 1), signal("5678", 2), signal("9ABC", 3, zone=None))
    (incident,) = open_incidents(engine)
    assert incident.storm == "group" and incident.status is Status.NEW
    assert incident.accounts == {"1234", "5678", "9ABC"} and incident.signal_count == 3
    assert incident.zones == {"1234:003", "5678:003", "9ABC"}
    assert "风暴合并" in incident.title
    assert not incident.confirmed  # zones of different accounts confirm nothing
    joins = [e.change for e in batch.entries if e.change.kind is Kind.JOIN]
    assert [j.details["account"] for j in joins] == ["5678", "9ABC"]
    assert all(j.details["storm"]["mode"] == "group" for j in joins)
    feed(
        engine,
        signal("1234", 10, restore=True),
        signal("5678", 11, restore=True),
        signal("9ABC", 12, zone=None, restore=True),
    )
    (incident,) = open_incidents(engine)
    assert incident.restored and incident.signal_count == 6
    # An account that never joined it: its restore has nothing to restore.
    feed(engine, signal("FFFF", 13, restore=True))
    assert open_incidents(engine)[0].signal_count == 6


def test_delay_mode_closes_what_is_restored_in_time_and_queues_the_rest() -> None:
    engine = engine_with(storm_of(StormMode.DELAY, delay=120))
    feed(engine, signal("1234", 0), signal("5678", 1))
    held = {i.account: i for i in open_incidents(engine)}
    assert {i.held_until for i in held.values()} == {at(120), at(121)}
    assert held["1234"].overdue_steps(at(500)) == ()  # its plan waits for the queue
    batch = feed(engine, signal("1234", 30, restore=True))
    assert [e.change.kind for e in batch.entries] == [Kind.JOIN, Kind.AUTO_CLOSE]
    (_, closed) = batch.incidents[held["1234"].incident_id]
    assert (closed.status, closed.resolution) == (Status.CLOSED, Resolution.RESTORED)
    batch = Batch()
    engine.on_tick(at(119), batch, caught_up=lambda _: True)
    assert not batch.entries
    engine.on_tick(at(121), batch, caught_up=lambda _: True)
    (entry,) = batch.entries
    assert entry.change.kind is Kind.RELEASE and entry.change.details["storm"]["mode"] == "delay"
    (queued,) = open_incidents(engine)
    assert queued.held_until is None and queued.account == "5678"
    # The plan counts from the queue: the first step's deadline moved by the hold.
    assert queued.steps[0].deadline - held["5678"].steps[0].deadline == timedelta(seconds=120)


def test_a_held_burglary_confirmed_by_a_second_zone_goes_to_the_queue_at_once() -> None:
    engine = engine_with(storm_of(StormMode.DELAY, delay=300))
    batch = feed(engine, signal("1234", 0, zone="003"), signal("1234", 5, zone="004"))
    (incident,) = open_incidents(engine)
    assert incident.grade == Grade.LIFE and incident.held_until is None
    kinds = [e.change.kind for e in batch.entries]
    assert kinds == [Kind.OPEN, Kind.JOIN, Kind.RAISE_GRADE, Kind.RELEASE]


@pytest.mark.parametrize("mode", [StormMode.LOG, StormMode.GROUP])
def test_a_second_zone_of_one_account_is_confirmed_even_in_storm_mode(mode: StormMode) -> None:
    engine = engine_with(storm_of(mode))
    batch = feed(engine, signal("1234", 0, zone="003"), signal("1234", 60, zone="005"))
    confirmed = [i for _, i in batch.incidents.values() if i.confirmed]
    (incident,) = confirmed
    assert incident.grade == Grade.LIFE and incident.storm is None
    assert incident.status is Status.NEW and incident.held_until is None
    assert incident.steps[-1].kind == "call_police"


def test_storm_mode_ends_by_itself_at_its_end_without_a_reload() -> None:
    engine = engine_with(storm_of(StormMode.LOG, minutes=10))
    feed(engine, signal("1234", 599))
    assert open_incidents(engine) == []
    feed(engine, signal("5678", 600))
    (incident,) = open_incidents(engine)
    assert incident.storm is None and incident.account == "5678"


def test_a_stopped_delay_storm_releases_what_it_held() -> None:
    running = storm_of(StormMode.DELAY, delay=600)
    engine = engine_with(running)
    feed(engine, signal("1234", 0))
    engine.storms = Storms()  # stopped: the reload finds no storm
    batch = Batch()
    engine.on_tick(at(5), batch, caught_up=lambda _: True)
    assert [e.change.kind for e in batch.entries] == [Kind.RELEASE]
    assert open_incidents(engine)[0].held_until is None


def test_a_signal_that_joins_an_open_incident_joins_it_in_storm_mode_too() -> None:
    engine = engine_with()
    feed(engine, signal("1234", 0))
    engine.storms = Storms([storm_of(StormMode.LOG)])
    feed(engine, signal("1234", 10))
    (incident,) = open_incidents(engine)
    assert incident.signal_count == 2 and incident.storm is None


grade_one = st.sampled_from(
    [EventClass.FIRE, EventClass.HOLDUP, EventClass.PANIC, EventClass.BURGLARY]
)


@settings(max_examples=150, deadline=None)
@given(
    mode=st.sampled_from(list(StormMode)),
    event_class=grade_one,
    accounts=st.lists(st.sampled_from(["1234", "5678", "9ABC"]), min_size=1, max_size=6),
    zones=st.lists(st.sampled_from(["001", "002", None]), min_size=6, max_size=6),
    gaps=st.lists(st.floats(0, 3_000), min_size=6, max_size=6),
)
def test_grade_one_is_never_logged_grouped_or_held(
    mode: StormMode,
    event_class: EventClass,
    accounts: list[str],
    zones: list[str | None],
    gaps: list[float],
) -> None:
    # Burglary is grade 2 by default; an override makes it grade 1 for this test,
    # as a centre may do for an account (a bank's vault).
    overrides = Overrides([Override("class:burglary", None, Grade.LIFE)])
    engine = engine_with(
        storm_of(mode, event_class.value, minutes=24 * 60, delay=600), overrides=overrides
    )
    t = 0.0
    batch = Batch()
    for account, zone, gap in zip(accounts, zones, gaps, strict=False):
        t += gap
        engine.on_signal(0, signal(account, t, event_class, zone), batch)
        engine.on_tick(at(t), batch, caught_up=lambda _: True)
    for _, incident in batch.incidents.values():
        assert incident.grade == Grade.LIFE
        assert incident.status is Status.NEW and incident.held_until is None
        assert incident.storm is None and incident.accounts == {incident.account}
    assert not any(e.change.kind in (Kind.AUTO_CLOSE, Kind.RELEASE) for e in batch.entries)


def change(kind: Kind, role: Role, actor: str, t: float, **details: object) -> Change:
    return Change(kind=kind, at=at(t), actor=actor, role=role, details=details)


def test_people_may_not_close_as_storm_logged_and_the_system_only_untouched() -> None:
    engine = engine_with(storm_of(StormMode.DELAY, delay=60))
    feed(engine, signal("1234", 0))
    (incident,) = open_incidents(engine)
    taken = apply(incident, change(Kind.ACKNOWLEDGE, Role.OPERATOR, "op1", 1))
    auto = {"resolution": "restored", "reason": "r"}
    with pytest.raises(Refused, match="close automatically"):
        apply(taken, change(Kind.AUTO_CLOSE, Role.SYSTEM, "arc", 2, **auto))
    with pytest.raises(Refused, match="operator may not"):
        apply(incident, change(Kind.AUTO_CLOSE, Role.OPERATOR, "op1", 2, **auto))
    with pytest.raises(Refused, match="closes with restored or storm_logged only"):
        apply(incident, change(Kind.AUTO_CLOSE, Role.SYSTEM, "arc", 2, resolution="test"))
    resolved = apply(taken, change(Kind.RESOLVE, Role.OPERATOR, "op1", 3))
    with pytest.raises(Refused, match="storm mode only"):
        apply(resolved, change(Kind.CLOSE, Role.OPERATOR, "op1", 4, resolution="storm_logged"))


# -- the rules of starting a storm ----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event_class": "riot"}, "no class 'riot'"),
        ({"mode": "ignore"}, "no mode 'ignore'"),
        ({"minutes": 24 * 60 + 1}, "at most 24 h"),
        ({"minutes": 0}, "more than 0"),
        ({"mode": "delay"}, "needs --delay"),
        ({"mode": "delay", "delay_seconds": 601}, "at most 600 s"),
        ({"delay_seconds": 30}, "for mode delay only"),
        ({"reason": "  "}, "needs a reason"),
    ],
)
def test_a_storm_request_outside_the_rules_is_refused_naming_the_rule(
    kwargs: dict[str, object], message: str
) -> None:
    request: dict[str, object] = {
        "event_class": "trouble",
        "mode": "group",
        "minutes": 60,
        "delay_seconds": None,
        "reason": "停电",
    }
    with pytest.raises(StormRefused, match=message) as refused:
        check_start(**{**request, **kwargs})  # type: ignore[arg-type]
    assert refused.value.rule == "风暴模式 storm mode"


def test_a_storm_request_within_the_rules_is_accepted() -> None:
    request = check_start(
        event_class="trouble", mode="delay", minutes=30, delay_seconds=90, reason=" 停电 "
    )
    assert request.mode is StormMode.DELAY and request.delay == timedelta(seconds=90)
    assert request.duration == timedelta(minutes=30) and request.reason == "停电"


# -- false alarms in 12 months -------------------------------------------------------


def test_the_warning_comes_one_before_the_police_limit_and_says_so_in_chinese_first() -> None:
    assert false_alarms.warning(1, 3) is None
    one_more = false_alarms.warning(2, 3)
    assert one_more is not None and one_more.startswith("12个月内误报 2 次，再误报 1 次")
    assert "one more and the police stop responding" in one_more
    reached = false_alarms.warning(3, 3)
    assert reached is not None and "已达" in reached and "limit of 3 is reached" in reached
    assert false_alarms.warning(0, 1) is not None  # a limit of 1 warns from the start


def test_the_count_is_a_rolling_365_days() -> None:
    counts = false_alarms.FalseAlarms([("1234", at(0)), ("1234", at(10)), ("5678", at(5))])
    assert counts.count("1234", at(20)) == 2
    year = timedelta(days=365).total_seconds()
    assert counts.count("1234", at(year + 5)) == 1  # the first one is out
    assert counts.count("1234", at(year + 10)) == 0
    assert counts.count("9999", at(0)) == 0


def test_every_new_incident_carries_the_count_and_a_close_adds_to_it() -> None:
    engine = Engine(false_alarm_limit=3)
    engine.load_shard(
        0,
        incidents=(),
        sites={},
        now=T0,
        false_alarm_closes=[("1234", T0 - timedelta(days=400)), ("1234", T0 - timedelta(days=3))],
    )
    feed(engine, signal("1234", 0))
    (incident,) = open_incidents(engine)
    assert (incident.false_alarms_12m, incident.warning) == (1, None)
    batch = Batch()
    for kind, details in [
        (Kind.ACKNOWLEDGE, {}),
        (Kind.STEP_WAIVED, {"step": 1, "reason": "业主到场"}),
        (Kind.STEP_WAIVED, {"step": 2, "reason": "业主到场"}),
        (Kind.RESOLVE, {}),
        (Kind.CLOSE, {"resolution": "false_alarm", "cause": "user_error"}),
    ]:
        role = Role.SUPERVISOR
        command = Command(
            uuid.uuid4(), incident.incident_id, "1234", kind, "sup1", role, at(5), details
        )
        engine.on_command(0, command, batch)
    assert all(r["ok"] for r in batch.results), batch.results
    batch = feed(engine, signal("1234", 3600, EventClass.WATER))
    (water,) = open_incidents(engine)
    assert water.false_alarms_12m == 2
    assert water.warning is not None and "再误报 1 次" in water.warning
    opening = batch.entries[0].change.details
    assert opening["false_alarms_12m"] == 2 and opening["warning"] == water.warning
