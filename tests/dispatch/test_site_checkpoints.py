"""Site states held between writes (arc.dispatch.site_checkpoints) and replayed after a loss.

The dispatcher writes a shard's site states at most once an interval; a
dispatcher that takes the shard over replays the signals the stored states
lack into site state only (``Engine.replay_signal``). These tests hold the
two halves of that promise: what is held is written in time and whole, and a
replay ends in exactly the state an uninterrupted dispatcher has.
"""

from __future__ import annotations

from datetime import datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from arc.dispatch.engine import Batch, Engine
from arc.dispatch.signal import Signal
from arc.dispatch.site_checkpoints import SiteCheckpoints
from arc.dispatch.site_state import SiteState
from arc.dispatch.site_state_json import encode, from_json
from tests.dispatch.test_site_state import PROPERTY, T0, at, histories, sia_signal


def sites(
    *accounts: str, shard: int = 0, t: float = 0
) -> dict[str, tuple[int, SiteState, datetime]]:
    return {a: (shard, SiteState(signals_seen=1), at(t)) for a in accounts}


def test_a_quiet_shard_is_written_at_once_and_a_busy_one_once_an_interval() -> None:
    held = SiteCheckpoints(interval=1.0)
    held.changed(sites("1234"))
    first = held.due(100.0)
    assert first is not None and set(first.sites) == {"1234"} and first.shards == {0}
    held.written(first, 100.0)
    held.changed(sites("1234", t=1))
    held.changed(sites("5678", t=2))
    assert held.due(100.5) is None  # written half a second ago: held
    second = held.due(101.0)
    assert second is not None and set(second.sites) == {"1234", "5678"}
    assert second.sites["1234"][2] == at(1)


def test_the_newest_signal_time_is_kept_when_a_late_one_changes_a_site_again() -> None:
    held = SiteCheckpoints()
    held.changed(sites("1234", t=5))
    held.changed(sites("1234", t=3))  # a retransmission, older
    checkpoint = held.everything()
    assert checkpoint is not None and checkpoint.sites["1234"][2] == at(5)


def test_a_replaying_shard_is_held_and_a_failed_write_is_written_again() -> None:
    held = SiteCheckpoints(interval=1.0)
    held.changed(sites("1234", shard=0))
    held.changed(sites("5678", shard=1))
    due = held.due(0.0, held={1})
    assert due is not None and due.shards == {0}
    assert held.everything(held={0, 1}) is None
    # Not marked written (its transaction failed): due again, whole.
    again = held.due(0.1)
    assert again is not None and again.shards == {0, 1} and set(again.sites) == {"1234", "5678"}
    held.forget(1)  # reloaded from the database: what was held for it is gone
    rest = held.due(0.2)
    assert rest is not None and rest.shards == {0}


def test_nothing_is_due_without_changes() -> None:
    held = SiteCheckpoints(interval=0.0)
    assert held.due(0.0) is None and held.everything() is None


def engine_with(stored: SiteState | None) -> Engine:
    engine = Engine()
    engine.load_shard(
        0, incidents=(), sites={} if stored is None else {"1234": (stored, None)}, now=T0
    )
    return engine


@PROPERTY
@given(histories(), st.data())
def test_a_replay_from_the_stored_state_ends_where_an_uninterrupted_dispatcher_is(
    history: list[tuple[tuple[str, ...], Signal]], data: st.DataObject
) -> None:
    signals = [signal for _, signal in history]
    stored_at = data.draw(st.integers(0, len(signals)), label="signals in the stored state")
    loaded_at = data.draw(st.integers(stored_at, len(signals)), label="the stored offset")
    straight = engine_with(None)
    for signal in signals:
        straight.on_signal(0, signal, Batch())
    before = engine_with(None)
    for signal in signals[:stored_at]:
        before.on_signal(0, signal, Batch())
    stored = before.shards[0].sites.get("1234")
    if stored is not None:  # as the database gives it back
        stored = from_json(orjson.loads(encode(stored)))
    taken_over = engine_with(stored)
    replayed = Batch()
    for signal in signals[stored_at:loaded_at]:
        taken_over.replay_signal(0, signal, replayed)
    assert (replayed.entries, replayed.incidents, replayed.signals) == ([], {}, 0)
    for signal in signals[loaded_at:]:
        taken_over.on_signal(0, signal, Batch())
    assert taken_over.shards[0].sites == straight.shards[0].sites


def test_a_signal_replayed_twice_counts_once() -> None:
    engine = engine_with(None)
    signal = sia_signal("BA", "3", ri="1")
    batch = Batch()
    engine.replay_signal(0, signal, batch)
    engine.replay_signal(0, signal, batch)
    engine.on_signal(0, signal, batch)  # a producer's retry after the replay
    assert engine.shards[0].sites["1234"].signals_seen == 1
    assert batch.entries == [] and set(batch.sites) == {"1234"}
