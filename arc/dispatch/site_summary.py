"""One-line summaries of a site's state for operators, in Chinese and in English.

Split from ``site_state`` (the projection itself): this is only how a state
reads to a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from arc.dispatch.site_state import PANEL, SiteState
from arc.model import BEIJING
from protocols.events import EventClass

_HAZARD_ORDER: Final = (
    EventClass.HOLDUP,
    EventClass.PANIC,
    EventClass.FIRE,
    EventClass.GAS,
    EventClass.MEDICAL,
    EventClass.WATER,
    EventClass.BURGLARY,
)
_LISTED: Final = 8  # zone numbers named before "and N more"


@dataclass(frozen=True, slots=True)
class _Words:
    """One language's words for a summary; ``{}`` is filled in."""

    partition: tuple[str, str, str]  # armed, disarmed, arming never reported
    hazards: tuple[str, ...]  # in _HAZARD_ORDER
    alarm: str
    flags: tuple[str, str, str]  # tampered, faulted, bypassed
    ac_lost: str
    battery: tuple[str, str]  # low, missing
    last: tuple[str, str]  # last signal, never heard from
    places: tuple[str, str, str, str, str, str]  # zone, zones, separator, more, panel, panel+


_ZH: Final = _Words(
    ("分区{} 布防", "分区{} 撤防", "布撤防未报告"),
    ("劫盗", "紧急", "火警", "燃气", "医疗", "水浸", "盗警"),
    "{} 报警({})",
    ("{} 防拆", "{} 故障", "{} 旁路"),
    "交流电故障",
    ("电池欠压", "电池缺失"),
    ("最后通讯 {} 北京时间", "从未通讯"),
    ("防区{}", "防区{}", ",", "等{}个", "主机", "主机、{}"),
)
_EN: Final = _Words(
    ("Partition {} armed", "Partition {} disarmed", "Arming never reported"),
    ("hold-up", "panic", "fire", "gas", "medical", "water", "burglary"),
    "{} in alarm ({})",
    ("{} tampered", "{} in trouble", "{} bypassed"),
    "AC power lost",
    ("Battery low", "Battery missing"),
    ("Last signal {} Beijing time", "Never heard from"),
    ("Zone {}", "Zones {}", ", ", " ({} in all)", "Panel", "Panel, {}"),
)


def _by_number(key: str) -> tuple[int, str]:
    return len(key), key  # normalised numbers: shorter is smaller


def _places(keys: list[str], words: _Words) -> str:
    one, many, separator, more, panel, panel_and = words.places
    numbers = sorted((k for k in keys if k != PANEL), key=_by_number)
    if not numbers:
        return panel
    text = (one if len(numbers) == 1 else many).format(separator.join(numbers[:_LISTED]))
    if len(numbers) > _LISTED:
        text += more.format(len(numbers))
    return panel_and.format(text[0].lower() + text[1:]) if PANEL in keys else text


def _summary(state: SiteState, words: _Words) -> str:
    armed, disarmed, never_armed = words.partition
    parts = [
        (armed if p.armed else disarmed).format(key)
        for key, p in sorted(state.partitions.items(), key=lambda item: _by_number(item[0]))
        if p.armed is not None
    ] or [never_armed]
    alarms: dict[EventClass, list[str]] = {}
    for key, alarm in state.alarms.items():
        if alarm.hazard is not None:
            alarms.setdefault(alarm.hazard, []).append(key)
    tampered, faulted, bypassed = (
        [k for k, r in flags.items() if r.value]
        for flags in (state.tamper, state.fault, state.bypass)
    )
    for hazard, name in zip(_HAZARD_ORDER, words.hazards, strict=True):
        if hazard in alarms:
            parts.append(words.alarm.format(_places(alarms[hazard], words), name))
    for keys, flag in zip((tampered, faulted, bypassed), words.flags, strict=True):
        if keys:
            parts.append(flag.format(_places(keys, words)))
    if state.ac_power is not None and state.ac_power.value == "lost":
        parts.append(words.ac_lost)
    if state.battery is not None and state.battery.value != "ok":
        parts.append(words.battery[state.battery.value == "missing"])
    last, never = words.last
    moment = state.last_signal_at
    if moment is None:
        parts.append(never)
    else:
        parts.append(last.format(moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")))
    return " · ".join(parts)


def summary_zh(state: SiteState) -> str:
    """Return a one-line Chinese summary for an operator, times in Beijing time."""
    return _summary(state, _ZH)


def summary_en(state: SiteState) -> str:
    """Return a one-line English summary for an operator, times in Beijing time."""
    return _summary(state, _EN)
