"""Settings: the ARC_* environment, the ack-policy rule, production refusals, secrecy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from arc.config import AckPolicy, Settings

GOOD_KEY = "k" * 40


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ARC_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_embedded_development_centre() -> None:
    settings = Settings()
    assert settings.embedded_database and settings.embedded_broker
    assert settings.ack_policy is AckPolicy.DATABASE
    assert settings.data_dir == Path("var")
    assert settings.listen_host == "127.0.0.1"
    assert not settings.production


def test_ack_policy_follows_the_broker_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARC_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    assert Settings().ack_policy is AckPolicy.BROKER
    monkeypatch.setenv("ARC_ACK_POLICY", "database")
    assert Settings().ack_policy is AckPolicy.DATABASE
    monkeypatch.setenv("ARC_KAFKA_BOOTSTRAP", "")  # blank means embedded, as unset does
    monkeypatch.delenv("ARC_ACK_POLICY")
    assert Settings().embedded_broker
    assert Settings().ack_policy is AckPolicy.DATABASE


def test_environment_is_read_with_the_arc_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARC_DATABASE_URL", "postgresql://arc:pw@db:5432/arc")
    monkeypatch.setenv("ARC_DATA_DIR", "/srv/arc")
    monkeypatch.setenv("ARC_DC09_PORT", "0")
    monkeypatch.setenv("ARC_HTTP_PORT", "8443")
    monkeypatch.setenv("ARC_TEST_DATABASE_URL", "not a field: ignored")
    settings = Settings()
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql://arc:pw@db:5432/arc"
    assert (settings.data_dir, settings.dc09_port, settings.http_port) == (
        Path("/srv/arc"),
        0,
        8443,
    )


@pytest.mark.parametrize("port", [-1, 65536])
def test_ports_are_checked(port: int) -> None:
    with pytest.raises(ValidationError):
        Settings(dc09_port=port)


def test_production_refuses_the_default_master_key() -> None:
    with pytest.raises(ValidationError, match="ARC_MASTER_KEY is the development default"):
        Settings(production=True)
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(production=True, master_key="short")


def test_production_refuses_broker_acks_on_the_memory_only_broker() -> None:
    with pytest.raises(ValidationError, match="ARC_ACK_POLICY=broker with the embedded broker"):
        Settings(production=True, master_key=GOOD_KEY, ack_policy="broker")
    # Allowed outside production: the benchmarks measure both policies there.
    assert Settings(ack_policy="broker").ack_policy is AckPolicy.BROKER
    settings = Settings(
        production=True, master_key=GOOD_KEY, kafka_bootstrap="k:9092", secure_cookies=True
    )
    assert settings.ack_policy is AckPolicy.BROKER


def test_production_refuses_session_cookies_over_plain_http() -> None:
    with pytest.raises(ValidationError, match="ARC_SECURE_COOKIES is not"):
        Settings(production=True, master_key=GOOD_KEY, kafka_bootstrap="k:9092")


def test_secrets_do_not_show(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "correct-horse-battery-staple-but-short"
    monkeypatch.setenv("ARC_DATABASE_URL", f"postgresql://arc:{secret}@db/arc")
    monkeypatch.setenv("ARC_MASTER_KEY", secret)
    assert secret not in repr(Settings())
    assert secret not in str(Settings())
    monkeypatch.setenv("ARC_PRODUCTION", "true")
    monkeypatch.setenv("ARC_HTTP_PORT", "not a port")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert secret not in str(refused.value)
    assert "not a port" not in str(refused.value)
