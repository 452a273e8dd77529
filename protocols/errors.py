"""The one error family of ``protocols``; each error names the answer it implies.

Any exception other than a ``ProtocolError`` escaping ``protocols`` is a bug:
the fuzz tests feed arbitrary bytes to every decoder and enforce this.
"""

from __future__ import annotations

from enum import StrEnum


class Response(StrEnum):
    """What a receiver answers a sender (DC-09 names; HTTP maps them to status codes)."""

    ACK = "ACK"  # received and understood: the sender may forget the message
    NAK = "NAK"  # corrupted, unauthenticated or out of time: the sender should resend
    DUH = "DUH"  # intact but cannot be processed here (unknown account, unsupported)


class ProtocolError(Exception):
    """Input that a codec refuses; ``response`` is what the sender should be told.

    ``raw`` holds the refused bytes where the codec cut them out of a stream,
    so that they can be kept in quarantine.
    """

    response: Response = Response.NAK

    def __init__(self, reason: str, *, raw: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class FramingError(ProtocolError):
    """Not a well-formed frame or message of the protocol (answered NAK)."""


class IntegrityError(ProtocolError):
    """A CRC, length, checksum or signature does not match (answered NAK)."""


class DecryptionError(ProtocolError):
    """Ciphertext that does not decrypt to a valid message with the key (NAK)."""


class TimestampError(ProtocolError):
    """The message's timestamp is outside the receiver's window (NAK with time)."""

    def __init__(self, reason: str, *, drift_seconds: float) -> None:
        super().__init__(reason)
        self.drift_seconds = drift_seconds


class UnknownAccountError(ProtocolError):
    """Intact message from an account this receiver does not serve (DUH)."""

    response = Response.DUH


class UnsupportedError(ProtocolError):
    """Intact message of a kind this receiver cannot process (DUH)."""

    response = Response.DUH
