"""The normalized records that travel between ARC's parts.

A *signal* is one event one device reported, as received: the front doors
(``arc.ingest``) turn each decoded ``AlarmEvent`` into one, produce it to
``arc.signals`` keyed by account, and the log writer stores it as one row of
``signal_log`` (the same field names as the columns). A frame that reports
several events (an SIA block with several reports) becomes several signals,
each with its own id; the device is acknowledged once all are durable.

A *quarantined* input is what could not be accepted (bad CRC, wrong key,
unknown account...), kept with its raw bytes and the reason, on
``arc.quarantine`` → table ``quarantine``.

On the wire both are JSON objects (orjson): ids and times as strings, bytes
as base64. ``signal_row`` and ``quarantine_row`` turn them back into the
Python values the database columns take.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any, TypedDict

import orjson

from protocols.dc09_receiver import Message
from protocols.events import AlarmEvent


class SignalMessage(TypedDict):
    """A signal as produced to ``arc.signals`` (and stored in ``signal_log``)."""

    signal_id: str
    received_at: str
    account: str
    protocol: str
    transport: str
    peer: str | None
    message_id: str | None
    sequence: str | None
    receiver_no: str | None
    line_no: str | None
    encrypted: bool
    qualifier: str
    code: str | None
    cid_event: str | None
    event_class: str | None
    zone: str | None
    user_no: str | None
    partition_no: str | None
    event_text: str | None
    device_time: str | None
    drift_seconds: float | None
    drift_flagged: bool
    xdata: list[list[str]]
    raw: str  # base64
    dedup_key: str | None  # hex


class QuarantineMessage(TypedDict):
    """Refused input as produced to ``arc.quarantine`` (and stored in ``quarantine``)."""

    quarantine_id: str
    received_at: str
    transport: str
    peer: str | None
    protocol: str | None
    account: str | None
    response: str | None
    reason: str
    raw: str  # base64


# The centre's clock for people: days, reports and partitions are Beijing's (no DST).
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def beijing_day(moment: datetime) -> date:
    """The Beijing calendar day of ``moment``: the logs are partitioned by it."""
    return moment.astimezone(BEIJING).date()


def new_id() -> str:
    """A fresh random (version 4) UUID, as text, for a signal or a quarantined input.

    Formatted by hand: ``str(uuid.uuid4())`` costs several times as much, and
    the receiver makes one per signal.
    """
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


# RFC 9562 variant bits (10xx) over the random nibble.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def dc09_signals(
    message: Message,
    *,
    received_at: datetime,
    transport: str,
    peer: str | None,
    encrypted: bool,
    header_fields: tuple[str, str, str | None, str | None],
) -> list[SignalMessage]:
    """The signals of one accepted DC-09 message, one per event it reports.

    ``header_fields`` is (token, sequence, receiver, line) as the frame had
    them. A message with a timestamp gets a ``dedup_key`` per event: a panel
    that did not hear our ACK sends the same bytes again, and the log writer
    stores such a retransmission once (ARCHITECTURE.md §2, at-least-once).
    """
    token, sequence, receiver, line = header_fields
    received = received_at.isoformat()
    content = message.content
    basis = None
    if content.timestamp is not None:
        basis = (
            "\x1f".join(
                (message.account, token, sequence, receiver or "", line or "", content.data)
            ).encode()
            + content.timestamp.isoformat().encode()
        )
    device_time = None if content.timestamp is None else message.events[0].device_time
    signals: list[SignalMessage] = []
    for index, event in enumerate(message.events):
        dedup = None
        if basis is not None:
            dedup = hashlib.sha256(basis + b"\x1f%d" % index).hexdigest()
        signals.append(
            _signal(
                event,
                received=received,
                transport=transport,
                peer=peer,
                header=(token, sequence, receiver, line),
                encrypted=encrypted,
                device_time=device_time,
                drift=message.drift,
                flagged=message.drift_flagged,
                dedup=dedup,
            )
        )
    return signals


def _signal(
    event: AlarmEvent,
    *,
    received: str,
    transport: str,
    peer: str | None,
    header: tuple[str, str | None, str | None, str | None],
    encrypted: bool,
    device_time: datetime | None,
    drift: float | None,
    flagged: bool,
    dedup: str | None,
) -> SignalMessage:
    token, sequence, receiver, line = header
    return {
        "signal_id": new_id(),
        "received_at": received,
        "account": event.account,
        "protocol": event.protocol.value,
        "transport": transport,
        "peer": peer,
        "message_id": token,
        "sequence": sequence,
        "receiver_no": receiver,
        "line_no": line,
        "encrypted": encrypted,
        "qualifier": event.qualifier.value,
        "code": event.code,
        "cid_event": event.cid_event,
        "event_class": None if event.event_class is None else event.event_class.value,
        "zone": event.zone,
        "user_no": event.user,
        "partition_no": event.partition,
        "event_text": event.text,
        "device_time": None if device_time is None else device_time.isoformat(),
        "drift_seconds": drift,
        "drift_flagged": flagged,
        "xdata": [[name, value] for name, value in event.xdata],
        "raw": base64.b64encode(event.raw).decode(),
        "dedup_key": dedup,
    }


def quarantine_message(
    raw: bytes,
    *,
    received_at: datetime,
    transport: str,
    peer: str | None,
    reason: str,
    protocol: str | None = None,
    account: str | None = None,
    response: str | None = None,
) -> QuarantineMessage:
    """A refused input with everything an operator needs to look at it later."""
    return {
        "quarantine_id": new_id(),
        "received_at": received_at.isoformat(),
        "transport": transport,
        "peer": peer,
        "protocol": protocol,
        "account": account,
        "response": response,
        "reason": reason,
        "raw": base64.b64encode(raw).decode(),
    }


def encode(message: SignalMessage | QuarantineMessage) -> bytes:
    """The message's bytes on the bus."""
    return orjson.dumps(message)


def signal_row(data: bytes) -> dict[str, Any]:
    """The column values of a signal read off the bus (``signal_log`` names)."""
    row: dict[str, Any] = orjson.loads(data)
    row["signal_id"] = uuid.UUID(row["signal_id"])
    row["received_at"] = datetime.fromisoformat(row["received_at"])
    if row["device_time"] is not None:
        row["device_time"] = datetime.fromisoformat(row["device_time"])
    row["raw"] = base64.b64decode(row["raw"])
    if row["dedup_key"] is not None:
        row["dedup_key"] = bytes.fromhex(row["dedup_key"])
    return row


def quarantine_row(data: bytes) -> dict[str, Any]:
    """The column values of a quarantined input read off the bus."""
    row: dict[str, Any] = orjson.loads(data)
    row["quarantine_id"] = uuid.UUID(row["quarantine_id"])
    row["received_at"] = datetime.fromisoformat(row["received_at"])
    row["raw"] = base64.b64decode(row["raw"])
    return row
