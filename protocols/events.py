"""The normalized alarm event that every codec produces.

A panel speaks SIA DC-09 carrying SIA or Contact ID codes, a detector speaks
JSON through an IoT platform; past ``protocols`` they are all an
``AlarmEvent``: who (account), what (SIA code and/or Contact ID event, the
default class from our code tables), where (zone, user, partition), when
(device time) and the raw bytes it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

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
        if self.device_time is not None and self.device_time.utcoffset() is None:
            raise FramingError("device time must be timezone-aware")

    @property
    def unclassified(self) -> bool:
        """True when no code table knows this event's code."""
        return self.event_class is None
