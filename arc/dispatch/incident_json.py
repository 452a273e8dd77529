"""An incident as the JSON of the ``incidents.state`` column and of ``arc.incidents``.

Split from ``lifecycle`` (the state machine): this is only the stored and
published form. ``from_json`` reads states stored by older dispatchers too:
a key added since (the response clocks, storm mode, the false-alarm count,
the kind of confirmation) is read as its default when absent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from arc.dispatch.lifecycle import (
    FalseAlarmCause,
    Incident,
    Resolution,
    Status,
    Step,
    StepStatus,
)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def to_json(incident: Incident) -> dict[str, Any]:
    """The incident as JSON values (``incidents.state``), key by key.

    The stored form written out: ``encode`` writes the same text faster, and
    the tests hold the two equal, so renaming a field of ``Incident`` cannot
    change the stored keys unnoticed.
    """
    return {
        "incident_id": str(incident.incident_id),
        "account": incident.account,
        "event_class": incident.event_class,
        "grade": incident.grade,
        "status": incident.status.value,
        "opened_at": incident.opened_at.isoformat(),
        "updated_at": incident.updated_at.isoformat(),
        "title": incident.title,
        "steps": [
            {
                "kind": s.kind,
                "deadline": s.deadline.isoformat(),
                "required": s.required,
                "status": s.status.value,
                "by": s.by,
                "outcome": s.outcome,
                "done_at": _time(s.done_at),
                "escalated": s.escalated,
            }
            for s in incident.steps
        ],
        "zones": sorted(incident.zones),
        "zones_in_alarm": sorted(incident.zones_in_alarm),
        "restored": incident.restored,
        "signal_count": incident.signal_count,
        "first_signal_id": None
        if incident.first_signal_id is None
        else str(incident.first_signal_id),
        "owner": incident.owner,
        "guard": incident.guard,
        "guard_dispatched_at": _time(incident.guard_dispatched_at),
        "guard_accepted_at": _time(incident.guard_accepted_at),
        "guard_arrived_at": _time(incident.guard_arrived_at),
        "guard_cleared_at": _time(incident.guard_cleared_at),
        "confirmed": incident.confirmed,
        "confirmation": incident.confirmation,
        "escalation_level": incident.escalation_level,
        "resolution": None if incident.resolution is None else incident.resolution.value,
        "cause": None if incident.cause is None else incident.cause.value,
        "closed_at": _time(incident.closed_at),
        "changes": incident.changes,
        "storm": incident.storm,
        "accounts": sorted(incident.accounts),
        "held_until": _time(incident.held_until),
        "false_alarms_12m": incident.false_alarms_12m,
        "warning": incident.warning,
    }


def encode(incident: Incident) -> bytes:
    """``to_json``'s JSON text, as orjson writes it from the dataclasses themselves.

    The dispatcher stores and publishes each changed incident with every
    batch. orjson writes the fields in their order, and ids, enums and times
    as ``to_json`` does; only the sets come back to Python, as sorted lists.
    """
    return orjson.dumps(incident, default=_sorted)


def _sorted(value: Any) -> list[str]:
    if isinstance(value, frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not part of an incident's JSON")


def from_json(d: Mapping[str, Any]) -> Incident:
    """The incident ``to_json`` wrote."""
    first = d["first_signal_id"]
    return Incident(
        incident_id=uuid.UUID(d["incident_id"]),
        account=d["account"],
        event_class=d["event_class"],
        grade=d["grade"],
        status=Status(d["status"]),
        opened_at=datetime.fromisoformat(d["opened_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        title=d["title"],
        steps=tuple(
            Step(
                kind=s["kind"],
                deadline=datetime.fromisoformat(s["deadline"]),
                required=s["required"],
                status=StepStatus(s["status"]),
                by=s["by"],
                outcome=s["outcome"],
                done_at=_parse_time(s["done_at"]),
                escalated=s["escalated"],
            )
            for s in d["steps"]
        ),
        zones=frozenset(d["zones"]),
        zones_in_alarm=frozenset(d["zones_in_alarm"]),
        restored=d["restored"],
        signal_count=d["signal_count"],
        first_signal_id=None if first is None else uuid.UUID(first),
        owner=d["owner"],
        guard=d["guard"],
        # Absent in states stored before the response clocks were kept.
        guard_dispatched_at=_parse_time(d.get("guard_dispatched_at")),
        guard_accepted_at=_parse_time(d["guard_accepted_at"]),
        guard_arrived_at=_parse_time(d["guard_arrived_at"]),
        guard_cleared_at=_parse_time(d.get("guard_cleared_at")),
        confirmed=d["confirmed"],
        confirmation=d.get("confirmation"),  # absent in states stored before it was kept
        escalation_level=d["escalation_level"],
        resolution=None if d["resolution"] is None else Resolution(d["resolution"]),
        cause=None if d["cause"] is None else FalseAlarmCause(d["cause"]),
        closed_at=_parse_time(d["closed_at"]),
        changes=d["changes"],
        # States stored before storm mode and the false-alarm count lack these.
        storm=d.get("storm"),
        accounts=frozenset(d.get("accounts") or (d["account"],)),
        held_until=_parse_time(d.get("held_until")),
        false_alarms_12m=d.get("false_alarms_12m", 0),
        warning=d.get("warning"),
    )
