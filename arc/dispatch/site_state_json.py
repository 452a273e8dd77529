"""The jsonb of ``site_state``: a site's state written and read back, old rows included.

Split from ``site_state`` (the projection itself): this is only its stored
form. ``SCHEMA_VERSION`` is written with every state; a state of another
version or with keys missing reads as "never reported" for what it lacks,
never as an error, so a row stored by an older dispatcher still loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from arc.dispatch.site_state import (
    PartitionState,
    Reported,
    SiteState,
    ZoneAlarm,
)
from protocols.events import EventClass

SCHEMA_VERSION: Final = 1


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"a time must be an ISO 8601 string, got {value!r}")
    moment = datetime.fromisoformat(value)
    # Written aware by encode; a naive time (hand-edited row) is read as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse_reported(data: Any, convert: Callable[[Any], Any]) -> Reported[Any] | None:
    if not isinstance(data, Mapping) or "value" not in data:
        return None
    at = _parse_time(data.get("at"))
    if at is None:
        return None  # without its clock a report cannot take part in newer-wins
    return Reported(convert(data["value"]), _parse_time(data.get("since")) or at, at)


def _flags(data: Any) -> dict[str, Reported[bool]]:
    flags = {}
    for key, entry in (data or {}).items():
        flag = _parse_reported(entry, bool)
        if flag is not None:
            flags[key] = flag
    return flags


def _hazard(value: Any) -> EventClass | None:
    return None if value is None else EventClass(value)


def _one_of(*allowed: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"unknown value {value!r}, expected one of {allowed}")
        return str(value)

    return convert


_AC_VALUE, _BATTERY_VALUE = _one_of("ok", "lost"), _one_of("ok", "low", "missing")


def encode(state: SiteState) -> bytes:
    """Return the state's jsonb text; times as ISO 8601 strings.

    orjson writes the state's dataclasses itself, field by field (a zone's
    alarm as ``{"hazard", "partition", "since", "at"}``): a flooded site's
    64 zones are written every second, and building the dicts in Python cost
    more than the rest of the write.
    """
    return orjson.dumps(
        {
            "v": SCHEMA_VERSION,
            "partitions": state.partitions,
            "alarms": state.alarms,
            "bypass": state.bypass,
            "fault": state.fault,
            "tamper": state.tamper,
            "ac_power": state.ac_power,
            "battery": state.battery,
            "last_seen": state.last_seen,
            "last_link_test_at": state.last_link_test_at,
            "last_signal_at": state.last_signal_at,
            "signals_seen": state.signals_seen,
        },
        default=_plain,
    )


def _plain(value: Any) -> Any:
    # A mapping that is not a dict (none is, today): orjson writes dicts only.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot write {type(value).__name__} into a site state")


def from_json(data: Mapping[str, Any]) -> SiteState:
    """Return the state ``encode`` wrote (parsed); missing keys read as never reported.

    Keys a later schema version adds are ignored, so an older ARC can still
    read a newer row. A malformed time or value raises ``ValueError``.
    """
    partitions = {
        key: PartitionState(
            armed=p.get("armed"),
            armed_changed_at=_parse_time(p.get("armed_changed_at")),
            by_user=p.get("by_user"),
            reported_at=_parse_time(p.get("reported_at")),
            closed_at=_parse_time(p.get("closed_at")),
        )
        for key, p in (data.get("partitions") or {}).items()
    }
    alarms = {}
    for key, a in (data.get("alarms") or {}).items():
        at = _parse_time(a.get("at"))
        if at is not None:  # without its clock a report cannot take part in newer-wins
            hazard = _hazard(a.get("hazard"))
            alarms[key] = ZoneAlarm(
                hazard, a.get("partition"), _parse_time(a.get("since")) or at, at
            )
    return SiteState(
        partitions=partitions,
        alarms=alarms,
        bypass=_flags(data.get("bypass")),
        fault=_flags(data.get("fault")),
        tamper=_flags(data.get("tamper")),
        ac_power=_parse_reported(data.get("ac_power"), _AC_VALUE),
        battery=_parse_reported(data.get("battery"), _BATTERY_VALUE),
        last_seen={
            path: moment
            for path, value in (data.get("last_seen") or {}).items()
            if (moment := _parse_time(value)) is not None
        },
        last_link_test_at=_parse_time(data.get("last_link_test_at")),
        last_signal_at=_parse_time(data.get("last_signal_at")),
        signals_seen=int(data.get("signals_seen") or 0),
    )
