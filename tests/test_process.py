"""What every service process does alike: its logging on the embedded broker, its heap."""

from __future__ import annotations

import argparse
import builtins
import json
import logging
import subprocess
import sys
from collections.abc import Callable

import pytest

from arc import cli, process
from arc.process import YOUNG_GENERATION, BrokerErrorsAsWarnings


def _record(name: str, level: int) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, "Unable connect to node", None, None)


@pytest.mark.parametrize("name", ["aiokafka", "aiokafka.consumer.fetcher"])
def test_aiokafka_errors_are_warnings_on_the_embedded_broker(name: str) -> None:
    record = _record(name, logging.ERROR)
    assert BrokerErrorsAsWarnings().filter(record)  # kept, not dropped
    assert (record.levelno, record.levelname) == (logging.WARNING, "WARNING")


@pytest.mark.parametrize(
    ("name", "level"),
    [("arc.up", logging.ERROR), ("asyncio", logging.ERROR), ("aiokafka", logging.CRITICAL)],
)
def test_other_errors_keep_their_level(name: str, level: int) -> None:
    record = _record(name, level)
    assert BrokerErrorsAsWarnings().filter(record)
    assert record.levelno == level and record.levelname == logging.getLevelName(level)


def test_a_settled_heap_is_frozen_and_collects_its_young_generation_less_often() -> None:
    # In a process of its own: the test runner's collector is left as it is.
    script = (
        "import gc, json\n"
        "from arc.process import settle_heap\n"
        "before = gc.get_freeze_count(), gc.get_threshold()\n"
        "settle_heap()\n"
        "print(json.dumps([before, [gc.get_freeze_count(), gc.get_threshold()]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, timeout=60
    )
    (frozen_before, threshold_before), (frozen, threshold) = json.loads(done.stdout)
    assert frozen_before == 0 and frozen > 10_000  # modules, classes, functions
    assert threshold == [YOUNG_GENERATION, *threshold_before[1:]]
    assert threshold_before[0] < YOUNG_GENERATION


def test_a_service_settles_its_heap_once_before_its_first_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[str] = []

    async def service(
        _command: str, _settings: object, _args: object, announce: Callable[[str], None]
    ) -> int:
        announce("receiver: ready")
        announce("receiver: again")
        return 0

    monkeypatch.setattr(cli, "_run_service", service)
    monkeypatch.setattr(process, "settle_heap", lambda: events.append("settled"))
    monkeypatch.setattr(process, "configure_logging", lambda *_a, **_k: None)
    monkeypatch.setattr(builtins, "print", lambda line, **_k: events.append(line))
    args = argparse.Namespace(command="receiver", stop_with_parent=None)
    assert cli._serve(argparse.ArgumentParser(), args) == 0
    assert events == ["settled", "receiver: ready", "receiver: again"]
