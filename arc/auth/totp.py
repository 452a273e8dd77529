"""Time-based one-time codes (RFC 6238, through pyotp) for supervisors and administrators.

The shared secret is sealed with ``arc.secrets`` under its own purpose and
bound to the user's id, so neither a database dump nor a secret copied to
another user's row gives a working authenticator. A code is accepted for the
current 30-second step or one step either side (clock drift of the phone),
and only for a step newer than the last one accepted: a code seen over a
shoulder or in a proxy log cannot be used a second time.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime

import pyotp
from pydantic import SecretStr

from arc.secrets import SecretBox

# HKDF info of the TOTP box: a box of another purpose never opens as one.
TOTP_SECRETS = b"arc/auth/totp/v1"
ISSUER = "ARC 联网报警中心"
DRIFT_STEPS = 1  # steps accepted either side of the current one


def totp_box(master_key: SecretStr | str) -> SecretBox:
    """The box TOTP secrets are sealed in, under ``master_key`` (``Settings.master_key``)."""
    return SecretBox(master_key, purpose=TOTP_SECRETS)


def context(user_id: uuid.UUID) -> bytes:
    """The associated data of a user's box: it opens for that user only."""
    return b"user:" + user_id.bytes


def new_secret() -> str:
    """A fresh base32 secret (160 bits, RFC 4226's recommendation)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, *, username: str) -> str:
    """The otpauth:// URI an authenticator app reads (as a QR code or typed)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def matching_step(secret: str, code: str, *, now: datetime, after: int) -> int | None:
    """The step ``code`` is valid for at ``now``, if newer than ``after``; else None."""
    code = code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found: int | None = None
    # Every candidate is compared (constant time, no early exit): how long a
    # refusal takes says nothing about which step was close.
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and step > after:
            found = step
    return found


def code_at(secret: str, now: datetime) -> str:
    """The code an authenticator shows at ``now`` (for tests and the demo)."""
    return pyotp.TOTP(secret).at(now)
