"""Classification and grading of signals (REGULATION.md R4, 联网报警运营规范 §8.4.1).

Every signal gets a class (burglary, fire, ... : the code tables' default,
``protocols.events.EventClass``) and a grade of urgency:

    1  危及生命  life at risk       hold-up, panic, fire, gas, medical
    2  紧急      urgent             burglary, tamper, water
    3  一般      attention          faults, supervision, unknown codes
    4  信息      information        open/close, tests, bypasses: logged, no incident

The centre overrides the defaults globally, per account and per zone, by
event code (``SIA:BA``, ``CID:130``) or by class (``class:burglary``). The
most specific override wins: zone before account before global, and within
one scope a code before a class. Zones compare as ``arc account zone``
compares them ("3" is "003"). ``Overrides`` is the in-memory table the
dispatcher keeps (``classification_overrides``, reloaded on change).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Final

from arc.dispatch.signal import Signal
from protocols.events import EventClass, Qualifier


class Grade(IntEnum):
    """Urgency: 1 is the most urgent."""

    LIFE = 1
    URGENT = 2
    ATTENTION = 3
    INFORMATION = 4


UNCLASSIFIED = "unclassified"  # the class of a code no table knows: shown, never dropped

DEFAULT_GRADES: Final[Mapping[str, Grade]] = MappingProxyType(
    {
        EventClass.HOLDUP.value: Grade.LIFE,
        EventClass.PANIC.value: Grade.LIFE,
        EventClass.FIRE.value: Grade.LIFE,
        EventClass.GAS.value: Grade.LIFE,
        EventClass.MEDICAL.value: Grade.LIFE,
        EventClass.BURGLARY.value: Grade.URGENT,
        EventClass.TAMPER.value: Grade.URGENT,
        EventClass.WATER.value: Grade.URGENT,
        EventClass.TROUBLE.value: Grade.ATTENTION,
        EventClass.COMMUNICATION.value: Grade.ATTENTION,
        UNCLASSIFIED: Grade.ATTENTION,
        EventClass.OPEN_CLOSE.value: Grade.INFORMATION,
        EventClass.TEST.value: Grade.INFORMATION,
        EventClass.OTHER.value: Grade.INFORMATION,
    }
)

CLASS_NAMES_ZH: Final[Mapping[str, str]] = MappingProxyType(
    {
        "burglary": "盗警",
        "holdup": "劫警/胁迫",
        "panic": "紧急求助",
        "fire": "火警",
        "gas": "燃气泄漏",
        "water": "水浸",
        "medical": "医疗求助",
        "tamper": "防拆",
        "trouble": "故障",
        "communication": "通讯故障",
        "open_close": "布撤防",
        "test": "测试",
        "other": "其他",
        UNCLASSIFIED: "未知代码",
    }
)

CLASSES: Final = frozenset(DEFAULT_GRADES)


@dataclass(frozen=True, slots=True)
class Override:
    """One row of ``classification_overrides``: in this scope, this match gets that class/grade."""

    match: str  # "SIA:BA", "CID:130" or "class:burglary"
    event_class: str | None  # None: keep the class, change the grade only
    grade: Grade
    account: str = ""  # "" = every account
    zone: str = ""  # "" = every zone of the account


@dataclass(frozen=True, slots=True)
class Classification:
    """What the dispatcher makes of one signal."""

    event_class: str
    grade: Grade
    restore: bool
    source: str  # "default" or the override that applied, for the incident log

    @property
    def opens_incident(self) -> bool:
        """Grades 1-3 are worked by an operator; grade 4 is logged and shown only."""
        return self.grade < Grade.INFORMATION


class Overrides:
    """The centre's overrides, indexed for one dictionary lookup per scope."""

    def __init__(self, rows: Iterable[Override] = ()) -> None:
        self._table: dict[tuple[str, str, str], Override] = {}
        for row in rows:
            self._table[(row.account, zone_key(row.zone), row.match)] = row

    def __len__(self) -> int:
        return len(self._table)

    def find(
        self,
        account: str,
        zone: str | None,
        code_key: str,
        default_class: str,
        cid_key: str | None = None,
    ) -> Override | None:
        """The most specific override for this signal, if any.

        ``cid_key`` is the Contact ID code of a signal whose code the table
        maps to SIA (``CID:130`` arrives as ``SIA:BA``): an override of either
        applies, the SIA one first.
        """
        table = self._table
        if not table:
            return None
        by_class = f"class:{default_class}"
        matches = (code_key, by_class) if cid_key is None else (code_key, cid_key, by_class)
        scopes = (
            ((account, zone_key(zone)), (account, ""), ("", ""))
            if zone
            else ((account, ""), ("", ""))
        )
        for scope_account, scope_zone in scopes:
            for match in matches:
                found = table.get((scope_account, scope_zone, match))
                if found is not None:
                    return found
        return None


def zone_key(zone: str) -> str:
    """A zone as overrides compare it: "3" and "003" are one zone ("" stays every zone)."""
    return zone and (zone.lstrip("0") or "0")


def cid_key(signal: Signal) -> str | None:
    """The ``CID:NNN`` key of a Contact ID signal that also carries its SIA code, else None."""
    if signal.code is not None and signal.cid_event is not None:
        return f"CID:{signal.cid_event}"
    return None


def classify(signal: Signal, overrides: Overrides) -> Classification:
    """The class and grade of ``signal``: an override if one applies, else the default."""
    default_class = UNCLASSIFIED if signal.event_class is None else signal.event_class.value
    restore = signal.qualifier is Qualifier.RESTORE
    found = overrides.find(
        signal.account, signal.zone, signal.code_key, default_class, cid_key(signal)
    )
    if found is None:
        return Classification(default_class, DEFAULT_GRADES[default_class], restore, "default")
    event_class = found.event_class or default_class
    scope = "global" if not found.account else f"account {found.account}"
    if found.zone:
        scope += f" zone {found.zone}"
    return Classification(event_class, found.grade, restore, f"override {scope} {found.match}")
