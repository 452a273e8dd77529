"""When ``arc up`` may start the embedded broker afresh (arc.embedded.rotation).

The sequence itself runs against the real broker and database in
tests/integration/test_arc_up.py; these are its two decisions.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from arc import bus
from arc.embedded import rotation


def test_due_once_a_partition_reaches_the_limit_and_never_with_limit_zero() -> None:
    ends = {(bus.SIGNALS, 0): 999, (bus.SIGNALS, 1): 10, (bus.INCIDENTS, 3): 5}
    old = {"age": 60.0, "interval": 60.0}
    assert not rotation.due(ends, 1_000, **old)
    assert rotation.due({**ends, (bus.SIGNALS, 1): 1_000}, 1_000, **old)
    # The incidents count too: the console's fetches list their batches.
    assert rotation.due({**ends, (bus.INCIDENTS, 3): 1_000}, 1_000, **old)
    assert not rotation.due({(bus.SIGNALS, 0): 10**9}, 0, **old)


def test_not_due_before_the_broker_has_run_the_interval() -> None:
    full = {(bus.SIGNALS, 0): 10**6}
    assert not rotation.due(full, 1_000, age=59.9, interval=60.0)
    assert rotation.due(full, 1_000, age=60.0, interval=60.0)
    assert rotation.due(full, 1_000, age=0.0, interval=0.0)


def test_behind_names_each_reader_short_of_a_logs_end() -> None:
    ends = {
        (bus.SIGNALS, 0): 50,
        (bus.SIGNALS, 1): 0,  # empty: nobody needs a row for it
        (bus.QUARANTINE, 0): 3,
        (bus.COMMANDS, 2): 7,
        (bus.INCIDENTS, 0): 99,  # read live only: never waited for
    }
    positions = {
        ("logwriter_state", bus.SIGNALS, 0): 50,
        ("dispatcher_state", bus.SIGNALS, 0): 49,
        # the log writer has no row for the quarantine yet: it is at 0
        ("dispatcher_state", bus.COMMANDS, 2): 7,
    }
    assert rotation.behind(ends, positions) == [  # by topic, then partition
        f"logwriter_state {bus.QUARANTINE}[0] 0/3",
        f"dispatcher_state {bus.SIGNALS}[0] 49/50",
    ]


readers = st.sampled_from(["logwriter_state", "dispatcher_state"])
topics = st.sampled_from([bus.SIGNALS, bus.QUARANTINE, bus.COMMANDS, bus.INCIDENTS])
offsets = st.integers(min_value=0, max_value=50)


@given(
    st.dictionaries(st.tuples(topics, st.integers(0, 3)), offsets, max_size=8),
    st.dictionaries(st.tuples(readers, topics, st.integers(0, 3)), offsets, max_size=16),
)
def test_nobody_is_behind_exactly_when_every_reader_stored_every_end(
    ends: dict[tuple[str, int], int], positions: dict[tuple[str, str, int], int]
) -> None:
    stored_all = all(
        positions.get((reader, topic, partition), 0) >= end
        for (topic, partition), end in ends.items()
        for reader in rotation.READERS.get(topic, ())
    )
    assert (rotation.behind(ends, positions) == []) == stored_all
