"""pysiaalarm's asyncio receiver as a reference to measure ARC against.

Serves the simulator's accounts (``PREFIX00001``...) over TCP and UDP on the
same port number on a loopback address, with the AES key when asked, and a
no-op event callback: what is measured is pysiaalarm's receive path
(parse, check, decrypt, answer), not what a user would do with the events.

    python -m loadtest.pysia_reference --port 9000 --panels 50 [--aes]

Once listening it prints one JSON line (``{"ready": true, "tcp_port": ...,
"udp_port": ...}``) on stdout and runs until SIGTERM or SIGINT (or
``--max-seconds``, so that a forgotten one does not live on).

pysiaalarm only reads hexadecimal accounts (its header regex), takes the key
as ASCII characters, and writes the receiver field of its answers as the
Python value: ``"ACK"0001NoneL0#...`` when the panel sent no ``R`` field (its
issue #88). So senders should use a hex account prefix and an ``R`` field.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from pysiaalarm.account import SIAAccount
from pysiaalarm.aio.client import SIAClient, SIAClientTCP
from pysiaalarm.aio.server import SIAServerUDP
from pysiaalarm.event import SIAEvent
from pysiaalarm.utils.counter import Counter
from pysiaalarm.utils.enums import CommunicationsProtocol

from loadtest.simulator import DEFAULT_KEY, account_ids, check_loopback

_BIND_ATTEMPTS = 10  # for a port number free for both TCP and UDP
_STOP_SECONDS = 5.0


async def _ignore(event: SIAEvent) -> None:
    """The event callback: nothing, so that only the receive path is measured."""


def reference_accounts(prefix: str, panels: int, key: str | None) -> list[SIAAccount]:
    """pysiaalarm accounts for the simulator's panels; ``key`` is ``ascii:...`` or None."""
    if not all(c in "0123456789ABCDEFabcdef" for c in prefix):
        raise ValueError(f"pysiaalarm only reads hexadecimal accounts; prefix {prefix!r} is not")
    text = None
    if key is not None:
        kind, _, text = key.partition(":")
        if kind != "ascii" or len(text) not in (16, 24, 32):
            raise ValueError("pysiaalarm takes the key as 16, 24 or 32 ASCII characters: ascii:...")
    return [SIAAccount(account, text) for account in account_ids(prefix, panels)]


class _UdpServer(SIAServerUDP):
    """pysiaalarm's UDP server, able to start on Python 3.11.

    Its ``connection_made`` asserts that the transport is an
    ``asyncio.DatagramTransport``, which the selector loop's datagram
    transport only is from Python 3.12 on; the assertion kills the callback
    and the server never answers. Only that glue is replaced: every datagram
    still goes through pysiaalarm's own ``datagram_received``.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)


@dataclass
class ReferenceServer:
    """A running pysiaalarm receiver."""

    host: str
    tcp_port: int | None
    udp_port: int | None
    _tcp: SIAClient | None
    _udp: asyncio.DatagramTransport | None

    async def close(self) -> None:
        """Stop listening; bounded, since pysiaalarm's TCP handlers run on their own."""
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_STOP_SECONDS):
                    await self._tcp.async_stop()


def _client(
    protocol: CommunicationsProtocol, host: str, port: int, accounts: list[SIAAccount]
) -> SIAClient:
    # SIAClient.__new__ picks the subclass from ``protocol``; calling a
    # subclass directly does not work (it looks among the subclass's own).
    return SIAClient(host, port, accounts, _ignore, protocol=protocol)  # type: ignore[abstract]


async def _start_udp(host: str, port: int, accounts: list[SIAAccount]) -> asyncio.DatagramTransport:
    # What SIAClientUDP.async_start does, with the server class above.
    server = _UdpServer({account.account_id: account for account in accounts}, _ignore, Counter())
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: server, local_addr=(host, port)
    )
    return transport


async def serve(
    host: str, port: int, accounts: list[SIAAccount], *, tcp: bool = True, udp: bool = True
) -> ReferenceServer:
    """Start pysiaalarm's TCP and/or UDP server; ``port`` 0 picks a free one for both."""
    host = check_loopback(host)
    for _attempt in range(_BIND_ATTEMPTS):
        tcp_client = udp_client = None
        tcp_port = udp_port = None
        try:
            if tcp:
                tcp_client = _client(CommunicationsProtocol.TCP, host, port, accounts)
                await tcp_client.async_start()
                if not isinstance(tcp_client, SIAClientTCP) or tcp_client.server is None:
                    raise RuntimeError("pysiaalarm did not start a TCP server")
                tcp_port = tcp_client.server.sockets[0].getsockname()[1]
            if udp:
                # The number TCP got, so one port serves both; UDP may find it taken.
                udp_client = await _start_udp(host, tcp_port or port, accounts)
                udp_port = udp_client.get_extra_info("sockname")[1]
        except OSError:
            if tcp_client is not None:
                await tcp_client.async_stop()
            if port != 0:
                raise
            continue
        return ReferenceServer(host, tcp_port, udp_port, tcp_client, udp_client)
    raise OSError(f"no port free for both TCP and UDP in {_BIND_ATTEMPTS} attempts")


async def _main_async(args: argparse.Namespace) -> int:
    accounts = reference_accounts(args.account_prefix, args.panels, args.key if args.aes else None)
    server = await serve(
        args.host,
        args.port,
        accounts,
        tcp=args.transport in ("tcp", "both"),
        udp=args.transport in ("udp", "both"),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(
        json.dumps({"ready": True, "tcp_port": server.tcp_port, "udp_port": server.udp_port}),
        flush=True,
    )
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.max_seconds or None):
                await stop.wait()
    finally:
        await server.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.pysia_reference",
        description="pysiaalarm's asyncio DC-09 receiver serving the simulator's accounts.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, required=True, help="TCP and UDP port; 0 = any free")
    parser.add_argument("--panels", type=int, default=50, help="accounts to serve")
    parser.add_argument("--account-prefix", default="A", help="hex digits; accounts PREFIX00001…")
    parser.add_argument("--aes", action="store_true", help="serve the accounts with the key")
    parser.add_argument("--key", default=DEFAULT_KEY, help="ascii:<16|24|32 characters>")
    parser.add_argument("--transport", choices=("tcp", "udp", "both"), default="both")
    parser.add_argument(
        "--max-seconds", type=float, default=0.0, help="exit after this long (0: never)"
    )
    args = parser.parse_args(argv)
    try:
        check_loopback(args.host)
        reference_accounts(args.account_prefix, 1, args.key if args.aes else None)
    except ValueError as error:
        parser.error(str(error))
    # pysiaalarm logs every refused line at WARNING: under load that is the
    # cost being measured, so keep its logging out of the way.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pysiaalarm").setLevel(logging.CRITICAL)
    return asyncio.run(_main_async(args))


if __name__ == "__main__":
    sys.exit(main())
