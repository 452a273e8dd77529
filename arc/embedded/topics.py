"""How many partitions ``arc up`` gives the embedded broker's topics: one each.

``arc up`` runs one log writer and one dispatcher, each reading every
partition, so partitions buy it no parallelism; on the embedded broker they
cost. The receiver's producer makes a batch per partition, the broker keeps
each batch as an object it lists on every read of that partition, and a read
that finds new data lists the partition afresh. At 1,000 records/s a
producer with the receiver's linger sent 2.7 times as many requests to four
partitions as to one, and the whole centre used about a quarter more CPU
for the same load (docs/benchmarks.md).

A centre whose stored state already has more than one shard keeps
``bus.TOPIC_PARTITIONS``: the dispatcher keeps open incidents and site
states per shard (partition of ``arc.signals``), and with fewer partitions
it would not load those of the other shards.
"""

from __future__ import annotations

from collections.abc import Mapping

from arc import bus, db

ONE_EACH: Mapping[str, int] = dict.fromkeys(bus.TOPIC_PARTITIONS, 1)

_SHARDED = """
SELECT EXISTS (SELECT 1 FROM logwriter_state WHERE topic = $1 AND shard > 0)
    OR EXISTS (SELECT 1 FROM dispatcher_state WHERE shard > 0)
    OR EXISTS (SELECT 1 FROM incidents WHERE shard > 0)
    OR EXISTS (SELECT 1 FROM site_state WHERE shard > 0)
"""


async def partitions(conn: db.Connection) -> Mapping[str, int]:
    """The topics' partitions for this centre's database: one each, unless it has shards."""
    sharded = await conn.fetchval(_SHARDED, bus.SIGNALS)
    return bus.TOPIC_PARTITIONS if sharded else ONE_EACH
