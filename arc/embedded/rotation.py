"""When and how ``arc up`` starts the embedded broker afresh, so its log stays small.

The embedded broker (Tansu's memory store) keeps every record until it
stops, and each fetch of a partition lists every batch that partition ever
held: a fetch cost 0.5 ms of the broker's CPU with a hundred batches and
3.5 ms with 40,000 (docs/benchmarks.md), so a centre that ran for days
would spend its cores listing old batches, and its memory holding them.
Nothing in that log is needed once the log writer and the dispatcher have
stored their positions at its end: the rows are in PostgreSQL. So once a
partition holds ``broker_log_limit`` records and the broker has run
``broker_log_interval`` seconds, ``arc up`` (``Centre`` in arc.up) replaces
the broker at such a moment:

1. it holds the receivers' sends (``arc.process.HOLD_SENDS``): a frame that
   arrives now waits, at most the ACK timeout; and it asks the dispatcher to
   store its held site states now (``STORE_NOW``);
2. it waits until every reader below has stored its position at the log's
   end and the ends stay put (a send already on its way lands first);
3. it stops the broker, starts a new one on the same port, creates the topics
   and sets the stored positions to 0, the start of the new log;
4. it tells the log writer and the dispatcher that the log starts over
   (``LOG_STARTS_OVER``): each seeks to 0 and says so on its stdout, keeping
   what it holds in memory; one that does not say so within a few seconds is
   restarted (the positions set to 0 again: a stopping dispatcher stores its
   own);
5. it releases the receivers. The new log is empty until then, so no reader
   can have read it at an offset of the old one.

Before step 1 every receiver and reader must be up and serving: one still
starting would not handle the signals yet (their default action ends a
process). If step 2 does not come true in time, nothing was changed: the
services go on with the old broker and it tries again later.
"""

from __future__ import annotations

from collections.abc import Mapping

from arc import bus, db

# Who must have read each topic to its end before its log may go: the log
# writer the rows, the dispatcher the signals and the operators' commands.
# (arc.incidents is the dispatcher's output; the console reads it live only.)
READERS: Mapping[str, tuple[str, ...]] = {
    bus.SIGNALS: ("logwriter_state", "dispatcher_state"),
    bus.QUARANTINE: ("logwriter_state",),
    bus.COMMANDS: ("dispatcher_state",),
}

Ends = Mapping[tuple[str, int], int]  # (topic, partition) → the log's end offset
Positions = Mapping[tuple[str, str, int], int]  # (table, topic, partition) → stored offset

_POSITIONS = """
SELECT 'logwriter_state' AS reader, topic, shard, next_offset AS position
FROM logwriter_state WHERE topic = ANY($1::text[])
UNION ALL
SELECT 'dispatcher_state', topic, shard,
       -- Site states written up to an older offset still need the signals after it.
       LEAST(next_offset, COALESCE(sites_offset, next_offset))
FROM dispatcher_state WHERE topic = ANY($1::text[])
"""


def due(ends: Ends, limit: int, *, age: float, interval: float) -> bool:
    """Whether a partition holds ``limit`` records or more (``limit`` 0: never).

    Not before the broker is ``interval`` seconds old (``age``): what a read
    costs grows with the batches a partition holds, and under a flood they
    are few and large (a replacement every few seconds would only hold the
    receivers), while a steady load makes a batch of every few signals.
    """
    return limit > 0 and age >= interval and any(end >= limit for end in ends.values())


def behind(ends: Ends, positions: Positions) -> list[str]:
    """The readers whose stored position is short of a log's end, as ``table topic[n] a/b``."""
    late = []
    for (topic, partition), end in sorted(ends.items()):
        for reader in READERS.get(topic, ()):
            position = positions.get((reader, topic, partition), 0)
            if position < end:
                late.append(f"{reader} {topic}[{partition}] {position}/{end}")
    return late


async def stored_positions(conn: db.Connection) -> dict[tuple[str, str, int], int]:
    """Every reader's stored position in the topics of ``READERS``."""
    rows = await conn.fetch(_POSITIONS, list(READERS))
    return {(r["reader"], r["topic"], r["shard"]): r["position"] for r in rows}


async def start_positions_over(conn: db.Connection) -> None:
    """Set every stored position to 0: the readers begin the new, empty log at its start.

    The chains' heads stay: the new log's rows continue them.
    """
    async with conn.transaction():
        await conn.execute(
            "UPDATE logwriter_state SET next_offset = 0, updated_at = now()"
            " WHERE topic = ANY($1::text[])",
            list(READERS),
        )
        await conn.execute(
            "UPDATE dispatcher_state SET next_offset = 0, sites_offset = NULL, updated_at = now()"
            " WHERE topic = ANY($1::text[])",
            list(READERS),
        )
