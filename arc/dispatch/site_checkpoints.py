"""When the dispatcher writes site states: per shard, at most once an interval.

Writing every touched site's jsonb with every batch (twenty a second) cost
the dispatcher more than its decisions under a flood of alarms: a busy
site's whole state was serialised and rewritten for each of its signals. So
the changed sites of a shard are held here and written together once the
shard's last write is at least ``interval`` old: a quiet shard's change goes
out with the batch of its signal, a busy shard's once per interval.

The written states go with the offset of the shard's signals they reflect
(``dispatcher_state.sites_offset``), in the same transaction. A dispatcher
that takes the shard over, after a crash or a rebalance, reads the signals
from that offset to the stored offset again into site state only
(``Engine.replay_signal``), and so has the state it would have had: nothing
held here is lost with the process.

Sans-I/O: the caller passes the clock (monotonic seconds).
"""

from __future__ import annotations

import math
from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from arc.dispatch.site_state import SiteState

# Seconds between two writes of a busy shard's sites: how far behind the
# console's site view may be under load.
INTERVAL: Final = 1.0

# A site's entry, as in a Batch: (shard, state, its newest signal's received_at).
SiteEntry = tuple[int, SiteState, datetime]


@dataclass(frozen=True)
class Checkpoint:
    """The site states to write now, and the shards they complete."""

    sites: dict[str, SiteEntry]
    shards: frozenset[int]


class SiteCheckpoints:
    """The changed, unwritten site states of each shard, and when each shard was written."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._pending: dict[int, dict[str, SiteEntry]] = {}
        self._written: dict[int, float] = {}

    def changed(self, sites: Mapping[str, SiteEntry]) -> None:
        """Hold ``sites`` (a batch's changes) until their shard is written."""
        for account, (shard, state, at) in sites.items():
            pending = self._pending.setdefault(shard, {})
            known = pending.get(account)
            latest = at if known is None else max(at, known[2])
            pending[account] = (shard, state, latest)

    def due(self, now: float, *, held: Container[int] = ()) -> Checkpoint | None:
        """The shards to write now (not ``held``: a shard still replaying is behind)."""
        shards = [
            n
            for n, pending in self._pending.items()
            if pending and n not in held and now - self._written.get(n, -math.inf) >= self.interval
        ]
        return self._checkpoint(shards)

    def everything(self, *, held: Container[int] = ()) -> Checkpoint | None:
        """Every shard with changes, due or not (a dispatcher that stops)."""
        return self._checkpoint([n for n, p in self._pending.items() if p and n not in held])

    def written(self, checkpoint: Checkpoint, now: float) -> None:
        """``checkpoint`` committed at ``now``."""
        for shard in checkpoint.shards:
            self._pending.pop(shard, None)
            self._written[shard] = now

    def forget(self, shard: int) -> None:
        """Drop what is held for ``shard`` (revoked, or reloaded after a failed batch)."""
        self._pending.pop(shard, None)
        self._written.pop(shard, None)

    def _checkpoint(self, shards: list[int]) -> Checkpoint | None:
        if not shards:
            return None
        sites = {a: entry for n in shards for a, entry in self._pending[n].items()}
        return Checkpoint(sites, frozenset(shards))
