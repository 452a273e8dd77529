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
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocols.errors import DecryptionError

_BLOCK = 16  # bytes in an AES block
_KEY_SIZES = (16, 24, 32)
# Bytes a pad must not contain (§5.4.4.2); we also avoid LF and CR so that a
# careless logger cannot cut a decrypted text in two. A random byte that is one
# of them is replaced (high bit set) rather than redrawn: one C call for the
# whole pad, and a pad is filler that needs no even distribution.
_PAD_FORBIDDEN = b"|[]\n\r"
_PAD_SAFE = bytes.maketrans(_PAD_FORBIDDEN, bytes(b | 0x80 for b in _PAD_FORBIDDEN))


class KeyFormat(StrEnum):
    """How the installer typed a key into the panel."""

    HEX = "hex"
    ASCII = "ascii"


class _ZeroIvCbc:
    """AES-CBC with the all-zero IV under one key: one context each way for all messages.

    cryptography sets a context up per message, and the set-up costs more than
    all the AES work of a DC-09 message. A CBC context that goes on to another
    message chains it to the one before: it takes that message's last
    ciphertext block as the IV. XOR-ing that block into the first plaintext
    block (before encrypting, after decrypting) makes the IV zero again. Tests
    check every message against a context of its own.
    """

    def __init__(self, key: bytes) -> None:
        cipher = Cipher(algorithms.AES(key), modes.CBC(bytes(_BLOCK)))
        self._encryptor = cipher.encryptor()
        self._decryptor = cipher.decryptor()
        # The IV each context goes on with: the last ciphertext block it saw.
        self._encryptor_iv = self._decryptor_iv = 0
        self._lock = threading.Lock()  # a context and its IV change together

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt whole blocks."""
        with self._lock:
            first = int.from_bytes(plaintext[:_BLOCK]) ^ self._encryptor_iv
            ciphertext = self._encryptor.update(first.to_bytes(_BLOCK) + plaintext[_BLOCK:])
            self._encryptor_iv = int.from_bytes(ciphertext[-_BLOCK:])
        return ciphertext

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt whole blocks."""
        with self._lock:
            plaintext = self._decryptor.update(ciphertext)
            first = int.from_bytes(plaintext[:_BLOCK]) ^ self._decryptor_iv
            self._decryptor_iv = int.from_bytes(ciphertext[-_BLOCK:])
        return first.to_bytes(_BLOCK) + plaintext[_BLOCK:]


@dataclass(frozen=True)
class Dc09Key:
    """An AES key for DC-09 with the representation it was configured in."""

    # The cipher, set up once per key, has a slot but is no field: it is not
    # compared, shown or converted by dataclasses.asdict().
    __slots__ = ("key", "representation", "_cipher")
    key: bytes
    representation: KeyFormat

    def __post_init__(self) -> None:
        if len(self.key) not in _KEY_SIZES:
            raise DecryptionError(
                f"AES key must be 16, 24 or 32 bytes (128/192/256 bit), got {len(self.key)}"
            )
        self._cipher: _ZeroIvCbc
        object.__setattr__(self, "_cipher", _ZeroIvCbc(self.key))

    def __reduce__(self) -> tuple[type[Dc09Key], tuple[bytes, KeyFormat]]:
        # Pickled and copied as what it is made of; the cipher is set up anew.
        return Dc09Key, (self.key, self.representation)

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
    return key._cipher.decrypt(ciphertext)


def encrypt(plaintext: bytes, key: Dc09Key, random_bytes: Callable[[int], bytes]) -> bytes:
    """Pad ``plaintext`` as §5.4.4 says, encrypt it and return upper-case hex."""
    # The pad, its terminating "|" included, fills the last block; a full
    # block of pad when the text already fits (§5.4.4.2).
    pad = _pad(15 - len(plaintext) % 16, random_bytes)
    ciphertext = key._cipher.encrypt(pad + b"|" + plaintext)
    return binascii.hexlify(ciphertext).upper()


def _pad(length: int, random_bytes: Callable[[int], bytes]) -> bytes:
    """Return ``length`` random bytes none of which is forbidden in a pad."""
    return random_bytes(length).translate(_PAD_SAFE)
