"""What an administrator gives for an account, and what is shown back (never the key)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from protocols.dc09_crypto import Dc09Key, KeyFormat
from protocols.dc09_receiver import DriftAction
from protocols.errors import ProtocolError

ACCOUNT_PATTERN = re.compile(r"[0-9A-Fa-f]{3,16}")
# The DB column is an integer; beyond it PostgreSQL would refuse with a less clear message.
_INT32_MAX = 2**31 - 1
# One day: a wider acceptance window is no window; panels in another zone set utc_offset.
_MAX_WINDOW = 86_400.0

WindowSeconds = Annotated[float, Field(ge=0, le=_MAX_WINDOW, allow_inf_nan=False)]


def parse_key(spec: str) -> Dc09Key:
    """Parse ``hex:KEY`` / ``ascii:KEY``, naming the AES sizes when the length is wrong."""
    kind, sep, text = spec.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in ("hex", "ascii"):
        raise ValueError("key must be written hex:<hex digits> or ascii:<characters>")
    if kind == "hex":
        text = text.strip()
        if not re.fullmatch(r"[0-9A-Fa-f]*", text):
            raise ValueError("hex key may contain only the hex digits 0-9 and A-F")
        if len(text) not in (32, 48, 64):
            raise ValueError(
                f"hex key must be 32, 48 or 64 hex digits (AES-128/192/256), got {len(text)} digits"
            )
    else:
        if not text.isascii() or not text.isprintable():
            raise ValueError("ascii key may contain only printable ASCII characters")
        if len(text) not in (16, 24, 32):
            raise ValueError(
                "ascii key must be 16, 24 or 32 characters (AES-128/192/256), "
                f"got {len(text)} characters"
            )
    try:
        return Dc09Key.parse(f"{kind}:{text}")
    except ProtocolError as error:  # the checks above leave none; keep the reason if so
        raise ValueError(f"key: {error.reason}") from None


class AccountIn(BaseModel):
    """An account as an administrator adds or imports it."""

    # Errors must not echo their input: the key is part of it.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    account: str
    name: str = Field(default="", max_length=200)
    # The key spec (hex:... or ascii:...), None for an account without encryption.
    key: SecretStr | None = None
    link_test_seconds: int | None = Field(default=None, gt=0, le=_INT32_MAX)
    utc_offset_minutes: int = Field(default=0, ge=-720, le=840)
    timestamp_ahead: WindowSeconds | None = None
    timestamp_behind: WindowSeconds | None = None
    drift_action: DriftAction | None = None
    enabled: bool = True

    @field_validator("account")
    @classmethod
    def _account_rule(cls, value: str) -> str:
        value = value.strip()
        if not ACCOUNT_PATTERN.fullmatch(value):
            shown = value if len(value) <= 24 and value.isprintable() else f"{value[:24]!r}..."
            raise ValueError(f"account must be 3 to 16 hex digits (0-9, A-F), got {shown!r}")
        return value

    @field_validator("name")
    @classmethod
    def _name_rule(cls, value: str) -> str:
        value = value.strip()
        if not value.isprintable():
            raise ValueError("name must not contain control characters (tab, newline, ...)")
        return value

    @field_validator("key")
    @classmethod
    def _key_rule(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            if not value.get_secret_value().strip():
                return None
            parse_key(value.get_secret_value())  # raises with the reason
        return value

    def dc09_key(self) -> Dc09Key | None:
        """The validated key, or None."""
        return None if self.key is None else parse_key(self.key.get_secret_value())


class AccountOut(BaseModel):
    """An account as shown back: whether it has a key and its format, never the key."""

    model_config = ConfigDict(frozen=True)

    account: str
    name: str
    has_key: bool
    key_format: KeyFormat | None
    link_test_seconds: int | None
    utc_offset_minutes: int
    timestamp_ahead: float | None
    timestamp_behind: float | None
    drift_action: DriftAction | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
