"""The normalized alarm event that every codec produces.

A panel speaks SIA DC-09 carrying SIA or Contact ID codes, a detector speaks
JSON through an IoT platform; past ``protocols`` they are all an
``AlarmEvent``: who (account), what (SIA code and/or Contact ID event, the
default class from our code tables), where (zone, user, partition), when
(device time) and the raw bytes it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, make_dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ParamSpec, cast

from protocols.errors import FramingError


class Protocol(StrEnum):
    """The carrier a signal arrived in."""

    DC09 = "dc09"
    CONTACT_ID = "cid"
    SIA_DC03 = "sia"
    CTWING = "ctwing"
    OCEANCONNECT = "oceanconnect"
    ONENET = "onenet"


class Qualifier(StrEnum):
    """Whether an event starts, ends or repeats a condition."""

    NEW = "new"  # Contact ID 1, SIA alarm/trouble/opening codes
    RESTORE = "restore"  # Contact ID 3, SIA restoral/closing codes
    STATUS = "status"  # Contact ID 6: previously reported condition still present


class EventClass(StrEnum):
    """Default alarm class of an event code; the dispatcher may override it."""

    BURGLARY = "burglary"
    HOLDUP = "holdup"  # hold-up and duress
    PANIC = "panic"
    FIRE = "fire"
    GAS = "gas"
    WATER = "water"
    MEDICAL = "medical"
    TAMPER = "tamper"
    TROUBLE = "trouble"  # fault of the system or a detector
    COMMUNICATION = "communication"  # path, link or supervision fault
    OPEN_CLOSE = "open_close"
    TEST = "test"  # test reports and link tests
    OTHER = "other"


class Address(StrEnum):
    """What the number after an event code designates."""

    ZONE = "zone"
    USER = "user"
    AREA = "area"
    DOOR = "door"
    DEVICE = "device"  # expander, relay, line, receiver, network, point
    NONE = "none"


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One event reported by one device, in terms common to every protocol.

    ``event_class`` is the default class of the code in our tables; ``None``
    means the code is not in them: the event is kept and shown unclassified,
    never rejected. Messages a platform itself declares informational (a
    command result) have no code and class OTHER. ``device_time`` is
    timezone-aware (UTC) when present.
    """

    account: str
    protocol: Protocol
    qualifier: Qualifier = Qualifier.NEW
    code: str | None = None  # SIA two-letter code
    cid_event: str | None = None  # Contact ID three-digit event code
    event_class: EventClass | None = None
    zone: str | None = None
    user: str | None = None
    partition: str | None = None
    text: str | None = None
    device_time: datetime | None = None
    xdata: tuple[tuple[str, str], ...] = ()
    raw: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if not self.account:
            raise FramingError("event has no account")
        if self.code is not None and not (len(self.code) == 2 and self.code.isalpha()):
            raise FramingError(f"SIA event code must be two letters, got {self.code!r}")
        if self.cid_event is not None and len(self.cid_event) != 3:
            raise FramingError(f"Contact ID event must be three digits, got {self.cid_event!r}")
        time = self.device_time
        # UTC, what the codecs produce, is aware without asking (utcoffset() is a slow call).
        if time is not None and time.tzinfo is not UTC and time.utcoffset() is None:
            raise FramingError("device time must be timezone-aware")

    @property
    def unclassified(self) -> bool:
        """True when no code table knows this event's code."""
        return self.event_class is None


_P = ParamSpec("_P")


def _cheap_constructor(event_type: Callable[_P, AlarmEvent]) -> Callable[_P, AlarmEvent]:
    """Return a constructor with the arguments, checks and result of ``event_type``.

    A frozen dataclass fills each slot through ``object.__setattr__``, the
    slowest way to set an attribute in CPython: for the 13 fields of an event,
    most of its cost. This one fills a mutable twin (same fields, so the same
    slots) with plain stores, turns it into an ``AlarmEvent`` by ``__class__``
    assignment, which CPython allows only between identical layouts, and runs
    ``AlarmEvent.__post_init__`` on it: a frozen, checked ``AlarmEvent``, for
    about a fifth of the cost.
    """

    def become_event(draft: Any) -> None:
        draft.__class__ = AlarmEvent
        draft.__post_init__()

    twin = make_dataclass(
        "AlarmEventDraft",
        [
            (f.name, f.type, field(default=f.default, default_factory=f.default_factory))
            for f in fields(AlarmEvent)
        ],
        namespace={"__post_init__": become_event},
        repr=False,
        eq=False,
        slots=True,
    )
    return cast(Callable[_P, AlarmEvent], twin)


# ``build_event(...)`` is ``AlarmEvent(...)`` for the codecs' hot paths.
build_event = _cheap_constructor(AlarmEvent)
