"""What every long-running ``arc`` service process does alike: stop on a signal, with its parent."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import signal
import sys

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h

# ``arc up`` to its receivers: hold new sends to the broker, then let them go
# (while it replaces the embedded broker; see arc.embedded.rotation).
HOLD_SENDS = signal.SIGUSR1
RELEASE_SENDS = signal.SIGUSR2
# ``arc up`` to its log writer and dispatcher, meanwhile: store what you hold
# now (the dispatcher's site states); the broker's log was replaced by an
# empty one, so read it from offset 0, and say so (``LOG_STARTED_OVER``).
STORE_NOW = signal.SIGUSR1
LOG_STARTS_OVER = signal.SIGUSR2

# A line a child prints to its stdout for ``arc up`` alone, which does not
# relay it: this prefix, then one word.
CONTROL_PREFIX = "arc-control: "
LOG_STARTED_OVER = "log-started-over"

# Allocations between two collections of the youngest generation (Python: 700).
YOUNG_GENERATION = 10_000


class SendHold:
    """Sends held while ``arc up`` replaces its embedded broker, then let go.

    ``hold`` and ``release`` answer HOLD_SENDS and RELEASE_SENDS once
    ``install``-ed; a sender awaits ``released`` before each send.
    """

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    @property
    def held(self) -> bool:
        """Whether sends wait now."""
        return not self._open.is_set()

    def hold(self) -> None:
        """Make new sends wait until ``release``."""
        self._open.clear()

    def release(self) -> None:
        """Let held and new sends go."""
        self._open.set()

    async def released(self) -> None:
        """Return once sends may go (at once when none are held)."""
        await self._open.wait()

    def install(self) -> None:
        """Answer ``arc up``'s HOLD_SENDS and RELEASE_SENDS (in the running loop)."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(HOLD_SENDS, self.hold)
        loop.add_signal_handler(RELEASE_SENDS, self.release)

    def uninstall(self) -> None:
        """Back to the signals' default action."""
        loop = asyncio.get_running_loop()
        for sig in (HOLD_SENDS, RELEASE_SENDS):
            loop.remove_signal_handler(sig)


def control_line(word: str) -> str:
    """The stdout line that tells ``arc up`` ``word``."""
    return CONTROL_PREFIX + word


def stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (a clean stop); call in the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def settle_heap() -> None:
    """Tune the garbage collector for a service that is ready; call once.

    Modules, pools and caches live as long as the process: frozen, no
    collection walks them again (unfrozen, each full collection did, 50-90 ms
    in the receiver's ACK path). A young generation of ``YOUNG_GENERATION``
    objects instead of 700 lets most of a signal's objects (alive until its
    ACK, 15-100 ms) die before a collection sees them, so fewer reach the older
    generations, where collections cost the most (docs/benchmarks.md,
    "The garbage collector").
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, middle, old)


def stop_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGTERM when ``parent_pid`` dies (``arc up`` killed with -9).

    Without it a killed ``arc up`` leaves its receiver holding the DC-09 port.
    Linux only; elsewhere the child outlives its parent as any process does.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    if os.getppid() != parent_pid:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


class BrokerErrorsAsWarnings(logging.Filter):
    """aiokafka's errors at WARNING: for the services of ``arc up``'s embedded broker.

    ``arc up`` replaces that broker on purpose (about once a minute under load,
    arc.embedded.rotation) and reports its failures itself, at ERROR ("the
    embedded broker died"). Each replacement made every service's aiokafka
    log its lost connection at ERROR, about 15 lines, for nothing amiss.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and record.name.startswith("aiokafka"):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_logging(name: str, *, embedded_broker: bool = False) -> None:
    """Log lines on stderr, each with the service's name (``arc up`` relays them)."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s",
    )
    # aiokafka reports every reconnection attempt at ERROR: one line a retry is enough.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    if embedded_broker:
        for handler in logging.getLogger().handlers:
            handler.addFilter(BrokerErrorsAsWarnings())
