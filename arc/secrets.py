"""Small secrets at rest (account AES keys): sealed under a key derived from ARC_MASTER_KEY.

Theory of operation. Each purpose (account keys, ...) gets its own 256-bit key,
``HKDF-SHA256(master_key, info=purpose)``, so a box of one purpose never opens
as another. A box is

    version (1) | key id (4) | nonce (12) | AES-256-GCM ciphertext + tag (16)

The nonce is random (96 bits; at the few thousand boxes a centre seals, a
collision is not a concern). The associated data is the version and key id
and the caller's ``context`` (the account id for account keys), so a box
copied to another account's row fails to open. The key id is a second HKDF output of
the same master key: it tells "sealed under another master key" (a
configuration error, refused for every box) from "this box was altered" (one
damaged row) without revealing anything about the key itself.

The master key is read once, in the constructor; the box keeps only the
derived keys and never shows them (``repr`` names the purpose only).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

VERSION = 1
_HEADER = 1 + 4 + 12  # version, key id, nonce
_TAG = 16
# Fixed salt: the master key is the only secret; the salt only separates ARC's
# derivations from any other use of the same string.
_SALT = b"arc.secrets.v1"


class SecretError(Exception):
    """A sealed secret that cannot be opened."""


class MasterKeyMismatch(SecretError):
    """The box was sealed under a different master key (ARC_MASTER_KEY changed?)."""


class SecretCorrupted(SecretError):
    """The box is malformed, altered, or belongs to another context (account)."""


def _derive(master_key: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info).derive(master_key)


class SecretBox:
    """Seal and open small secrets of one purpose under the master key."""

    __slots__ = ("_aead", "_key_id", "_purpose")

    def __init__(self, master_key: SecretStr | str | bytes, *, purpose: bytes) -> None:
        if isinstance(master_key, SecretStr):
            master_key = master_key.get_secret_value()
        material = master_key.encode() if isinstance(master_key, str) else master_key
        if not material:
            raise ValueError("the master key is empty")
        if not purpose:
            raise ValueError("a SecretBox needs a purpose (the HKDF info string)")
        self._purpose = purpose
        self._aead = AESGCM(_derive(material, b"aead:" + purpose, 32))
        self._key_id = _derive(material, b"key-id:" + purpose, 4)

    def __repr__(self) -> str:
        return f"SecretBox(purpose={self._purpose!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would carry the derived key out of the process.
        raise TypeError("a SecretBox cannot be pickled")

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        """Encrypt ``plaintext`` bound to ``context``; return the box."""
        header = bytes((VERSION,)) + self._key_id + os.urandom(12)
        return header + self._aead.encrypt(header[5:], plaintext, header[:5] + context)

    def open(self, ciphertext: bytes, *, context: bytes) -> bytes:
        """Decrypt a box sealed with the same ``context``; raise ``SecretError`` if it cannot."""
        if len(ciphertext) < _HEADER + _TAG:
            raise SecretCorrupted(f"sealed secret is {len(ciphertext)} bytes, too short")
        if ciphertext[0] != VERSION:
            raise SecretCorrupted(f"sealed secret has unknown version {ciphertext[0]}")
        if ciphertext[1:5] != self._key_id:
            raise MasterKeyMismatch(
                "secret was sealed under a different master key; is ARC_MASTER_KEY the one "
                "the accounts were stored with?"
            )
        try:
            return self._aead.decrypt(
                ciphertext[5:_HEADER], ciphertext[_HEADER:], ciphertext[:5] + context
            )
        except InvalidTag:
            raise SecretCorrupted(
                "sealed secret does not open: it was altered or belongs to another account"
            ) from None
