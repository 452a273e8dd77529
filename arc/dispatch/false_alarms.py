"""Each account's false alarms in the last 12 months, and the warning before the police's limit.

Local police stop responding to a site's alarms after a number of false
alarms in 12 months (the number is theirs to set: ``Settings.false_alarm_limit``).
An incident closed with resolution ``false_alarm`` counts, at the moment it
was closed, for 365 days: an instant-based window (``closed_at`` after
``now - 365 days``), so the time zone does not matter and a close made at
23:59 Beijing time drops out exactly 365 days later, not at a day boundary.

The dispatcher keeps the counts of its shards' accounts here (loaded with a
shard, added to on each close) and writes the count, and the warning when the
account has reached ``limit - 1``, on every new incident of the account.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta

WINDOW = timedelta(days=365)


def warning(count: int, limit: int) -> str | None:
    """The operator's warning for an account with ``count`` false alarms (None: no warning)."""
    if count < limit - 1:
        return None
    if count < limit:
        left = limit - count
        return (
            f"12个月内误报 {count} 次，再误报 {left} 次公安机关将不再出警"
            f" ({count} false alarms in 12 months: {_one_more(left)} and the police stop"
            " responding)"
        )
    return (
        f"12个月内误报 {count} 次，已达公安机关不再出警的上限 {limit} 次"
        f" ({count} false alarms in 12 months: the police's limit of {limit} is reached,"
        " they may no longer respond)"
    )


def _one_more(left: int) -> str:
    return "one more" if left == 1 else f"{left} more"


class FalseAlarms:
    """The close times of false alarms per account, for one shard, within ``WINDOW``."""

    def __init__(self, closes: Iterable[tuple[str, datetime]] = ()) -> None:
        self._closes: dict[str, deque[datetime]] = {}
        for account, at in sorted(closes, key=lambda item: item[1]):
            self.add(account, at)

    def add(self, account: str, closed_at: datetime) -> None:
        """Count a false alarm of ``account`` closed at ``closed_at``."""
        times = self._closes.setdefault(account, deque())
        if times and closed_at < times[-1]:
            # Closes come in log order; an older one (a rebuild) goes in its place.
            times.append(closed_at)
            self._closes[account] = deque(sorted(times))
        else:
            times.append(closed_at)

    def count(self, account: str, now: datetime) -> int:
        """How many false alarms ``account`` had in the 365 days before ``now``."""
        times = self._closes.get(account)
        if not times:
            return 0
        since = now - WINDOW
        while times and times[0] <= since:
            times.popleft()  # out of the window for good: time only moves on
        if not times:
            del self._closes[account]
        return len(times)
