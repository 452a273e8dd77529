"""What a DC-09 receiver answers a chunk of bytes, and the events it carries.

Theory of operation (DC-09-2013 §5.5.2-5.5.3; PROTOCOLS.md §1.10-1.12):

1. A chunk that is not a genuine frame (no LF/CR, bad CRC or length) is
   answered NAK with our time; nothing in it can be trusted, not even the
   account, so NAK is the only honest answer.
2. A genuine frame from an account we do not serve, of a kind we cannot
   process, or encrypted for an account without a key, is answered DUH.
3. Encrypted content that does not decrypt to a well-formed message, or a
   malformed data block, is answered NAK.
4. A timestamp outside the window is answered NAK, so the panel corrects its
   clock and resends, or accepted and flagged, per account and per
   encryption: strict windows lose real alarms from panels that cannot
   resynchronise, while for encrypted messages the window is the only
   defence against replay.
5. Everything else is ACKed, unknown event codes included: answering those
   with an error makes panels retransmit for ever and report a lost path,
   the most common complaint about receivers. The event is kept and shown
   unclassified.

The caller sends ``Reception.reply`` only once the events are durable.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from protocols import contact_id, sia
from protocols.dc09 import (
    Content,
    Frame,
    build_ack,
    build_duh,
    build_nak,
    parse_content,
    parse_frame,
)
from protocols.dc09_crypto import Dc09Key, decrypt
from protocols.errors import (
    DecryptionError,
    FramingError,
    ProtocolError,
    Response,
    TimestampError,
    UnknownAccountError,
    UnsupportedError,
)
from protocols.events import AlarmEvent, EventClass, Protocol, build_event

# Tokens a receiver sends, not receives: decoded for replay, never answered.
ANSWER_TOKENS = frozenset({"ACK", "NAK", "DUH", "RSP"})
_CID_TOKENS = frozenset({"ADM-CID", "HENG-BO"})  # Hengbo sends Contact ID under its own name
_READABLE_TOKENS = _CID_TOKENS | {"SIA-DCS", "NULL"}
# Read for every frame, so bound once: on Python 3.11 reading a member off an
# Enum class is a slow call (EnumType defines __getattr__).
_ACK, _DC09 = Response.ACK, Protocol.DC09

# The pad of an encrypted ACK need not be unpredictable: DC-09 asks for
# pseudo-random bytes, it travels encrypted, and the IV is zero anyway. So it
# comes from a PRNG seeded from the OS (again in a forked child), not from a
# system call per message.
_pad_random = random.Random(os.urandom(32))  # noqa: S311 - see above
os.register_at_fork(after_in_child=lambda: _pad_random.seed(os.urandom(32)))


# What a data block parses to, by message kind (NULL: nothing).
_Block = sia.SiaBlock | contact_id.AdmCidBlock | None


class DriftAction(StrEnum):
    """What to do with a message whose timestamp is outside the window."""

    NAK = "nak"  # refuse with our time: the panel corrects its clock and resends
    FLAG = "flag"  # accept and flag the drift: for panels that cannot resynchronise


@dataclass(frozen=True, slots=True)
class TimestampPolicy:
    """The acceptance window (de-facto +20 s / -40 s) and what happens outside it."""

    ahead: float = 20.0
    behind: float = 40.0
    plain: DriftAction = DriftAction.FLAG
    encrypted: DriftAction = DriftAction.NAK


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """What the receiver knows of one account."""

    key: Dc09Key | None = None
    timestamps: TimestampPolicy | None = None  # None: the receiver's default
    utc_offset: timedelta = timedelta(0)  # for panels that send local time, not UTC


AccountLookup = Callable[[str], AccountSettings | None]


class Message(NamedTuple):
    """A genuine, readable message and the events it reports."""

    account: str
    content: Content
    events: tuple[AlarmEvent, ...]
    data_account: str | None = None  # the account inside the data block, if any
    drift: float | None = None  # device clock minus ours, seconds
    drift_flagged: bool = False  # outside the window, accepted by policy


class Reception(NamedTuple):
    """The outcome of one chunk: what to answer and what it meant."""

    raw: bytes
    reply: bytes = b""  # the bytes to send back; empty when nothing is answered
    response: Response | None = None
    frame: Frame | None = None
    message: Message | None = None
    error: ProtocolError | None = None


def receive(
    raw: bytes,
    *,
    now: datetime,
    accounts: AccountLookup,
    policy: TimestampPolicy = TimestampPolicy(),  # noqa: B008 - frozen, shared safely
    random_bytes: Callable[[int], bytes] = _pad_random.randbytes,
) -> Reception:
    """Decide the answer to one chunk cut by ``FrameSplitter``."""
    try:
        frame = parse_frame(raw)
    except ProtocolError as error:
        return Reception(raw, build_nak(now), Response.NAK, error=error)
    kind = frame.header.message_type
    if kind in ANSWER_TOKENS:
        return Reception(raw, frame=frame)
    try:
        message, key = _read(frame, kind, now=now, accounts=accounts, policy=policy)
    except ProtocolError as error:
        if error.response is Response.DUH:
            account = frame.header.account or "0"
            return Reception(raw, build_duh(frame, account), Response.DUH, frame, error=error)
        return Reception(raw, build_nak(now), Response.NAK, frame, error=error)
    reply = build_ack(frame, message.account, now=now, key=key, random_bytes=random_bytes)
    return Reception(raw, reply, _ACK, frame, message)


def _read(
    frame: Frame, kind: str, *, now: datetime, accounts: AccountLookup, policy: TimestampPolicy
) -> tuple[Message, Dc09Key | None]:
    header = frame.header
    if kind not in _READABLE_TOKENS:
        raise UnsupportedError(f"unsupported ID token {header.token!r}")
    settings = None
    if header.account is not None:
        settings = _settings(accounts, header.account)
    key = None
    encrypted = header.encrypted
    if encrypted:
        if settings is None:
            raise FramingError("encrypted message has no account in its header")
        if settings.key is None:
            raise UnsupportedError(f"encrypted, but account {header.account} has no key set")
        key = settings.key
        content, block = _decrypt_content(frame.content, key, kind)
        if content.timestamp is None:
            raise DecryptionError("encrypted message without timestamp (mandatory, DC-09 §5.4.4)")
    else:
        content = parse_content(frame.content)
        block = _parse_data(kind, content.data)
    data_account = None if block is None else block.account
    account = header.account or data_account
    if account is None:
        raise FramingError("no account in the header nor in the data block")
    if settings is None:
        settings = _settings(accounts, account)
    device_time, drift, flagged = _check_time(content, settings, policy, now, encrypted)
    events = _events(block, content, account=account, raw=frame.raw, device_time=device_time)
    return Message(account, content, events, data_account, drift, flagged), key


def _settings(accounts: AccountLookup, account: str) -> AccountSettings:
    settings = accounts(account)
    if settings is None:
        raise UnknownAccountError(f"account {account} is not served by this receiver")
    return settings


def _decrypt_content(ciphertext: bytes, key: Dc09Key, kind: str) -> tuple[Content, _Block]:
    plaintext = decrypt(ciphertext, key)
    bar = plaintext.find(b"|")
    if bar >= 0:
        try:
            content = parse_content(plaintext[bar + 1 :])
        except FramingError as error:
            raise DecryptionError(
                f"decrypted text is no message ({error.reason}): wrong key?"
            ) from None
        return content, _parse_data(kind, content.data)
    # Some panels end the pad without its "|" (Hikvision pads NULLs with "p").
    # The message then starts where the rest reads as a whole message of the
    # frame's kind; a NULL's starts at its "]". Pad bytes never contain "]".
    first = plaintext.find(b"]") if kind == "NULL" else 0
    for start in range(max(first, 0), len(plaintext)):
        try:
            content = parse_content(plaintext[start:])
            return content, _parse_data(kind, content.data)
        except ProtocolError:
            continue
    raise DecryptionError("decrypted text has no pad terminator '|' and no message: wrong key?")


def _parse_data(kind: str, data: str) -> _Block:
    if kind == "SIA-DCS":
        return sia.parse_data_block(data)
    if kind in _CID_TOKENS:
        return contact_id.parse_adm_cid(data)
    return None  # NULL: the data block (Hikvision sends a dummy one) means nothing


def _check_time(
    content: Content,
    settings: AccountSettings,
    default: TimestampPolicy,
    now: datetime,
    encrypted: bool,
) -> tuple[datetime | None, float | None, bool]:
    device_time = content.timestamp
    if device_time is None:
        return None, None, False
    if settings.utc_offset:  # most panels send UTC: no need to shift
        device_time -= settings.utc_offset
    drift = (device_time - now).total_seconds()
    policy = settings.timestamps or default
    if -policy.behind <= drift <= policy.ahead:
        return device_time, drift, False
    action = policy.encrypted if encrypted else policy.plain
    if action is DriftAction.NAK:
        raise TimestampError(
            f"timestamp {drift:+.0f} s from receiver time, outside the window "
            f"+{policy.ahead:g} s/-{policy.behind:g} s",
            drift_seconds=drift,
        )
    return device_time, drift, True


def _events(
    block: _Block,
    content: Content,
    *,
    account: str,
    raw: bytes,
    device_time: datetime | None,
) -> tuple[AlarmEvent, ...]:
    if block is None:  # a link test
        return (
            build_event(
                account=account,
                protocol=_DC09,
                event_class=EventClass.TEST,
                device_time=device_time,
                xdata=content.xdata,
                raw=raw,
            ),
        )
    if isinstance(block, sia.SiaBlock):
        return tuple(
            [  # a list comprehension: cheaper than a generator for the usual one report
                sia.to_event(
                    report,
                    account=account,
                    protocol=_DC09,
                    raw=raw,
                    device_time=device_time,
                    xdata=content.xdata,
                )
                for report in block.reports
            ]
        )
    return (
        contact_id.block_event(
            block,
            account=account,
            protocol=_DC09,
            raw=raw,
            device_time=device_time,
            xdata=content.xdata,
        ),
    )
