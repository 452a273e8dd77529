"""What an administrator gives for an account, and what is shown back (never the key)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

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


# --- the customer's site (migrations/0006_sites.sql) --------------------------------------------

Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
# A zone as the panel reports it: CID "003", SIA "3", or an IoT device's short id.
ZONE_PATTERN = re.compile(r"[0-9A-Za-z]{1,16}")
# What an operator dials: digits, an optional leading +, spaces or hyphens between.
PHONE_PATTERN = re.compile(r"\+?[0-9][0-9 -]{2,30}")


class Technology(StrEnum):
    """The detector technology of a zone: two different ones confirm each other."""

    PIR = "pir"  # 被动红外
    MICROWAVE = "microwave"  # 微波
    DUAL_TECH = "dual_tech"  # 双鉴 (PIR + microwave in one detector)
    DOOR_CONTACT = "door_contact"  # 门磁
    GLASS_BREAK = "glass_break"  # 玻璃破碎
    VIBRATION = "vibration"  # 振动
    BEAM = "beam"  # 红外对射
    SMOKE = "smoke"  # 感烟
    HEAT = "heat"  # 感温
    GAS = "gas"  # 燃气
    WATER = "water"  # 水浸
    PANIC_BUTTON = "panic_button"  # 紧急按钮
    VIDEO = "video"  # 视频
    OTHER = "other"  # 其他


TECHNOLOGY_NAMES_ZH: Mapping[Technology, str] = MappingProxyType(
    {
        Technology.PIR: "被动红外",
        Technology.MICROWAVE: "微波",
        Technology.DUAL_TECH: "双鉴",
        Technology.DOOR_CONTACT: "门磁",
        Technology.GLASS_BREAK: "玻璃破碎",
        Technology.VIBRATION: "振动",
        Technology.BEAM: "红外对射",
        Technology.SMOKE: "感烟",
        Technology.HEAT: "感温",
        Technology.GAS: "燃气",
        Technology.WATER: "水浸",
        Technology.PANIC_BUTTON: "紧急按钮",
        Technology.VIDEO: "视频",
        Technology.OTHER: "其他",
    }
)


def zone_key(zone: str) -> str:
    """A zone's number as the dispatcher compares it: leading zeros dropped ("003" is "3")."""
    return zone.lstrip("0") or "0"


def _text_rule(value: str, what: str) -> str:
    value = value.strip()
    if not value.isprintable():
        raise ValueError(f"{what} must not contain control characters (tab, newline, ...)")
    return value


class SiteIn(BaseModel):
    """Where an account's premises are: address, position (WGS-84) and patrol beat."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str = Field(default="", max_length=300)
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    beat: str | None = Field(default=None, max_length=100)  # 巡逻区域, as staff's beat

    @field_validator("address")
    @classmethod
    def _address_rule(cls, value: str) -> str:
        return _text_rule(value, "address")

    @field_validator("beat")
    @classmethod
    def _beat_rule(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return _text_rule(value, "beat")

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("a position has a latitude and a longitude: give both or neither")
        return self

    @property
    def position(self) -> tuple[float, float] | None:
        """(latitude, longitude), or None when unknown."""
        if self.latitude is None or self.longitude is None:
            return None
        return self.latitude, self.longitude


class ZoneIn(BaseModel):
    """One zone of an account: its number as the panel sends it, a name, its detector."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    zone: str
    name: str = Field(default="", max_length=100)
    technology: Technology

    @field_validator("zone")
    @classmethod
    def _zone_rule(cls, value: str) -> str:
        value = value.strip()
        if not ZONE_PATTERN.fullmatch(value):
            shown = value if len(value) <= 24 and value.isprintable() else f"{value[:24]!r}..."
            raise ValueError(
                f"zone must be 1 to 16 letters or digits, as the panel sends it, got {shown!r}"
            )
        return value

    @field_validator("name")
    @classmethod
    def _name_rule(cls, value: str) -> str:
        return _text_rule(value, "zone name")


class KeyholderIn(BaseModel):
    """A keyholder (紧急联系人): called in the order of the list."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    phone: str
    relation: str = Field(default="", max_length=50)  # e.g. 店长 manager, 业主 owner

    @field_validator("name")
    @classmethod
    def _name_rule(cls, value: str) -> str:
        value = _text_rule(value, "keyholder name")
        if not value:
            raise ValueError("a keyholder has a name")
        return value

    @field_validator("phone")
    @classmethod
    def _phone_rule(cls, value: str) -> str:
        value = value.strip()
        if not PHONE_PATTERN.fullmatch(value):
            raise ValueError(
                "phone must be digits with an optional leading + and spaces or hyphens "
                f"between, e.g. 13800138000 or +86 10 6512 3456, got {value!r}"
            )
        return value

    @field_validator("relation")
    @classmethod
    def _relation_rule(cls, value: str) -> str:
        return _text_rule(value, "relation")


class ZoneOut(ZoneIn):
    """A zone as stored."""

    updated_at: datetime


class SiteOut(BaseModel):
    """Everything recorded about an account's site, as ``arc account show`` prints it."""

    model_config = ConfigDict(frozen=True)

    account: AccountOut
    address: str
    latitude: float | None
    longitude: float | None
    beat: str | None
    zones: tuple[ZoneOut, ...]
    keyholders: tuple[KeyholderIn, ...]
    # The schedule as lines (arc.accounts.schedule); empty: not supervised.
    schedule: tuple[str, ...]
    site_updated_at: datetime | None
