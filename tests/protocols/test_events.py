"""The normalized event validates what every codec hands on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from protocols.errors import FramingError
from protocols.events import AlarmEvent, EventClass, Protocol


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
