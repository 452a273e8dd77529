"""Logging of the services that ``arc up`` runs on its embedded broker."""

from __future__ import annotations

import logging

import pytest

from arc.process import BrokerErrorsAsWarnings


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
