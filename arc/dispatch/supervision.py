"""Supervision of link tests: an account that stops reporting opens a communication fault.

Each supervised account declares its link-test interval (``accounts.
link_test_seconds``). Any signal from it proves its path alive, so each one
moves its deadline to ``received + interval + grace``. Past the deadline the
account is *lost*: the dispatcher opens a communication-fault incident, and
the account's next signal restores it. Supervision starts with an account's
first signal: a panel that was never connected is not yet missing.

After the dispatcher starts, no deadline falls before ``start + grace``:
panels that could not reach a centre that was down get the grace to report
again, instead of every account opening a fault at once.

Sans-I/O: the clock is passed in. A heap orders the deadlines; entries made
stale by a later signal are skipped when they come up.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from datetime import datetime, timedelta


class Supervisor:
    """The link-test deadlines of one shard's accounts."""

    def __init__(self, *, grace: timedelta, started: datetime) -> None:
        self._grace = grace
        self._earliest = started + grace
        self._intervals: dict[str, timedelta] = {}
        self._deadline: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []
        self.lost: set[str] = set()

    def set_intervals(self, intervals: Mapping[str, int | None]) -> None:
        """The accounts' link-test intervals in seconds (None or absent: not supervised)."""
        self._intervals = {a: timedelta(seconds=s) for a, s in intervals.items() if s}
        for account in list(self._deadline):
            if account not in self._intervals:
                del self._deadline[account]
        # A changed interval takes effect at the account's next signal; rebuild the heap
        # so that unsupervised accounts leave it now.
        self._heap = [(d, a) for a, d in self._deadline.items()]
        heapq.heapify(self._heap)

    def seen(self, account: str, at: datetime) -> bool:
        """Note a signal from ``account``; True when it ends a loss (the fault is restored)."""
        interval = self._intervals.get(account)
        if interval is not None:
            deadline = max(at + interval + self._grace, self._earliest)
            if deadline > self._deadline.get(account, deadline - timedelta(seconds=1)):
                self._deadline[account] = deadline
                heapq.heappush(self._heap, (deadline, account))
        if account in self.lost:
            self.lost.discard(account)
            return True
        return False

    def mark_lost(self, account: str) -> None:
        """Record that ``account`` has an open communication fault (after a restart, too)."""
        self.lost.add(account)

    def due(self, now: datetime) -> list[str]:
        """Accounts whose deadline passed by ``now`` and are not lost already; now lost."""
        found: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, account = heapq.heappop(heap)
            if self._deadline.get(account) != deadline:
                continue  # a later signal moved it
            del self._deadline[account]
            if account not in self.lost:
                self.lost.add(account)
                found.append(account)
        return found

    def deadline(self, account: str) -> datetime | None:
        """When ``account`` counts as lost unless it reports (None: not supervised or lost)."""
        return self._deadline.get(account)
