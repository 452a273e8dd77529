"""Ademco Contact ID (SIA DC-05): event codes, 16-digit reports, ADM-CID blocks, field forms.

Theory of operation
===================
A Contact ID report is ``ACCT MT Q XYZ GG CCC S`` (PROTOCOLS.md §2.1): a four-digit
account, message type 18 (or the optional 98), a qualifier (1 new event or opening,
3 restore or closing, 6 condition still present), a three-digit event code, a
two-digit partition (00 = none), a three-digit zone or user (000 = none) and a check
digit. The alphabet is 0-9 and B-F: hex A is never sent, because several formats use
it to carry a 0. S makes the sum of all sixteen digit values a multiple of 15, with 0
counted as 10, so S is F when the fifteen data digits already sum to a multiple of 15.
Every digit is worth 1..15, so changing any one digit moves the sum by 1..14 and can
never keep it a multiple of 15: a single wrong digit is always caught.

The same fields travel in other envelopes, all turned into the same ``AlarmEvent``
(§2.2); ``decode_line`` recognises each by its shape:

* plain DC-05 digits, optionally spaced as printed: ``1234 18 1 130 01 001 9``;
* Lupusec / Egardia over TCP, ``[<subscriber> 18QXYZGGCCC<CCCC>]``, where CCCC is a
  Fletcher-16 over ``<subscriber> 18QXYZGGCCC`` in place of the mod-15 digit;
* Sur-Gard receiver output ``<receiver>-18<ACCT><E|R>XYZGGCCC`` and the Ademco serial
  module ``AL[00]<ACCT>18QXYZGGCCC##``: lines written by local equipment with no check
  of their own, trusted as the local link that carries them.

Inside SIA DC-09 the "ADM-CID" data block ``#ACCT|QXYZ GG CCC`` (§1.7) has neither MT
nor S, the DC-09 CRC protects it; the DC-09 codec checks the frame and hands the block
to ``parse_adm_cid``. Hikvision fills its NULL supervision messages with the block
``#0000|0000 00 000`` (§1.15): that is not an event, and ``parse_adm_cid`` refuses its
qualifier 0 like any other; ``is_dummy_block`` lets the DC-09 codec recognise it first.

Checks run grammar first (``FramingError``), then integrity (``IntegrityError``), then
meaning (message type, qualifier; ``FramingError``): a corrupted report is reported
as corrupted rather than as one with an odd qualifier. Nothing else escapes.

The code table expands every code and range of §2.3 into one row, with the vendor
extensions §2.3 names (Hikvision, Hengbo). Its SIA column follows §2.3 / §3.4 except
where that mapping turns an arming into an opening (441, 456; see the comment there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Final, NamedTuple

from protocols.contact_id_codes import CID_CODES, CidCode
from protocols.errors import FramingError, IntegrityError
from protocols.events import Address, AlarmEvent, Protocol, Qualifier, build_event

__all__ = [
    "CID_CODES",
    "AdmCidBlock",
    "CidCode",
    "ContactIdMessage",
    "checksum_digit",
    "block_event",
    "cid_for_sia",
    "decode_line",
    "encode_message",
    "fletcher16",
    "is_dummy_block",
    "lookup",
    "parse_adm_cid",
    "parse_message",
    "sia_for_cid",
    "to_event",
    "verify_checksum",
]

# ---------------------------------------------------------------------------
# Alphabet and field checks (§2.1)
# ---------------------------------------------------------------------------

# Digit values for the checksum; "0" is worth 10 so that no digit is worth 0 mod 15.
_VALUE: Final[Mapping[str, int]] = MappingProxyType(
    {"0": 10, **{str(d): d for d in range(1, 10)}, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15}
)
_DIGIT_FOR_VALUE: Final[Mapping[int, str]] = MappingProxyType({v: k for k, v in _VALUE.items()})
_QUALIFIERS: Final[Mapping[str, Qualifier]] = MappingProxyType(
    {"1": Qualifier.NEW, "3": Qualifier.RESTORE, "6": Qualifier.STATUS}
)
_MESSAGE_TYPES: Final = frozenset({"18", "98"})
# Bosch Conettix receivers write 10-digit accounts with MT 58 in the unspaced block
# form (§2.1, S-CONETTIX); it exists only there, never in a 16-digit report.
_BLOCK_MESSAGE_TYPES: Final = frozenset({"18", "98", "58"})
_NO_PARTITION: Final = "00"
_NO_ZONE_OR_USER: Final = "000"
# Read for every event, so bound once: on Python 3.11 reading a member off an
# Enum class is a slow call (EnumType defines __getattr__).
_USER, _RESTORE = Address.USER, Qualifier.RESTORE


def _show(text: str) -> str:
    """Quote input for an error reason without echoing an unbounded string."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


def _check_field(name: str, value: str, length: int) -> None:
    """Raise FramingError unless ``value`` is ``length`` Contact ID digits."""
    for char in value:
        if char not in _VALUE:
            why = "; hex A is never sent in Contact ID" if char == "A" else ""
            raise FramingError(f"{name} digit {char!r} is not a Contact ID digit (0-9, B-F){why}")
    if len(value) != length:
        raise FramingError(f"{name} must be {length} Contact ID digits, got {_show(value)}")


def _check_message_type(message_type: str, allowed: frozenset[str] = _MESSAGE_TYPES) -> None:
    if message_type not in allowed:
        expected = " or ".join(sorted(allowed))
        raise FramingError(f"message type {message_type!r} is not Contact ID (expected {expected})")


def _check_qualifier(digit: str, *, all_zero: bool = False) -> Qualifier:
    qualifier = _QUALIFIERS.get(digit)
    if qualifier is None:
        hint = (
            "; an all-zero block is Hikvision's NULL filler, test is_dummy_block first"
            if all_zero
            else ""
        )
        raise FramingError(
            f"qualifier digit {digit!r} is not 1 (new), 3 (restore) or 6 (status){hint}"
        )
    return qualifier


# Where several codes share a SIA code the lowest wins, except for these rows: the
# code a panel actually sends for the plain case (a user arming, a hold-up zone, a
# path fault, a partial arm) beats a lower, more special one (400, 121, 344, 441).
_PREFERRED_FOR_SIA: Final = frozenset({"122", "350", "401", "456"})


def _reverse_sia() -> Mapping[str, str]:
    reverse: dict[str, str] = {}
    for row in sorted(
        CID_CODES.values(), key=lambda row: (row.code not in _PREFERRED_FOR_SIA, row.code)
    ):
        for sia in (row.sia_new, row.sia_restore):
            if sia is not None:
                reverse.setdefault(sia, row.code)
    return MappingProxyType(reverse)


_CID_FOR_SIA: Final = _reverse_sia()


def lookup(code: str) -> CidCode | None:
    """Return the table row of a three-digit event code, or None if unknown."""
    return CID_CODES.get(code)


def sia_for_cid(event: str, qualifier: Qualifier) -> str | None:
    """Return the SIA code for a Contact ID event and qualifier, or None if unmapped."""
    row = CID_CODES.get(event)
    return None if row is None else _sia_code(row, qualifier)


def _sia_code(row: CidCode, qualifier: Qualifier) -> str | None:
    # A status report (6) says the condition is still present: the new-event code.
    return row.sia_restore if qualifier is _RESTORE else row.sia_new


def cid_for_sia(code: str) -> str | None:
    """Return the canonical Contact ID event code for a SIA code, or None."""
    return _CID_FOR_SIA.get(code)


# ---------------------------------------------------------------------------
# The 16-digit DC-05 report (§2.1)
# ---------------------------------------------------------------------------


def _check_report_fields(
    account: str,
    message_type: str,
    qualifier_digit: str,
    event: str,
    partition: str,
    zone_or_user: str,
) -> None:
    _check_field("account", account, 4)
    _check_field("message type", message_type, 2)
    _check_field("qualifier", qualifier_digit, 1)
    _check_field("event", event, 3)
    _check_field("partition", partition, 2)
    _check_field("zone/user", zone_or_user, 3)


def checksum_digit(first15: str) -> str:
    """Return the check digit that completes fifteen Contact ID digits."""
    _check_field("message", first15, 15)
    remainder = sum(_VALUE[char] for char in first15) % 15
    # No digit is worth 0, so a sum that is already a multiple of 15 takes F (15).
    return _DIGIT_FOR_VALUE[15 - remainder]


def verify_checksum(digits: str) -> None:
    """Raise IntegrityError unless sixteen Contact ID digits sum to a multiple of 15."""
    _check_field("message", digits, 16)
    expected = checksum_digit(digits[:15])
    if digits[15] != expected:
        total = sum(_VALUE[char] for char in digits)
        raise IntegrityError(
            f"Contact ID checksum mismatch: expected {expected!r}, got {digits[15]!r} "
            f"(digit sum {total} is not a multiple of 15)"
        )


@dataclass(frozen=True, slots=True)
class ContactIdMessage:
    """One DC-05 report ``ACCT MT Q XYZ GG CCC S``, checked on construction."""

    account: str
    message_type: str
    qualifier_digit: str
    event: str
    partition: str
    zone_or_user: str
    checksum: str

    def __post_init__(self) -> None:
        _check_report_fields(
            self.account,
            self.message_type,
            self.qualifier_digit,
            self.event,
            self.partition,
            self.zone_or_user,
        )
        _check_field("checksum", self.checksum, 1)
        verify_checksum(self.digits)
        _check_message_type(self.message_type)
        _check_qualifier(self.qualifier_digit)

    @property
    def digits(self) -> str:
        """The sixteen digits as sent."""
        return (
            self.account
            + self.message_type
            + self.qualifier_digit
            + self.event
            + self.partition
            + self.zone_or_user
            + self.checksum
        )

    @property
    def qualifier(self) -> Qualifier:
        """The qualifier digit as a ``Qualifier``."""
        return _QUALIFIERS[self.qualifier_digit]


def parse_message(text: str) -> ContactIdMessage:
    """Parse sixteen Contact ID digits, spaces between them allowed."""
    digits = text.replace(" ", "")
    if len(digits) != 16:
        raise FramingError(
            "a Contact ID report has 16 digits (ACCT MT Q XYZ GG CCC S), "
            f"got {len(digits)}: {_show(text)}"
        )
    return ContactIdMessage(
        account=digits[0:4],
        message_type=digits[4:6],
        qualifier_digit=digits[6],
        event=digits[7:10],
        partition=digits[10:12],
        zone_or_user=digits[12:15],
        checksum=digits[15],
    )


def encode_message(
    account: str,
    qualifier_digit: str,
    event: str,
    partition: str = _NO_PARTITION,
    zone_or_user: str = _NO_ZONE_OR_USER,
    *,
    message_type: str = "18",
) -> str:
    """Return the sixteen digits of a report, check digit included."""
    _check_report_fields(account, message_type, qualifier_digit, event, partition, zone_or_user)
    first15 = account + message_type + qualifier_digit + event + partition + zone_or_user
    message = ContactIdMessage(
        account=account,
        message_type=message_type,
        qualifier_digit=qualifier_digit,
        event=event,
        partition=partition,
        zone_or_user=zone_or_user,
        checksum=checksum_digit(first15),
    )
    return message.digits


# ---------------------------------------------------------------------------
# The ADM-CID data block inside SIA DC-09 (§1.7)
# ---------------------------------------------------------------------------

# DC-09 accounts are 3-16 hex digits (§1.6); real panels send letters beyond F
# (XTRM189), so any ASCII letter or digit is accepted here.
_BLOCK_ACCOUNT = re.compile(r"[0-9A-Za-z]{3,16}")
# The block nearly every panel sends, "#ACCT|QXYZ GG CCC" with a valid qualifier,
# read in one match; the rest take the field-by-field checks, which say what is wrong.
_USUAL_BLOCK = re.compile(
    r"(?:#?([0-9A-Za-z]{3,16})\|)?([136])([0-9B-F]{3}) ([0-9B-F]{2}) ([0-9B-F]{3})"
)
_DUMMY_PAYLOAD: Final = "0000 00 000"


class AdmCidBlock(NamedTuple):
    """The content of an ADM-CID data block: ``#ACCT|QXYZ GG CCC`` without MT or S.

    ``account`` is the account written inside the block (None when the block has
    none); it may differ from the DC-09 header account, which stays the key.
    ``parse_adm_cid`` makes these and checks every field; the type itself checks
    nothing.
    """

    account: str | None
    qualifier_digit: str
    event: str
    partition: str
    zone_or_user: str

    @property
    def qualifier(self) -> Qualifier:
        """The qualifier digit as a ``Qualifier``."""
        return _QUALIFIERS[self.qualifier_digit]


def _split_block_account(data: str) -> tuple[str | None, str]:
    """Split ``#acct|payload``, ``acct|payload`` or ``payload``."""
    if "|" not in data:
        return None, data
    head, _, payload = data.partition("|")
    if not head:
        return None, payload  # "[|..." blocks are seen from panels with no account set
    account = head.removeprefix("#")
    if not _BLOCK_ACCOUNT.fullmatch(account):
        raise FramingError(f"ADM-CID account must be 3-16 letters or digits, got {_show(head)}")
    return account, payload


def parse_adm_cid(data: str) -> AdmCidBlock:
    """Parse the content of an ADM-CID data block (without its brackets)."""
    usual = _USUAL_BLOCK.fullmatch(data)
    if usual is not None:
        return AdmCidBlock._make(usual.groups())
    return _parse_any_block(data)


def _parse_any_block(data: str) -> AdmCidBlock:
    """Parse every form of block, checking field by field so that an error names the field."""
    account, payload = _split_block_account(data)
    if len(payload) == 11 and payload[4] == " " and payload[7] == " ":
        qualifier, event, partition, zone = payload[0], payload[1:4], payload[5:7], payload[8:]
    elif len(payload) == 11 and " " not in payload:
        # Conettix-style receivers and some test fixtures keep MT and drop the spaces.
        _check_message_type(payload[:2], _BLOCK_MESSAGE_TYPES)
        qualifier, event, partition, zone = payload[2], payload[3:6], payload[6:8], payload[8:]
    else:
        raise FramingError(
            f"ADM-CID data must be 'QXYZ GG CCC' or '18QXYZGGCCC', got {_show(payload)}"
        )
    _check_field("qualifier", qualifier, 1)
    _check_field("event", event, 3)
    _check_field("partition", partition, 2)
    _check_field("zone/user", zone, 3)
    _check_qualifier(qualifier, all_zero=event + partition + zone == "00000000")
    return AdmCidBlock(account, qualifier, event, partition, zone)


def is_dummy_block(data: str) -> bool:
    """Tell whether a data block is the all-zero filler Hikvision puts in NULL messages."""
    try:
        _, payload = _split_block_account(data)
    except FramingError:
        return False
    return payload == _DUMMY_PAYLOAD


# ---------------------------------------------------------------------------
# Normalised events
# ---------------------------------------------------------------------------


def to_event(
    event: str,
    qualifier_digit: str,
    partition: str,
    zone_or_user: str,
    *,
    account: str,
    protocol: Protocol,
    raw: bytes,
    device_time: datetime | None = None,
    xdata: tuple[tuple[str, str], ...] = (),
) -> AlarmEvent:
    """Turn Contact ID fields into an ``AlarmEvent``; unknown events stay unclassified."""
    _check_field("event", event, 3)
    _check_field("partition", partition, 2)
    _check_field("zone/user", zone_or_user, 3)
    _check_qualifier(qualifier_digit)
    return block_event(
        AdmCidBlock(None, qualifier_digit, event, partition, zone_or_user),
        account=account,
        protocol=protocol,
        raw=raw,
        device_time=device_time,
        xdata=xdata,
    )


def block_event(
    block: AdmCidBlock,
    *,
    account: str,
    protocol: Protocol,
    raw: bytes,
    device_time: datetime | None = None,
    xdata: tuple[tuple[str, str], ...] = (),
) -> AlarmEvent:
    """Turn a block from ``parse_adm_cid`` (its fields checked there) into an ``AlarmEvent``."""
    qualifier = _QUALIFIERS[block.qualifier_digit]
    row = CID_CODES.get(block.event)
    code = event_class = None
    if row is not None:
        code, event_class = _sia_code(row, qualifier), row.event_class
    number = None if block.zone_or_user == _NO_ZONE_OR_USER else block.zone_or_user
    # DC-05: CCC is the zone in event reports and the user only in open/close
    # reports, so an event missing from the table is read as zone-addressed.
    # A number where the code uses none (Trikdis sends 602 with 999) is still
    # what the panel said: kept as the zone rather than dropped.
    zone = user = None
    if row is not None and row.address is _USER:
        user = number
    else:
        zone = number
    partition = None if block.partition == _NO_PARTITION else block.partition
    cid_event, text = block.event, None
    # Every field in order: a class called with keywords builds a dict of them.
    return build_event(
        account,
        protocol,
        qualifier,
        code,
        cid_event,
        event_class,
        zone,
        user,
        partition,
        text,
        device_time,
        xdata,
        raw,
    )


# ---------------------------------------------------------------------------
# Field transport variants (§2.2)
# ---------------------------------------------------------------------------


def fletcher16(data: bytes) -> int:
    """Return the Fletcher-16 of ``data`` as Lupusec computes it: 8-bit sums mod 256."""
    low = high = 0
    for byte in data:
        low = (low + byte) % 256
        high = (high + low) % 256
    return high << 8 | low


_LUPUSEC_BODY_ALONE = re.compile(r"(18|98)[0-9B-F]{9}[0-9A-F]{4}")
_HEX4 = re.compile(r"[0-9A-F]{4}")
_SUBSCRIBER = re.compile(r"[\x20-\x5a\x5c\x5e-\x7e]+")  # printable ASCII except [ ]
_RECEIVER_ID = re.compile(r"[0-9A-F]{1,8}")


def decode_line(text: str) -> AlarmEvent:
    """Decode one line in any Contact ID form of §2.2 into an ``AlarmEvent``.

    The caller splits the stream into lines; trailing CR/LF and surrounding
    spaces are ignored.
    """
    line = text.strip(" \r\n")
    # Only ASCII lines decode, but the reason for refusing must not be a UnicodeError.
    raw = text.encode("utf-8", "surrogatepass")
    if not line:
        raise FramingError("empty line")
    if line.startswith("["):
        return _decode_bracketed(line, raw)
    if line.startswith("AL"):
        return _decode_ademco_serial(line, raw)
    if "-" in line:
        return _decode_surgard(line, raw)
    if _LUPUSEC_BODY_ALONE.fullmatch(line):
        raise FramingError(
            "Lupusec/Egardia event body without its '[<subscriber> ...]' frame: "
            "its Fletcher-16 covers the subscriber, so it cannot be verified"
        )
    message = parse_message(line)
    return to_event(
        message.event,
        message.qualifier_digit,
        message.partition,
        message.zone_or_user,
        account=message.account,
        protocol=Protocol.CONTACT_ID,
        raw=raw,
    )


def _decode_bracketed(line: str, raw: bytes) -> AlarmEvent:
    """Decode Lupusec/Egardia ``[<subscriber> 18QXYZGGCCC<CCCC>]``."""
    if not line.endswith("]"):
        raise FramingError(f"line opens with '[' but does not close with ']': {_show(line)}")
    inner = line[1:-1]
    if "|" in inner:
        raise FramingError(
            "DC-09 data block outside a DC-09 frame: no CRC or check digit protects it; "
            "the DC-09 codec decodes the whole frame"
        )
    subscriber, space, body = inner.rpartition(" ")
    if not space or not subscriber.strip():
        raise FramingError(
            f"Lupusec/Egardia frame needs '[<subscriber> <event>]', got {_show(line)}"
        )
    if not _SUBSCRIBER.fullmatch(subscriber):
        # The checksum covers the subscriber's bytes, known only for ASCII text.
        raise FramingError(
            f"Lupusec/Egardia subscriber must be printable ASCII, got {_show(subscriber)}"
        )
    event_part, check = body[:11], body[11:]
    _check_field("event part (18QXYZGGCCC)", event_part, 11)
    if not _HEX4.fullmatch(check):
        raise FramingError(
            "Lupusec/Egardia frame must end in a 4-digit upper-case hex Fletcher-16 "
            f"over '<subscriber> 18QXYZGGCCC', got {_show(check)}; a single check digit "
            "cannot be verified because the subscriber is not a Contact ID account"
        )
    expected = fletcher16(f"{subscriber} {event_part}".encode("ascii"))
    if int(check, 16) != expected:
        raise IntegrityError(
            f"Lupusec/Egardia Fletcher-16 mismatch: expected {expected:04X}, got {check}"
        )
    _check_message_type(event_part[:2])
    return to_event(
        event_part[3:6],
        event_part[2],
        event_part[6:8],
        event_part[8:11],
        account=subscriber.strip(),
        protocol=Protocol.CONTACT_ID,
        raw=raw,
    )


def _decode_ademco_serial(line: str, raw: bytes) -> AlarmEvent:
    """Decode the Ademco serial module's ``AL[00]ACCT18QXYZGGCCC##``."""
    if not line.endswith("##"):
        raise FramingError(f"Ademco serial line must end with '##': {_show(line)}")
    inner = line[2:-2]
    # The module's documentation shows "AL00"; units in the field send bare "AL".
    if len(inner) == 17 and inner.startswith("00"):
        inner = inner[2:]
    if len(inner) != 15:
        raise FramingError(
            "Ademco serial line is 'AL' or 'AL00', 15 digits (ACCT MT Q XYZ GG CCC) "
            f"and '##', got {_show(line)}"
        )
    _check_field("account", inner[0:4], 4)
    _check_field("event part (18QXYZGGCCC)", inner[4:], 11)
    _check_message_type(inner[4:6])
    return to_event(
        inner[7:10],
        inner[6],
        inner[10:12],
        inner[12:15],
        account=inner[0:4],
        protocol=Protocol.CONTACT_ID,
        raw=raw,
    )


_SURGARD_QUALIFIERS: Final[Mapping[str, str]] = MappingProxyType({"E": "1", "R": "3"})


def _decode_surgard(line: str, raw: bytes) -> AlarmEvent:
    """Decode Sur-Gard receiver output ``<receiver>-18<ACCT><E|R>XYZGGCCC``.

    The Olarm guide calls the two digits after '-' a line number; they sit where
    Contact ID puts its message type and are always 18 there, so they are checked
    as one.
    """
    receiver, _, rest = line.partition("-")
    if not _RECEIVER_ID.fullmatch(receiver):
        raise FramingError(f"Sur-Gard receiver id must be 1-8 hex digits, got {_show(receiver)}")
    if len(rest) != 15:
        raise FramingError(
            "Sur-Gard line is '<receiver>-' then 18, ACCT, E/R, XYZ, GG, CCC "
            f"(15 characters), got {len(rest)}: {_show(line)}"
        )
    message_type, account, letter = rest[0:2], rest[2:6], rest[6]
    event, partition, zone = rest[7:10], rest[10:12], rest[12:15]
    _check_field("message type", message_type, 2)
    _check_field("account", account, 4)
    _check_message_type(message_type)
    digit = _SURGARD_QUALIFIERS.get(letter)
    if digit is None:
        raise FramingError(f"Sur-Gard qualifier {letter!r} is not E (new) or R (restore)")
    return to_event(
        event, digit, partition, zone, account=account, protocol=Protocol.CONTACT_ID, raw=raw
    )
