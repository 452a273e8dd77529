"""SIA DC-09 framing: frames out of a byte stream, their header, and answers.

Theory of operation (ANSI/SIA DC-09-2013 §5.5; PROTOCOLS.md §1):

    <LF> <CRC:4> <0LLL:4> "<ID>" <seq:4> [R<rcvr>] L<pref> #<acct> [<data>] [<x>...] [_<time>] <CR>

The CRC (CRC-16/ARC) and the length cover the span from the opening ``"`` to
the character before CR. ``FrameSplitter`` cuts a stream into candidate frames
without trusting read boundaries; ``parse_frame`` checks CRC and length and
reads the header; ``parse_content`` reads the data block, x-data and
timestamp of an unencrypted (or decrypted) frame. What a receiver answers is
decided in ``protocols.dc09_receiver``; the byte formats of the answers are
built here (§1.11).

Real panels deviate, and a genuine frame is accepted whatever its dialect:
the CRC sent as two binary bytes (Trikdis, Lupusec, OPAX), the CRC computed
over the trailing CR as well (Eldes), a decimal length (Eldes), ``L`` without
digits or missing, non-hex accounts, NUL bytes after the CR, several frames in
one read, one frame over many reads, lower-case hex. Answers mirror the CRC
dialect of the frame they answer, since the panel checks them with its own
routine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

from protocols.crc import crc16_arc
from protocols.dc09_crypto import Dc09Key, encrypt
from protocols.errors import FramingError, IntegrityError

LF = 0x0A
CR = 0x0D
MAX_BODY = 0x0FFF  # the length field is "0LLL": three hex digits of length
# LF + CRC + length + body + CR. A receive buffer never holds more than one
# incomplete frame, so this bounds it; anything longer is not a frame.
MAX_FRAME = 1 + 4 + 4 + MAX_BODY + 1
# Bytes seen between frames that carry nothing: NULs after the CR (Chinese
# GSM panels), a stray CR, or the newline of a log-style sender.
_FILLER = frozenset(b"\x00\r ")

# Sequence, then receiver, line prefix and account, each optional in the wild;
# NAKs write the account as "A0". The line group is lazy so that in "L0A0" the
# "A0" is read as the account, not as more line digits (the one ambiguity of
# the format: a prefix ending in "A<digits>" before "[" reads the same way).
_HEADER = re.compile(
    r'"([!#-~]{1,32})"([0-9]{4})'
    r"(?:R([0-9A-Fa-f]{1,6}))?(?:L([0-9A-Fa-f]{0,6}?))?"
    r"(?:#([0-9A-Za-z]{1,16})|A([0-9A-Za-z]{1,16}))?\["
)
_HEX4 = re.compile(rb"[0-9A-Fa-f]{4}")
# HH:MM:SS,MM-DD-YYYY, read as text: the clock, month, day and year.
_TIMESTAMP_PATTERN = r"([0-9]{2}:[0-9]{2}:[0-9]{2}),([0-9]{2})-([0-9]{2})-([0-9]{4})"
_TIMESTAMP = re.compile(_TIMESTAMP_PATTERN)
# Data block and timestamp without x-data: the content of nearly every frame.
_DATA_AND_TIMESTAMP = re.compile(r"([^\]]*)\]_" + _TIMESTAMP_PATTERN)


class CrcFormat(StrEnum):
    """How a frame's CRC was written."""

    HEX = "hex"  # four hex characters, the standard
    BINARY = "binary"  # two raw bytes, most significant first
    HEX_OVER_CR = "hex+cr"  # hex, but computed over the body and the CR (Eldes)


# Read for every frame, so bound once: on Python 3.11 reading a member off an
# Enum class is a slow call (EnumType defines __getattr__).
_CRC_HEX, _CRC_BINARY, _CRC_HEX_OVER_CR = CrcFormat.HEX, CrcFormat.BINARY, CrcFormat.HEX_OVER_CR


class Header(NamedTuple):
    """The fields between the ID token and the data block."""

    token: str  # as sent, "*" included for encrypted messages
    sequence: str
    receiver: str | None = None  # hex digits after "R"
    line: str | None = None  # digits after "L"; "" for a bare "L"
    account: str | None = None

    @property
    def encrypted(self) -> bool:
        return self.token.startswith("*")

    @property
    def message_type(self) -> str:
        """The token without the encryption mark, e.g. ``SIA-DCS``."""
        return self.token.removeprefix("*")


class Frame(NamedTuple):
    """A frame whose CRC and length check out; its content still raw."""

    raw: bytes
    header: Header
    content: bytes  # what follows the "[" of the data block
    crc_format: CrcFormat = CrcFormat.HEX
    decimal_length: bool = False  # the length field was written in decimal


class Content(NamedTuple):
    """Data block, extended data and timestamp of a readable frame."""

    data: str
    xdata: tuple[tuple[str, str], ...] = ()
    timestamp: datetime | None = None


class FrameSplitter:
    """Cut a byte stream into chunks that are each one frame or one piece of garbage.

    Every chunk is handed on, garbage too, so that a receiver can answer and
    quarantine it. The buffer holds at most one incomplete frame (MAX_FRAME).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the chunks they complete."""
        n = len(data)
        # Most reads are one whole frame: LF, at least eight bytes with neither
        # CR nor LF, CR. The loop below would cut it as the one chunk it is.
        if not self._buffer and n >= 10 and data.rfind(b"\n") == 0 and data.find(b"\r") == n - 1:
            return [data]
        if self._buffer:
            self._buffer += data
            data = bytes(self._buffer)
            self._buffer.clear()
            n = len(data)
        chunks: list[bytes] = []
        pos = 0
        while True:
            while pos < n and data[pos] in _FILLER:
                pos += 1
            if pos >= n:
                break
            end = self._chunk_end(data, pos, n)
            if end is None:
                if n - pos <= MAX_FRAME:
                    break  # wait for the rest
                end = pos + MAX_FRAME  # too long for a frame: cut it off
            chunks.append(data[pos:end])
            pos = end
        if pos < n:
            self._buffer += data[pos:]
        return chunks

    def flush(self) -> list[bytes]:
        """End of a datagram or connection: whatever remains is one last chunk."""
        rest = bytes(self._buffer).strip(b"\x00\r ")
        self._buffer.clear()
        return [rest] if rest else []

    @staticmethod
    def _chunk_end(buf: bytes, pos: int, n: int) -> int | None:
        """Return the end of the chunk starting at ``pos``, or None if incomplete."""
        if buf[pos] != LF:
            # Garbage runs to the next CR (kept) or the next LF (not kept).
            cr = buf.find(b"\r", pos)
            lf = buf.find(b"\n", pos)
            if lf >= 0 and (cr < 0 or lf < cr):
                return lf
            return cr + 1 if cr >= 0 else None
        if n - pos < 10:
            return None  # not enough to tell the CRC format yet
        # Binary CRC bytes may themselves be CR or LF, so search from the ID
        # token on; the rest of a frame is text and contains neither.
        body = pos + (7 if buf[pos + 7] == 0x22 and buf[pos + 9] != 0x22 else 9)
        cr = buf.find(b"\r", body)
        lf = buf.find(b"\n", body)
        if lf >= 0 and (cr < 0 or lf < cr):
            return lf  # a frame cut short: the next one begins here
        return cr + 1 if cr >= 0 else None


def parse_frame(raw: bytes) -> Frame:
    """Check CRC and length of one LF...CR frame and read its header."""
    if len(raw) < 11 or raw[0] != LF:
        raise FramingError("not a DC-09 frame: it must start with LF (0x0A)")
    if raw[-1] != CR:
        raise FramingError("DC-09 frame is not terminated by CR (0x0D)")
    if raw[9] == 0x22:
        body = raw[9:-1]
        computed = crc16_arc(body)
        # A standard frame, CRC and length in upper-case hex, passes one
        # comparison; the other dialects take the general checks.
        if raw.startswith(b"%04X%04X" % (computed, len(body)), 1):
            crc_format, decimal_length = _CRC_HEX, False
        else:
            crc_format = _check_crc(raw[1:5], _CRC_HEX, computed)
            decimal_length = _check_length(raw[5:9], len(body))
    elif raw[7] == 0x22:
        body = raw[7:-1]
        computed = crc16_arc(body)
        crc_format = _check_crc(raw[1:3], _CRC_BINARY, computed)
        decimal_length = _check_length(raw[3:7], len(body))
    else:
        raise FramingError("no ID token (a '\"') after the CRC and length fields")
    # Latin-1 maps each byte to one character, so the header reads as text
    # in one decode and the content keeps its byte offsets.
    match = _HEADER.match(body.decode("latin-1"))
    if match is None:
        raise FramingError(f"malformed header after the ID token: {body[:40]!r}")
    token, sequence, receiver, line, account, nak_account = match.groups()
    header = Header(token, sequence, receiver, line, account or nak_account)
    return Frame(raw, header, body[match.end() :], crc_format, decimal_length)


def _check_crc(field: bytes, crc_format: CrcFormat, computed: int) -> CrcFormat:
    """Verify the CRC field against the body's CRC; return the dialect it was written in."""
    if crc_format is CrcFormat.BINARY:
        sent_crc = field[0] << 8 | field[1]
    elif _HEX4.fullmatch(field):
        sent_crc = int(field, 16)
    else:
        raise FramingError(f"CRC field {field!r} is not four hex digits")
    if computed == sent_crc:
        return crc_format
    if crc_format is CrcFormat.HEX and crc16_arc(b"\r", computed) == sent_crc:
        return CrcFormat.HEX_OVER_CR
    raise IntegrityError(f"CRC mismatch: frame says {sent_crc:04X}, body gives {computed:04X}")


def _check_length(field: bytes, actual: int) -> bool:
    """Verify the length field; return True when it was written in decimal (Eldes)."""
    if _HEX4.fullmatch(field) and int(field, 16) == actual:
        return False
    if field.isdigit() and int(field) == actual:
        return True
    raise IntegrityError(f"length field {field!r} does not match the {actual}-byte body")


def parse_content(content: bytes) -> Content:
    """Read ``data]`` followed by any ``[x-data]`` groups and an optional ``_timestamp``."""
    # The common shape is read in one match. Decoding it whole decodes its data
    # block as decoding that alone would: the rest is ASCII, the same in every
    # encoding decode_text falls back to, and contains the only "]".
    usual = _DATA_AND_TIMESTAMP.fullmatch(decode_text(content))
    if usual is not None:
        data, clock, month, day, year = usual.groups()
        return Content(data, (), _utc(clock, month, day, year))
    end = content.find(b"]")
    if end < 0:
        raise FramingError("data block has no closing ']'")
    data = decode_text(content[:end])
    pos = end + 1
    xdata: list[tuple[str, str]] = []
    while content[pos : pos + 1] == b"[":
        close = content.find(b"]", pos)
        if close < 0:
            raise FramingError("extended data has no closing ']'")
        item = content[pos + 1 : close]
        if not item[:1].isalpha():
            raise FramingError(f"extended data must start with a letter, got {item[:10]!r}")
        xdata.append((chr(item[0]), decode_text(item[1:])))
        pos = close + 1
    timestamp = None
    if pos < len(content):
        if content[pos] != 0x5F:  # "_"
            raise FramingError(f"unexpected {content[pos : pos + 16]!r} after the data block")
        timestamp = parse_timestamp(content[pos + 1 :])
    return Content(data, tuple(xdata), timestamp)


def decode_text(raw: bytes) -> str:
    """Decode text fields: ASCII mostly, UTF-8 (Hikvision) or Windows-1252 (the spec)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # latin-1 after cp1252 because cp1252 leaves five byte values undefined.
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            return raw.decode("latin-1")


def parse_timestamp(text: bytes) -> datetime:
    """Parse ``HH:MM:SS,MM-DD-YYYY`` (UTC, DC-09 §5.5.1.8) into an aware datetime."""
    match = _TIMESTAMP.fullmatch(text.decode("latin-1"))
    if match is None:
        raise FramingError(f"timestamp {text[:24]!r} is not _HH:MM:SS,MM-DD-YYYY")
    return _utc(*match.groups())


def _utc(clock: str, month: str, day: str, year: str) -> datetime:
    """The aware UTC datetime of a timestamp's fields."""
    try:
        # ISO 8601 text is the cheapest way in: one C parser, where six int()
        # calls and the constructor cost several times as much. It refuses
        # exactly the dates the constructor refuses (tests check that).
        return datetime.fromisoformat(f"{year}-{month}-{day}T{clock}+00:00")
    except ValueError:
        text = f"{clock},{month}-{day}-{year}"
        raise FramingError(f"timestamp {text} is not a real date and time") from None


def format_timestamp(moment: datetime) -> bytes:
    """Render ``_HH:MM:SS,MM-DD-YYYY`` in UTC."""
    t = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return b"_%02d:%02d:%02d,%02d-%02d-%04d" % (t.hour, t.minute, t.second, t.month, t.day, t.year)


def build_frame(body: bytes, crc_format: CrcFormat = CrcFormat.HEX) -> bytes:
    """Wrap a body in LF, CRC, length and CR, in the given CRC dialect."""
    crc = crc16_arc(body)
    if crc_format is _CRC_BINARY:
        return b"\n%b%04X%b\r" % (crc.to_bytes(2, "big"), len(body), body)
    if crc_format is _CRC_HEX_OVER_CR:
        crc = crc16_arc(b"\r", crc)
    return b"\n%04X%04X%b\r" % (crc, len(body), body)


def _echo(header: Header, account: str) -> bytes:
    """Sequence, receiver, prefix and account as the panel sent them (§1.11)."""
    receiver = "" if header.receiver is None else "R" + header.receiver
    # "L" is mandatory in answers; "L0" means no prefix, for panels that sent none.
    return f"{header.sequence}{receiver}L{header.line or '0'}#{account}".encode()


def build_ack(
    frame: Frame,
    account: str,
    *,
    now: datetime,
    key: Dc09Key | None,
    random_bytes: Callable[[int], bytes],
) -> bytes:
    """ACK a frame: plain ``"ACK"...[]``, or ``"*ACK"`` with encrypted pad and time."""
    header = frame.header
    if key is not None and header.encrypted:
        sealed = encrypt(b"]" + format_timestamp(now), key, random_bytes)
        body = b'"*ACK"' + _echo(header, account) + b"[" + sealed
    else:
        body = b'"ACK"' + _echo(header, account) + b"[]"
    return build_frame(body, frame.crc_format)


def build_duh(frame: Frame, account: str) -> bytes:
    """DUH: intact but not processed; never encrypted (§1.11)."""
    return build_frame(b'"DUH"' + _echo(frame.header, account) + b"[]", frame.crc_format)


def build_nak(now: datetime) -> bytes:
    """NAK with the receiver's time, which panels use to correct their clock."""
    return build_frame(b'"NAK"0000R0L0A0[]' + format_timestamp(now))
