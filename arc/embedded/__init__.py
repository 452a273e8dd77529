"""Embedded services for ``arc up`` and tests: PostgreSQL and a Kafka-protocol broker.

Both run as child processes of ours on 127.0.0.1, start within a time bound
(or raise ``EmbeddedServiceError`` naming what did not come up) and stop
cleanly, as context managers or async context managers.
"""

from arc.embedded._process import EmbeddedServiceError
from arc.embedded.broker import EmbeddedBroker
from arc.embedded.postgres import EmbeddedPostgres

__all__ = ["EmbeddedBroker", "EmbeddedPostgres", "EmbeddedServiceError"]
