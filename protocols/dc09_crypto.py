"""AES for SIA DC-09: CBC with an all-zero IV, 128/192/256-bit keys.

DC-09 §5.4.4-5.4.6: the encrypted region runs from the first pad byte to the
last timestamp character, ``<pad>|<data>][<x-data>...]_<timestamp>``; the pad
is pseudo-random, never contains ``|``, ``[`` or ``]``, is ended by ``|``, and
makes the region a multiple of 16 (16 bytes when it already is). The
ciphertext travels as hex (upper case normally; Eaton sends lower case).

Installers configure keys two ways and both are real (PROTOCOLS.md §1.10):
as hex digits giving the key bytes (Hikvision, Lupusec), or as 16/24/32 ASCII
characters used as the key bytes themselves (Ajax, pysiaalarm). A key keeps
its representation so it can be shown back the way the installer typed it.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocols.errors import DecryptionError

_ZERO_IV = bytes(16)
_KEY_SIZES = (16, 24, 32)
# Bytes a pad must not contain (§5.4.4.2); we also avoid LF and CR so that a
# careless logger cannot cut a decrypted text in two.
_PAD_FORBIDDEN = frozenset(b"|[]\n\r")


class KeyFormat(StrEnum):
    """How the installer typed a key into the panel."""

    HEX = "hex"
    ASCII = "ascii"


@dataclass(frozen=True, slots=True)
class Dc09Key:
    """An AES key for DC-09 with the representation it was configured in."""

    key: bytes
    representation: KeyFormat

    def __post_init__(self) -> None:
        if len(self.key) not in _KEY_SIZES:
            raise DecryptionError(
                f"AES key must be 16, 24 or 32 bytes (128/192/256 bit), got {len(self.key)}"
            )

    def __repr__(self) -> str:
        # Keys never reach a log line, not even through repr().
        return f"Dc09Key(<{len(self.key) * 8}-bit {self.representation.value} key>)"

    @classmethod
    def parse(cls, spec: str) -> Dc09Key:
        """Parse ``hex:<32|48|64 hex digits>`` or ``ascii:<16|24|32 characters>``."""
        kind, sep, text = spec.partition(":")
        if not sep or kind not in ("hex", "ascii"):
            raise DecryptionError("a DC-09 key is written hex:<hex digits> or ascii:<characters>")
        if kind == "hex":
            try:
                key = bytes.fromhex(text)
            except ValueError:
                raise DecryptionError("hex key has characters that are not hex digits") from None
            return cls(key, KeyFormat.HEX)
        if not text.isascii():
            raise DecryptionError("ascii key must contain ASCII characters only")
        return cls(text.encode("ascii"), KeyFormat.ASCII)

    def spec(self) -> str:
        """Return the key written as :meth:`parse` reads it."""
        if self.representation is KeyFormat.HEX:
            return "hex:" + self.key.hex().upper()
        return "ascii:" + self.key.decode("ascii")


def decrypt(ciphertext_hex: bytes, key: Dc09Key) -> bytes:
    """Decrypt hex ciphertext (either case) to the padded plaintext."""
    if not ciphertext_hex or len(ciphertext_hex) % 32:
        raise DecryptionError(
            f"ciphertext must be whole 16-byte blocks, got {len(ciphertext_hex)} hex digits"
        )
    try:
        ciphertext = binascii.unhexlify(ciphertext_hex)
    except binascii.Error:
        raise DecryptionError("ciphertext contains characters that are not hex digits") from None
    decryptor = Cipher(algorithms.AES(key.key), modes.CBC(_ZERO_IV)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def encrypt(plaintext: bytes, key: Dc09Key, random_bytes: Callable[[int], bytes]) -> bytes:
    """Pad ``plaintext`` as §5.4.4 says, encrypt it and return upper-case hex."""
    # The pad, its terminating "|" included, fills the last block; a full
    # block of pad when the text already fits (§5.4.4.2).
    pad = _pad(15 - len(plaintext) % 16, random_bytes)
    encryptor = Cipher(algorithms.AES(key.key), modes.CBC(_ZERO_IV)).encryptor()
    ciphertext = encryptor.update(pad + b"|" + plaintext) + encryptor.finalize()
    return binascii.hexlify(ciphertext).upper()


def _pad(length: int, random_bytes: Callable[[int], bytes]) -> bytes:
    """Return ``length`` random bytes none of which is forbidden in a pad."""
    pad = bytearray()
    while len(pad) < length:
        pad.extend(b for b in random_bytes(length) if b not in _PAD_FORBIDDEN)
    return bytes(pad[:length])
