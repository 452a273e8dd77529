"""The normalized event validates what every codec hands on."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest

from protocols.errors import FramingError
from protocols.events import AlarmEvent, EventClass, Protocol, Qualifier, build_event


def test_a_valid_event() -> None:
    event = AlarmEvent(
        account="1234",
        protocol=Protocol.DC09,
        code="BA",
        cid_event="130",
        event_class=EventClass.BURGLARY,
        device_time=datetime(2024, 1, 1, tzinfo=UTC),
    )
    assert not event.unclassified
    assert AlarmEvent(account="1234", protocol=Protocol.DC09, code="QZ").unclassified


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"account": ""}, "no account"),
        ({"code": "B"}, "two letters"),
        ({"code": "B1"}, "two letters"),
        ({"cid_event": "13"}, "three digits"),
        ({"device_time": datetime(2024, 1, 1)}, "timezone-aware"),  # noqa: DTZ001 - the point
    ],
)
def test_invalid_events_are_refused(fields: dict[str, object], reason: str) -> None:
    arguments: dict[str, object] = {"account": "1234", "protocol": Protocol.DC09, **fields}
    with pytest.raises(FramingError, match=reason):
        AlarmEvent(**arguments)  # type: ignore[arg-type]
    with pytest.raises(FramingError, match=reason):
        build_event(**arguments)  # type: ignore[arg-type]


class _NoOffset(tzinfo):
    """A tzinfo that knows no offset: a time with it is naive all the same."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"code": "BA", "cid_event": "130", "event_class": EventClass.BURGLARY, "zone": "012"},
        {"qualifier": Qualifier.RESTORE, "user": "7", "partition": "1", "text": "Hall"},
        {"device_time": datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=8)))},
        {"device_time": datetime(2024, 1, 1, tzinfo=UTC), "xdata": (("M", "1"),), "raw": b"x"},
    ],
)
def test_build_event_is_the_constructor_made_cheap(fields: dict[str, object]) -> None:
    arguments: dict[str, object] = {"account": "1234", "protocol": Protocol.DC09, **fields}
    built = build_event(**arguments)  # type: ignore[arg-type]
    made = AlarmEvent(**arguments)  # type: ignore[arg-type]
    assert type(built) is AlarmEvent
    assert built == made and hash(built) == hash(made) and repr(built) == repr(made)
    assert dataclasses.astuple(built) == dataclasses.astuple(made)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.zone = "1"  # type: ignore[misc]


def test_a_tzinfo_without_offset_is_not_aware() -> None:
    with pytest.raises(FramingError, match="timezone-aware"):
        build_event(
            account="1234",
            protocol=Protocol.DC09,
            device_time=datetime(2024, 1, 1, tzinfo=_NoOffset()),
        )
