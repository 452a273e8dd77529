"""ARC's settings: one typed object, read from ``ARC_*`` environment variables.

Build it once at startup (``Settings()``) and pass it to what needs it; nothing
else in ``arc`` reads the environment.

Fields (and who uses them):

- ``production`` (``ARC_PRODUCTION``): refuse unsafe defaults — the development
  ``master_key``, and ``ack_policy=broker`` on the memory-only embedded broker.
- ``database_url`` (``ARC_DATABASE_URL``): PostgreSQL DSN the services connect
  with (the ``arc_app`` role: INSERT/SELECT on the logs); unset = ``arc up``
  starts the embedded PostgreSQL under ``data_dir``. Secret: it may carry a
  password.
- ``database_admin_url`` (``ARC_DATABASE_ADMIN_URL``): DSN of the schema's owner,
  for migrations and the administrative commands (``arc account``, ``arc
  verify``, ``arc digest``); default: ``database_url``.
- ``config_database_url`` (``ARC_CONFIG_DATABASE_URL``): DSN of the ``arc_config``
  role (migration 0010), given to the console only, for supervisors' and
  administrators' changes (accounts, sites, staff, storms, rules, users,
  grants); unset = the console shows the configuration but answers 503 to a
  change (``arc up`` with the embedded PostgreSQL sets it). Secret.
- ``kafka_bootstrap`` (``ARC_KAFKA_BOOTSTRAP``): ``host:port[,host:port...]``;
  unset = ``arc up`` starts the embedded broker (Tansu, memory only).
- ``data_dir`` (``ARC_DATA_DIR``): where embedded services keep their state.
- ``ack_policy`` (``ARC_ACK_POLICY``): when the receiver may ACK a device —
  ``broker`` (Kafka has it, acks=all) or ``database`` (the log writer committed
  it). Default: ``database`` with the embedded broker, whose log is in memory
  only, else ``broker``.
- ``listen_host`` (``ARC_LISTEN_HOST``): address the DC-09 and HTTP servers bind;
  loopback by default so that a development centre is not reachable from outside.
- ``dc09_port`` / ``http_port`` (``ARC_DC09_PORT``, ``ARC_HTTP_PORT``): the
  receiver's TCP+UDP port and the console/ingest HTTP port; 0 = any free port.
- ``master_key`` (``ARC_MASTER_KEY``): encrypts secrets at rest (account AES keys,
  the digest-signing key file). The default is for development only.
- ``receivers`` (``ARC_RECEIVERS``): how many receiver processes ``arc up`` runs;
  they share the DC-09 port (SO_REUSEPORT), so a receiver can use more than one core.
- ``ack_timeout`` (``ARC_ACK_TIMEOUT``): seconds the receiver waits for a signal
  to become durable; past it the device gets no ACK and sends again.
- ``broker_log_limit`` (``ARC_BROKER_LOG_LIMIT``): records a partition of the
  embedded broker may hold before ``arc up`` starts it afresh, once everything
  in it is stored (50,000; 0 = never). That broker never forgets a record and
  each read costs more the more it holds (docs/benchmarks.md).
- ``broker_log_interval`` (``ARC_BROKER_LOG_INTERVAL``): seconds the embedded
  broker runs at least before the limit above replaces it (60). Each
  replacement holds the receivers, 0.1-0.3 s at a steady 1,000 signals/s
  and up to a second in a flood; a flood reaches the limit within seconds,
  in few large batches that cost its reads little.
- ``timestamp_ahead`` / ``timestamp_behind`` (``ARC_TIMESTAMP_AHEAD``,
  ``ARC_TIMESTAMP_BEHIND``): the default DC-09 timestamp window, seconds
  (+20/-40); accounts may set their own.
- ``incident_join_window`` (``ARC_INCIDENT_JOIN_WINDOW``): seconds within which a
  signal of an account's class joins that class's open incident instead of
  opening another (600).
- ``confirmation_window`` (``ARC_CONFIRMATION_WINDOW``): seconds within which a
  burglary in a second zone confirms the first (sequential confirmation, 1,800).
- ``supervision_grace`` (``ARC_SUPERVISION_GRACE``): seconds past an account's
  link-test interval before a missed link test opens a communication fault (30).
- ``schedule_grace`` (``ARC_SCHEDULE_GRACE``): seconds past an account's closing
  time (its open hours, ``arc account schedule``) before a site still disarmed
  opens 未按时布防; a disarm up to that long before opening is within the hours
  (900).
- ``false_alarm_limit`` (``ARC_FALSE_ALARM_LIMIT``): false alarms in 12 months
  after which the local police stop responding to an account's alarms (3); the
  dispatcher warns from one before it. A centre setting, not a constant: each
  local public-security bureau sets its own number.
- ``session_hours`` (``ARC_SESSION_HOURS``): how long a console login lasts at
  most (12: a duty shift), idle or not; logging out ends it at once.
- ``secure_cookies`` (``ARC_SECURE_COOKIES``): send the console's session cookie
  over HTTPS only; set it behind a TLS-terminating proxy (production refuses to
  start without it).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Known to everyone who reads this file: acceptable on a developer's machine only.
DEVELOPMENT_MASTER_KEY = "arc-development-master-key-do-not-use-in-production"  # noqa: S105


class AckPolicy(StrEnum):
    """When a signal counts as durable enough to acknowledge to the device."""

    BROKER = "broker"  # Kafka has it with acks=all
    DATABASE = "database"  # the log writer has committed it to PostgreSQL


class Settings(BaseSettings):
    """Everything ARC's services are configured with (see the module docstring)."""

    model_config = SettingsConfigDict(
        env_prefix="ARC_",
        frozen=True,
        extra="forbid",
        # Only real environment variables: no .env file is read implicitly.
        env_file=None,
        # A validation error must not echo what it was given: that may be a secret.
        hide_input_in_errors=True,
    )

    production: bool = False
    database_url: SecretStr | None = None
    database_admin_url: SecretStr | None = None
    config_database_url: SecretStr | None = None
    kafka_bootstrap: str | None = None
    data_dir: Path = Path("var")
    # Resolved from kafka_bootstrap when not given; validators run in field order.
    ack_policy: AckPolicy = Field(default=None, validate_default=True)
    listen_host: str = "127.0.0.1"
    dc09_port: int = Field(default=7777, ge=0, le=65535)
    http_port: int = Field(default=8080, ge=0, le=65535)
    master_key: SecretStr = SecretStr(DEVELOPMENT_MASTER_KEY)
    receivers: int = Field(default=1, ge=1, le=64)
    ack_timeout: float = Field(default=5.0, gt=0, le=60)
    broker_log_limit: int = Field(default=50_000, ge=0)
    broker_log_interval: float = Field(default=60.0, ge=0, le=86_400)
    timestamp_ahead: float = Field(default=20.0, ge=0)
    timestamp_behind: float = Field(default=40.0, ge=0)
    incident_join_window: float = Field(default=600.0, ge=0, le=86_400)
    confirmation_window: float = Field(default=1_800.0, ge=0, le=86_400)
    supervision_grace: float = Field(default=30.0, ge=0, le=86_400)
    schedule_grace: float = Field(default=900.0, ge=0, le=86_400)
    # The local police set it (their rule for responding to alarm-centre calls),
    # so it differs from city to city: see arc.dispatch.false_alarms.
    false_alarm_limit: int = Field(default=3, ge=1, le=100)
    session_hours: float = Field(default=12.0, gt=0, le=24)
    secure_cookies: bool = False

    @field_validator(
        "database_url",
        "database_admin_url",
        "config_database_url",
        "kafka_bootstrap",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `ARC_DATABASE_URL= arc up` means "embedded", as an unset variable does.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("ack_policy", mode="before")
    @classmethod
    def _default_ack_policy(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            embedded = info.data.get("kafka_bootstrap") is None
            return AckPolicy.DATABASE if embedded else AckPolicy.BROKER
        return value

    @property
    def embedded_database(self) -> bool:
        """Whether ARC runs its own PostgreSQL (no ``database_url`` given)."""
        return self.database_url is None

    @property
    def admin_database_url(self) -> SecretStr | None:
        """The schema owner's DSN of a configured database (None: embedded)."""
        if self.database_url is None:
            return None
        return self.database_admin_url or self.database_url

    @property
    def embedded_broker(self) -> bool:
        """Whether ARC runs its own broker (no ``kafka_bootstrap`` given)."""
        return self.kafka_bootstrap is None

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if not self.production:
            return self
        if self.master_key.get_secret_value() == DEVELOPMENT_MASTER_KEY:
            raise ValueError(
                "ARC_PRODUCTION is set but ARC_MASTER_KEY is the development default; "
                "set a key of your own"
            )
        if len(self.master_key.get_secret_value()) < 32:
            raise ValueError("ARC_MASTER_KEY must be at least 32 characters in production")
        if self.embedded_broker and self.ack_policy is AckPolicy.BROKER:
            raise ValueError(
                "ARC_ACK_POLICY=broker with the embedded broker would acknowledge signals "
                "held in memory only; use ARC_ACK_POLICY=database or set ARC_KAFKA_BOOTSTRAP"
            )
        if not self.secure_cookies:
            raise ValueError(
                "ARC_PRODUCTION is set but ARC_SECURE_COOKIES is not: console sessions "
                "would travel over plain HTTP; serve the console over HTTPS and set it"
            )
        return self
