"""Integrity of the alarm log: chain verification and signed daily digests.

``verify`` walks the hash chains (``verify.py``); ``sign_day`` signs each
chain's head at the end of a Beijing day, ``check_digest`` checks one with
nothing but the centre's public key (``digest.py``).
"""

from arc.integrity.digest import (
    Digest,
    DigestError,
    check_digest,
    public_key_pem,
    sign_day,
)
from arc.integrity.verify import Anchor, Break, ChainReport, VerifyReport, verify

__all__ = [
    "Anchor",
    "Break",
    "ChainReport",
    "Digest",
    "DigestError",
    "VerifyReport",
    "check_digest",
    "public_key_pem",
    "sign_day",
    "verify",
]
