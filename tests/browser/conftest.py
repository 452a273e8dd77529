"""The browser tests run ``arc up`` in the integration tests' scratch directory."""

from tests.integration.conftest import scratch_dir

__all__ = ["scratch_dir"]
