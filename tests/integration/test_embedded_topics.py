"""The embedded broker's topics: one partition each, unless the centre already has shards."""

from __future__ import annotations

import pytest

from arc import bus
from arc.embedded import topics
from tests.integration.conftest import Databases

pytestmark = [pytest.mark.integration, pytest.mark.asyncio, pytest.mark.timeout(30)]

# A row of each kind of per-shard state, in shard 2, as a centre that ran with
# four partitions left it.
_SHARD_2 = {
    "log writer's chain": (
        "INSERT INTO logwriter_state (topic, shard, next_offset, chain_seq, chain_hash)"
        " VALUES ('arc.signals', 2, 10, 10, '\\x00')"
    ),
    "dispatcher's offsets": (
        "INSERT INTO dispatcher_state (topic, shard, next_offset) VALUES ('arc.commands', 2, 3)"
    ),
    "a site's state": (
        "INSERT INTO site_state (account, shard, state) VALUES ('1234', 2, '{}'::jsonb)"
    ),
}


async def test_a_new_centre_gets_one_partition_per_topic(dbs: Databases) -> None:
    # A centre that has run with one partition has shard 0 only: still one each.
    await dbs.owner.execute(
        "INSERT INTO logwriter_state (topic, shard, next_offset, chain_seq, chain_hash)"
        " VALUES ('arc.signals', 0, 10, 10, '\\x00')"
    )
    assert await topics.partitions(dbs.owner) == dict.fromkeys(bus.TOPIC_PARTITIONS, 1)


@pytest.mark.parametrize("state", sorted(_SHARD_2))
async def test_a_centre_with_shards_keeps_its_partitions(dbs: Databases, state: str) -> None:
    await dbs.owner.execute(_SHARD_2[state])
    assert await topics.partitions(dbs.owner) == bus.TOPIC_PARTITIONS
