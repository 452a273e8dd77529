"""SIA DC-03 ("SIA format"): event-code table, new-event grammar and raw blocks.

Theory of operation
-------------------
SIA DC-03 reports an event as a *new event* ("N") payload: optional modifiers
(``ri``/``pi`` partition, ``id`` user, ``ti`` hh:mm, ``va`` value), then a
two-letter event code and the digits of its address field, whose meaning
(zone, user, area, door, device or nothing) depends on the code
(PROTOCOLS.md §3.2-3.3). Two carriers deliver it and this module serves
both, bytes or text in, typed values out:

* DC-09 "SIA-DCS" messages carry DC-03 sections inside ``[...]``, separated
  by ``|`` and keyed by their first character as DC-03 function codes are:
  ``#acct|Nri1/BA01`` (§1.6-1.7). ``parse_data_block`` reads that text.
  Real senders bend it, and each bend below is a capture in §1.7/§1.15: the
  account without ``#`` (PROSEC) or missing, no ``/`` between a modifier and
  the code (``Nri1CL0``), an extra ``0|`` section (AlphaVision), a vendor
  trailer after the address (``OP001NM``, ``CL003*''NM`` from OH/XSIA) and
  ASCII text as ``/A...`` or ``|A...``. Trailers are kept as text, never
  refused: losing an alarm over decoration would be the worse failure.
* Honeywell Galaxy panels send raw DC-03 blocks over TCP (§3.1):
  ``<length><function><payload><checksum>``, where the low six bits of the
  length byte give the payload length, 0x40 is a flag bit that every block
  sets, and the checksum is 0xFF XOR every preceding byte.
  ``BlockDecoder`` frames them from a byte stream; ``Dc03Session`` runs
  one connection (``#`` account, ``N`` events, optional ``A`` text, ``0``
  end) and says what to answer to each block.
* ``to_event`` turns one report into the protocol-neutral ``AlarmEvent``
  using the code table: the address goes to zone, user or partition by the
  code's address kind; class and qualifier come from the table; an unknown
  code still makes an event (class None), because unknown is not invalid.

The code table covers the 325 codes of SIA DC-03 as pysiaalarm lists them
(S-PYS ``data/sia_codes.py``, which includes Ajax's ZY/ZZ/NP/YG), with
our own English wording and the Chinese terms used by the security trade.
Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Final, NamedTuple

from protocols.contact_id import cid_for_sia
from protocols.errors import FramingError, IntegrityError, ProtocolError
from protocols.events import Address, AlarmEvent, EventClass, Protocol, Qualifier, build_event
from protocols.sia_codes import SIA_CODES

# ---------------------------------------------------------------------------
# New-event reports and SIA-DCS data blocks
# ---------------------------------------------------------------------------

_ACCOUNT = re.compile(r"[0-9A-Za-z]{1,16}")
# DC-09 accounts are 3-16 hex digits (§1.6); only that shape is taken for an
# account written without '#', so "0|" stays an end marker and "Ab|" an error.
_BARE_ACCOUNT = re.compile(r"[0-9A-Fa-f]{3,16}")
_NUMBER = re.compile(r"[0-9]+")
_TIME_VALUE = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")
_MODIFIER_NAME = re.compile(r"[a-z]{2}")
_EVENT = re.compile(r"([A-Z]{2})([0-9]*)")
_MODIFIERS: Final = frozenset({"ri", "pi", "id", "ti", "va"})
# Read for every event, so bound once: on Python 3.11 reading a member off an
# Enum class is a slow call (EnumType defines __getattr__).
_USER, _AREA, _NO_ADDRESS = Address.USER, Address.AREA, Address.NONE


# The usual block, one event with at most a partition, "#acct|Nri1/BA012" or
# "Nri1BA012", read in one match; everything else takes the general parser.
_USUAL_BLOCK = re.compile(r"(?:#([0-9A-Za-z]{1,16})\|)?N(?:ri([0-9]+)/?)?([A-Z]{2})([0-9]*)")


class SiaReport(NamedTuple):
    """One DC-03 new event: the code, its address digits and the modifiers in force.

    The parsers make these and guarantee the grammar: a code of two upper-case
    letters, ASCII digits in address, partition, user and value; the type
    itself checks nothing.
    """

    code: str
    address: str | None = None  # digits as sent (leading zeros kept); meaning depends on code
    partition: str | None = None  # ``ri`` / ``pi`` modifier
    user: str | None = None  # ``id`` modifier
    time_of_day: time | None = None  # ``ti`` modifier, the panel's local clock
    value: str | None = None  # ``va`` modifier
    text: str | None = None  # ^text^, ASCII section and vendor trailers


class SiaBlock(NamedTuple):
    """The content of a SIA-DCS data block: its own account (if any) and its events.

    ``parse_data_block`` guarantees an account of 1-16 letters/digits and at
    least one report.
    """

    account: str | None
    reports: tuple[SiaReport, ...]


def _join(text: str | None, more: str) -> str | None:
    if not more:
        return text
    return more if text is None else f"{text} {more}"


def _is_clean_event(body: str, pos: int) -> bool:
    # "/A..." after an event is ambiguous: ASCII text (/APB, /AZone 5) or a
    # code of the A family (/AT). It is an event only when it reads as a
    # known code with bare address digits, which the texts seen never do.
    match = _EVENT.match(body, pos)
    if match is None or match.group(1) not in SIA_CODES:
        return False
    return match.end() == len(body) or body[match.end()] in "/^"


def _parse_time(match: re.Match[str], where: str) -> time:
    hour, minute, second = (int(part) if part else 0 for part in match.groups())
    if hour > 23 or minute > 59 or second > 59:
        raise FramingError(f"time {match.group()!r} out of range {where}")
    return time(hour, minute, second)


def _at(body: str, offset: int, pos: int) -> str:
    # Error context: where in the data block, and the text found there.
    return f"at offset {offset + pos} ({body[pos : pos + 12]!r})"


def _parse_new_event(body: str, offset: int) -> list[SiaReport]:
    """Parse the payload of one N section (``body`` starts at ``offset`` of the input)."""
    reports: list[SiaReport] = []
    partition: str | None = None
    user: str | None = None
    time_of_day: time | None = None
    value: str | None = None
    extra: str | None = None  # unknown modifiers, kept as text
    pos = 0
    while True:
        if pos == len(body):
            raise FramingError(
                f"new-event section ends at offset {offset + pos} without an event code"
            )
        head = body[pos : pos + 2]
        if _MODIFIER_NAME.fullmatch(head):
            if head not in _MODIFIERS:
                # A modifier we do not know (a newer DC-03 or a vendor's) must
                # not cost the alarm: keep it, verbatim, in the event's text.
                end = body.find("/", pos)
                end = len(body) if end < 0 else end
                extra = _join(extra, body[pos:end])
                pos = min(end + 1, len(body))
                continue
            pattern = _TIME_VALUE if head == "ti" else _NUMBER
            match = pattern.match(body, pos + 2)
            if match is None:
                raise FramingError(
                    f"modifier {head!r} without a valid value {_at(body, offset, pos)}"
                )
            raw = match.group()
            if head == "ti":
                time_of_day = _parse_time(match, _at(body, offset, pos))
            elif head == "id":
                user = raw
            elif head == "va":
                value = raw
            else:
                partition = raw
            pos = match.end()
            # DC-03 separates with '/', but "Nri1CL0" (§1.7) glues the code on.
            if body.startswith("/", pos):
                pos += 1
            continue
        if reports and head[:1] == "A" and not _is_clean_event(body, pos):
            # ASCII text runs to the end of the section: free text may hold '/'.
            last = reports[-1]
            reports[-1] = last._replace(text=_join(last.text, body[pos + 1 :]))
            return reports
        match = _EVENT.match(body, pos)
        if match is None:
            raise FramingError(
                f"expected a modifier or a two-letter event code {_at(body, offset, pos)}"
            )
        code, address = match.group(1), match.group(2) or None
        pos = match.end()
        text: str | None = None
        if body.startswith("^", pos):
            close = body.find("^", pos + 1)
            if close < 0:
                raise FramingError(f"unterminated ^text^ {_at(body, offset, pos)}")
            text = _join(text, body[pos + 1 : close])
            pos = close + 1
        # Whatever follows up to the next '/' is a vendor trailer ("NM",
        # "*''NM" from OH/XSIA conversions): kept as text, never refused.
        end = body.find("/", pos)
        end = len(body) if end < 0 else end
        text = _join(text, body[pos:end])
        if extra is not None:
            text = _join(extra, text or "")
        reports.append(SiaReport(code, address, partition, user, time_of_day, value, text))
        if end == len(body):
            return reports
        pos = end + 1  # modifiers stay in force for the next event, as in DC-03


def _split_sections(data: str) -> list[tuple[int, str]]:
    # '|' separates sections, except inside ^text^ of a new-event section,
    # where a name may legitimately contain it.
    if "^" not in data:  # the common case, and the hot path: no text to protect
        sections = []
        start = 0
        for section in data.split("|"):
            sections.append((start, section))
            start += len(section) + 1
        return sections
    sections = []
    start = 0
    quoted = False
    for index, char in enumerate(data):
        if char == "^" and data.startswith("N", start):
            quoted = not quoted
        elif char == "|" and not quoted:
            sections.append((start, data[start:index]))
            start = index + 1
    sections.append((start, data[start:]))
    return sections


def parse_data_block(data: str) -> SiaBlock:
    """Parse the text inside a SIA-DCS ``[...]`` (or a bare DC-03 N payload with its 'N')."""
    usual = _USUAL_BLOCK.fullmatch(data)
    if usual is not None:
        account, partition, code, address = usual.groups()
        return SiaBlock(account, (SiaReport(code, address or None, partition),))
    return _parse_any_block(data)


def _parse_any_block(data: str) -> SiaBlock:
    """Parse a data block of any shape, section by section."""
    sections = _split_sections(data)
    account: str | None = None
    first = sections[0][1]
    if first.startswith("#"):
        account = first[1:]
        sections = sections[1:]
    elif len(sections) > 1 and (first == "" or _BARE_ACCOUNT.fullmatch(first)):
        # "[|Nri1/CL501]" has an empty account; "[36214|NRP]" one without '#'.
        account = first or None
        sections = sections[1:]
    reports: list[SiaReport] = []
    for offset, section in sections:
        kind = section[:1]
        if not section:
            raise FramingError(f"empty section at offset {offset}")
        if kind == "N":
            reports.extend(_parse_new_event(section[1:], offset + 1))
        elif kind == "A":
            if not reports:
                raise FramingError(f"ASCII section at offset {offset} precedes every event")
            last = reports[-1]
            reports[-1] = last._replace(text=_join(last.text, section[1:]))
        elif section != "0":  # AlphaVision's stray end-of-data marker, "#0001|0|NRP"
            raise FramingError(
                f"section {section[:16]!r} at offset {offset} is not an account (#), "
                "new event (N), ASCII (A) or end (0) section"
            )
    if account is not None and not _ACCOUNT.fullmatch(account):
        raise FramingError(f"data-block account {account!r} is not 1-16 letters/digits")
    if not reports:
        raise FramingError("data block carries no new-event (N) report")
    return SiaBlock(account, tuple(reports))


def to_event(
    report: SiaReport,
    *,
    account: str,
    protocol: Protocol,
    raw: bytes,
    device_time: datetime | None = None,
    xdata: tuple[tuple[str, str], ...] = (),
) -> AlarmEvent:
    """Make the normalized event of one report, classified by the code table."""
    entry = SIA_CODES.get(report.code)
    # Most codes address a zone, so an unknown code files its number there
    # rather than losing it; its class stays None ("unclassified").
    kind = Address.ZONE if entry is None else entry.address
    zone: str | None = None
    user, partition = report.user, report.partition
    if report.address is not None:
        # The code's own address names the user or area more precisely than
        # an ``id``/``ri`` modifier in force, so it wins.
        if kind is _USER:
            user = report.address
        elif kind is _AREA:
            partition = report.address
        elif kind is not _NO_ADDRESS or report.address.strip("0"):
            # Zone, door, device: all shown as "zone". A code that uses no
            # address still keeps a non-zero number the panel sent; the
            # zeros of "RP0000" or "YG0" are filler and dropped.
            zone = report.address
    # The panel's local time of day and a value have no field of their own:
    # kept beside the x-data rather than lost.
    if report.time_of_day is not None:
        xdata += (("ti", report.time_of_day.isoformat()),)
    if report.value is not None:
        xdata += (("va", report.value),)
    if entry is None:
        qualifier, event_class = Qualifier.NEW, None
    else:
        qualifier, event_class = entry.qualifier, entry.event_class
    code, text = report.code, report.text
    cid_event = cid_for_sia(code)
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
# Raw DC-03 blocks (Honeywell Galaxy over TCP)
# ---------------------------------------------------------------------------

_FLAG: Final = 0x40  # set in every block header; not part of the length
_LENGTH_MASK: Final = 0x3F
MAX_PAYLOAD: Final = _LENGTH_MASK
# Length byte + function byte + payload + checksum.
MAX_BLOCK: Final = 1 + 1 + MAX_PAYLOAD + 1
# Functions whose block boundaries we trust enough to consume a whole block
# when its checksum fails (and answer REJECT so the panel resends it).
_KNOWN_FUNCTIONS: Final = frozenset("#NA089")


def _checksum(data: bytes) -> int:
    result = 0xFF
    for byte in data:
        result ^= byte
    return result


def encode_block(function: str, payload: bytes) -> bytes:
    """Frame one DC-03 block: length|0x40, function, payload, 0xFF-XOR checksum."""
    if len(function) != 1 or ord(function) > 0xFF:
        raise FramingError(f"block function must be one byte, got {function!r}")
    if len(payload) > MAX_PAYLOAD:
        raise FramingError(f"block payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = bytes((_FLAG | len(payload), ord(function))) + payload
    return head + bytes((_checksum(head),))


@dataclass(frozen=True, slots=True)
class Block:
    """One checksum-valid DC-03 block; ``raw`` is the block as received."""

    function: str
    payload: bytes
    raw: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        frame = encode_block(self.function, self.payload)  # validates both fields
        if not self.raw:
            object.__setattr__(self, "raw", frame)

    @property
    def text(self) -> str:
        """The payload as text: Galaxy writes national letters in code page 437."""
        return self.payload.decode("cp437")


ACK_BLOCK: Final = encode_block("8", b"")
REJECT_BLOCK: Final = encode_block("9", b"")


class BlockDecoder:
    """Cut a byte stream into DC-03 blocks, whatever the read boundaries.

    A header byte without the 0x40 flag cannot start a block and is skipped
    as garbage. Otherwise the decoder waits for the whole candidate and lets
    the checksum decide: valid -> ``Block``; invalid with a known function ->
    ``IntegrityError`` for the whole block (the panel is to be told REJECT);
    invalid otherwise -> the first byte was garbage, skip it and resync.
    The buffer holds at most one incomplete block, fewer than ``MAX_BLOCK``
    (66) bytes, because every complete candidate is decided at once.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a block."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Block | ProtocolError]:
        """Return the blocks and errors completed by ``data``, in stream order."""
        self._buffer += data
        buffer = self._buffer
        out: list[Block | ProtocolError] = []
        skipped = bytearray()
        pos = 0
        while pos < len(buffer):
            header = buffer[pos]
            if not header & _FLAG:
                skipped.append(header)
                pos += 1
                continue
            size = (header & _LENGTH_MASK) + 3
            if len(buffer) - pos < size:
                break  # wait for the rest of this candidate
            candidate = bytes(buffer[pos : pos + size])
            function = chr(candidate[1])
            expected = _checksum(candidate[:-1])
            if expected == candidate[-1]:
                self._flush_skipped(skipped, out)
                out.append(Block(function, candidate[2:-1], candidate))
                pos += size
            elif function in _KNOWN_FUNCTIONS:
                self._flush_skipped(skipped, out)
                message = (
                    f"block {function!r} checksum 0x{candidate[-1]:02X}, expected 0x{expected:02X}"
                )
                out.append(IntegrityError(message, raw=candidate))
                pos += size
            else:
                skipped.append(header)
                pos += 1
        self._flush_skipped(skipped, out)
        del buffer[:pos]
        return out

    @staticmethod
    def _flush_skipped(skipped: bytearray, out: list[Block | ProtocolError]) -> None:
        if skipped:
            sample = bytes(skipped[:16]).hex(" ")
            reason = f"skipped {len(skipped)} byte(s) not framed as a block: {sample}"
            out.append(FramingError(reason, raw=bytes(skipped)))
            skipped.clear()

    def close(self) -> FramingError | None:
        """Report the incomplete block left at end of stream, if any, and forget it."""
        if not self._buffer:
            return None
        error = FramingError(
            f"stream ended inside a block after {len(self._buffer)} byte(s): "
            f"{bytes(self._buffer[:16]).hex(' ')}",
            raw=bytes(self._buffer),
        )
        self._buffer.clear()
        return error


# ---------------------------------------------------------------------------
# One DC-03 connection
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dc03Step:
    """What one block (or framing error) yields: bytes to send, events, error, input."""

    answer: bytes
    events: tuple[AlarmEvent, ...] = ()
    error: ProtocolError | None = None
    raw: bytes = b""  # the block or refused bytes this step is about


class Dc03Session:
    """The receiver side of one Galaxy DC-03 connection (PROTOCOLS.md §3.1).

    Every block is answered, as the panel waits for the answer before sending
    the next one; the caller sends ``answer`` only once ``events`` are
    durable. An ``N`` block's events are handed out with its own step, so no
    acknowledged event waits on a later block. An ``A`` block that follows
    adds text to an event already handed out, so it becomes an event of its
    own: the text, at the same place, class OTHER, qualifier STATUS.
    """

    def __init__(self) -> None:
        self._decoder = BlockDecoder()
        self._account: str | None = None
        self._last: AlarmEvent | None = None  # the latest N event, for A text
        self._ended = False

    @property
    def account(self) -> str | None:
        """The account of the last ``#`` block, if one was received."""
        return self._account

    @property
    def ended(self) -> bool:
        """True once the panel sent end of data: close after sending the answer."""
        return self._ended

    def feed(self, data: bytes) -> list[Dc03Step]:
        """Decode received bytes and handle every block they complete."""
        return [self.receive(item) for item in self._decoder.feed(data)]

    def receive(self, item: Block | ProtocolError) -> Dc03Step:
        """Handle one decoded block or decoder error; return what to send and emit."""
        if isinstance(item, ProtocolError):
            # A failed checksum is a block the panel awaits an answer to, so
            # REJECT makes it resend. Unframed bytes get no answer: answering
            # noise could be taken as the answer to a block still in flight,
            # and an unanswered panel repeats its block anyway (§3.1).
            answer = REJECT_BLOCK if isinstance(item, IntegrityError) else b""
            return Dc03Step(answer, (), item, item.raw)
        if item.function == "A":
            return self._ascii(item)
        self._last = None
        if item.function == "#":
            account = item.text
            if not _ACCOUNT.fullmatch(account):
                error = FramingError(f"account block {account!r} is not 1-16 letters/digits")
                return Dc03Step(REJECT_BLOCK, (), error, item.raw)
            self._account = account
        elif item.function == "N":
            if self._account is None:
                error = FramingError("new-event block before any account block")
                return Dc03Step(REJECT_BLOCK, (), error, item.raw)
            try:
                reports = _parse_new_event(item.text, 0)
            except FramingError as error:
                return Dc03Step(REJECT_BLOCK, (), error, item.raw)
            events = tuple(
                to_event(report, account=self._account, protocol=Protocol.SIA_DC03, raw=item.raw)
                for report in reports
            )
            self._last = events[-1]
            return Dc03Step(ACK_BLOCK, events, raw=item.raw)
        elif item.function == "0":
            self._ended = True
        elif item.function in "89":
            return Dc03Step(b"", raw=item.raw)  # an answer is not answered
        return Dc03Step(ACK_BLOCK, raw=item.raw)

    def close(self) -> Dc03Step:
        """Report a block cut off by the end of the connection, if any."""
        error = self._decoder.close()
        return Dc03Step(b"", (), error, b"" if error is None else error.raw)

    def _ascii(self, block: Block) -> Dc03Step:
        last = self._last
        if last is None:
            # Harmless: acknowledge so the panel goes on, but say so.
            error = FramingError("ASCII block without a new-event block before it")
            return Dc03Step(ACK_BLOCK, (), error, block.raw)
        note = replace(
            last,
            qualifier=Qualifier.STATUS,
            code=None,
            cid_event=None,
            event_class=EventClass.OTHER,
            text=block.text,
            xdata=(*last.xdata, ("for_code", last.code or "")),
            raw=block.raw,
        )
        return Dc03Step(ACK_BLOCK, (note,), raw=block.raw)
