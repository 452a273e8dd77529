"""Replay raw signals through the codecs: one JSON-ready record per message.

This is what `arc decode` prints. Operators use it on what sits in
quarantine and on captures from the field, so it must never crash: every
input ends as records with ``ok`` true or false and a precise ``error``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from protocols import contact_id, nbiot, sia
from protocols.dc09 import FrameSplitter
from protocols.dc09_crypto import Dc09Key
from protocols.dc09_receiver import AccountSettings, Reception, TimestampPolicy, receive
from protocols.errors import ProtocolError, Response
from protocols.events import AlarmEvent, Protocol

Record = dict[str, Any]


class InputProtocol(StrEnum):
    """What `arc decode --protocol` accepts."""

    AUTO = "auto"
    DC09 = "dc09"
    CID = "cid"
    SIA = "sia"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """Keys and clock for a replay: every account is served, keys as given."""

    now: datetime
    keys: Mapping[str, Dc09Key] = field(default_factory=dict)
    policy: TimestampPolicy = TimestampPolicy()

    def account(self, account: str) -> AccountSettings:
        return AccountSettings(key=self.keys.get(account))


_DC09_HINT = re.compile(rb'(?:^|\n)[^\n"]{0,8}[0-9A-Fa-f]{4}"\*?[A-Z-]{3,10}"\d{4}')


def detect(data: bytes) -> InputProtocol:
    """Guess the protocol of a replay input; AUTO means text lines, judged one by one."""
    head = data.lstrip()
    if head.startswith((b"{", b"[{")):
        return InputProtocol.JSON
    if _DC09_HINT.search(data[:4096]):
        return InputProtocol.DC09
    if _starts_with_block(data):
        return InputProtocol.SIA
    return InputProtocol.AUTO


def _starts_with_block(data: bytes) -> bool:
    """True when the input opens with a checksum-valid raw DC-03 block (Galaxy)."""
    first = sia.BlockDecoder().feed(data[: sia.MAX_BLOCK])
    return bool(first) and isinstance(first[0], sia.Block)


def _block_shaped(data: bytes) -> bool:
    """Raw DC-03 rather than text: a block header, or control bytes in the input."""
    if _starts_with_block(data):
        return True
    if len(data) >= 2 and data[0] & 0x40 and chr(data[1]) in "#NA089" and data[:1] != b"[":
        return True
    return any(byte < 0x20 and byte not in b"\t\r\n" for byte in data)


def decode(data: bytes, protocol: InputProtocol, options: ReplayOptions) -> Iterator[Record]:
    """Yield one record per message found in ``data``."""
    if protocol is InputProtocol.AUTO:
        protocol = detect(data)
    if protocol is InputProtocol.DC09:
        yield from _decode_dc09(data, options)
    elif protocol is InputProtocol.JSON:
        yield _decode_json(data)
    elif protocol is InputProtocol.SIA and _block_shaped(data):
        yield from _decode_sia_blocks(data)
    else:
        yield from _decode_lines(data, protocol)


def _decode_dc09(data: bytes, options: ReplayOptions) -> Iterator[Record]:
    if b"\r" not in data:
        # A log file: each line is a frame whose LF and CR the logger lost.
        data = b"".join(b"\n" + line.strip() + b"\r" for line in data.splitlines() if line.strip())
    splitter = FrameSplitter()
    for chunk in splitter.feed(data) + splitter.flush():
        reception = receive(chunk, now=options.now, accounts=options.account, policy=options.policy)
        yield _dc09_record(reception)


def _dc09_record(reception: Reception) -> Record:
    record = _base("dc09", reception.raw)
    frame = reception.frame
    if frame is not None:
        header = frame.header
        record.update(
            message_id=header.token,
            account=header.account,
            sequence=header.sequence,
            receiver=header.receiver,
            line=header.line,
            encrypted=header.encrypted,
            crc_format=frame.crc_format.value,
        )
    record["crc_ok"] = frame is not None
    record["response"] = None if reception.response is None else reception.response.value
    message = reception.message
    if message is not None:
        record.update(
            account=message.account,
            data_account=message.data_account,
            timestamp=_iso(message.content.timestamp),
            xdata=dict(message.content.xdata),
            drift_seconds=message.drift,
            drift_flagged=message.drift_flagged,
        )
        _add_events(record, message.events)
    if reception.error is not None:
        record.update(ok=False, error=_error(reception.error))
    else:
        record["ok"] = True
    return record


def _decode_json(data: bytes) -> Record:
    record = _base("json", data)
    try:
        events = nbiot.decode_push(data)
    except ProtocolError as error:
        record.update(ok=False, response=error.response.value, error=_error(error))
        return record
    record.update(ok=True, response=Response.ACK.value, protocol=events[0].protocol.value)
    _add_events(record, events)
    return record


_ANSWERS = {sia.ACK_BLOCK: Response.ACK.value, sia.REJECT_BLOCK: Response.NAK.value}


def _decode_sia_blocks(data: bytes) -> Iterator[Record]:
    session = sia.Dc03Session()
    for step in [*session.feed(data), session.close()]:
        if not step.raw:
            continue  # the closing step of a stream that ended cleanly
        record = _base("sia", step.raw)
        record.update(
            ok=step.error is None, response=_ANSWERS.get(step.answer), account=session.account
        )
        if step.error is not None:
            record["error"] = _error(step.error)
        _add_events(record, step.events)
        yield record


# A SIA data block as text: a new-event section after an account bar, or a
# bare payload as Galaxy documentation prints it ("ti11:46/BA1011").
_SIA_TEXT = re.compile(r"[^|]*\|N|N[A-Z]{2}|N?(?:ri|pi|id|ti|va)[0-9]")


def _decode_lines(data: bytes, protocol: InputProtocol) -> Iterator[Record]:
    """Contact ID lines or bare data blocks written as text, one per line.

    A data block out of its DC-09 frame (``[#1234|Nri1/BA1]``) is decoded to
    show what it means, but nothing protected it and nothing answers it.
    """
    for raw_line in data.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        text = line.decode("utf-8", "replace")
        block = text.removeprefix("[").removesuffix("]")
        as_sia = protocol is InputProtocol.SIA or (
            protocol is InputProtocol.AUTO and _is_sia_text(block)
        )
        record = _base("sia" if as_sia else "cid", line)
        try:
            if as_sia:
                events = _sia_block(block, line)
            elif text.startswith("[#") and "|" in block:
                events = (_cid_block(block, line),)
            else:
                events = (contact_id.decode_line(text),)
                record["response"] = Response.ACK.value
        except ProtocolError as error:
            record.update(ok=False, response=error.response.value, error=_error(error))
        else:
            record["ok"] = True
            _add_events(record, events)
        yield record


def _is_sia_text(block: str) -> bool:
    return _SIA_TEXT.match(block) is not None


def _sia_block(block: str, raw: bytes) -> tuple[AlarmEvent, ...]:
    if not block.startswith(("#", "N", "|")) and "|" not in block:
        block = "N" + block  # a bare payload as printed, "ti11:46/BA1011"
    parsed = sia.parse_data_block(block)
    account = parsed.account or "unknown"
    return tuple(
        sia.to_event(report, account=account, protocol=Protocol.SIA_DC03, raw=raw)
        for report in parsed.reports
    )


def _cid_block(block: str, raw: bytes) -> AlarmEvent:
    parsed = contact_id.parse_adm_cid(block)
    return contact_id.to_event(
        parsed.event,
        parsed.qualifier_digit,
        parsed.partition,
        parsed.zone_or_user,
        account=parsed.account or "unknown",
        protocol=Protocol.CONTACT_ID,
        raw=raw,
    )


def _base(protocol: str, raw: bytes) -> Record:
    return {
        "ok": False,
        "protocol": protocol,
        "message_id": None,
        "account": None,
        "sequence": None,
        "receiver": None,
        "line": None,
        "code": None,
        "cid_event": None,
        "qualifier": None,
        "event_class": None,
        "zone": None,
        "user": None,
        "partition": None,
        "text": None,
        "timestamp": None,
        "encrypted": False,
        "crc_ok": None,
        "response": None,
        "error": None,
        "raw_hex": raw.hex().upper(),
    }


def _add_events(record: Record, events: tuple[AlarmEvent, ...]) -> None:
    """The first event's fields at top level; all of them under "events"."""
    fields = [_event_fields(event) for event in events]
    if fields:
        record.update(fields[0])
    record["events"] = fields


def _event_fields(event: AlarmEvent) -> Record:
    return {
        "account": event.account,
        "code": event.code,
        "cid_event": event.cid_event,
        "qualifier": event.qualifier.value,
        "event_class": None if event.event_class is None else event.event_class.value,
        "unclassified": event.unclassified,
        "zone": event.zone,
        "user": event.user,
        "partition": event.partition,
        "text": event.text,
        "device_time": _iso(event.device_time),
    }


def _error(error: ProtocolError) -> str:
    return f"{type(error).__name__}: {error.reason}"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
