"""The `arc` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import orjson
import uvloop

from arc.accounts import cli as accounts_cli
from arc.auth import cli as auth_cli
from arc.config import Settings
from arc.decode import InputProtocol, ReplayOptions, decode
from arc.dispatch import cli as dispatch_cli
from arc.guards import cli as guards_cli
from arc.integrity import cli as integrity_cli
from arc.model import BEIJING
from protocols.dc09_crypto import Dc09Key
from protocols.errors import ProtocolError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `arc` command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(parser, args)
    except BrokenPipeError:
        # `arc account list | head`: the reader left; not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "decode":
        return _decode(parser, args)
    if args.command == "account":
        return accounts_cli.run(args)
    if args.command in integrity_cli.COMMANDS:
        return integrity_cli.run(args)
    if args.command in guards_cli.COMMANDS:
        return guards_cli.run(args)
    if args.command in auth_cli.COMMANDS:
        return auth_cli.run(args)
    if args.command in dispatch_cli.COMMANDS:
        return dispatch_cli.run(args)
    if args.command in ("up", "receiver", "logwriter", "dispatcher", "console"):
        return _serve(parser, args)
    parser.error(f"unknown command {args.command}")  # pragma: no cover - argparse checks


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arc", description="ARC alarm-receiving centre")
    commands = parser.add_subparsers(dest="command", required=True)
    decode_cmd = commands.add_parser(
        "decode",
        help="decode raw signals and print one JSON object per message",
        description=(
            "Decode a DC-09 stream (or log lines), Contact ID lines, SIA DC-03 blocks or an "
            "IoT-platform JSON push. Every account counts as served; give keys for encrypted "
            "ones. Exit status 0 only when every message decoded."
        ),
    )
    decode_cmd.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="ACCOUNT=hex:KEY|ascii:KEY",
        help="AES key of an account, as hex bytes or as the ASCII text typed into the panel",
    )
    decode_cmd.add_argument(
        "--protocol", choices=[p.value for p in InputProtocol], default=InputProtocol.AUTO.value
    )
    decode_cmd.add_argument(
        "--now",
        metavar="TIME",
        help="receiver time for the timestamp window, ISO 8601 (default: now; "
        "without an offset it is Beijing time)",
    )
    decode_cmd.add_argument("file", nargs="?", default="-", help="input file, - for stdin")
    up_cmd = commands.add_parser(
        "up",
        help="run the whole centre: embedded PostgreSQL and broker unless configured",
        description=(
            "Start the centre: embedded PostgreSQL (data under --data-dir) and broker unless "
            "ARC_DATABASE_URL / ARC_KAFKA_BOOTSTRAP are set, migrations, the log writer and "
            "the DC-09 receiver. Prints one line per endpoint; Ctrl-C or SIGTERM stops it."
        ),
    )
    up_cmd.add_argument("--data-dir", help="where the embedded servers keep their data")
    up_cmd.add_argument("--dc09-port", type=int, help="DC-09 TCP and UDP port (0: any free)")
    up_cmd.add_argument("--http-port", type=int, help="console/API port (0: any free)")
    up_cmd.add_argument("--demo", action="store_true", help="seed demo accounts")
    for name, text in (
        ("receiver", "run the DC-09 receiver alone (TCP and UDP)"),
        ("logwriter", "run the log writer alone (Kafka to PostgreSQL)"),
        ("dispatcher", "run the dispatcher alone (signals to incidents)"),
        ("console", "run the operator console and its API alone (HTTP)"),
    ):
        service = commands.add_parser(name, help=text, description=text + ".")
        # Set by arc up for its children: stop when it dies, even by SIGKILL.
        service.add_argument("--stop-with-parent", type=int, help=argparse.SUPPRESS)
        # Set by arc up when the broker is its embedded one (arc.process.BrokerErrorsAsWarnings).
        service.add_argument("--embedded-broker", action="store_true", help=argparse.SUPPRESS)
        if name in ("logwriter", "dispatcher"):
            service.add_argument(
                "--all-partitions",
                action="store_true",
                help=f"take every partition, without a consumer group (a centre with one "
                f"{name}; copies side by side must not use it)",
            )
    accounts_cli.add_commands(commands)
    guards_cli.add_commands(commands)
    dispatch_cli.add_commands(commands)
    integrity_cli.add_commands(commands)
    auth_cli.add_commands(commands)
    return parser


def _serve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run ``arc up`` or one service until it is told to stop."""
    from pydantic import ValidationError

    from arc.process import configure_logging, settle_heap, stop_with_parent

    overrides: dict[str, object] = {}
    for flag in ("data_dir", "dc09_port", "http_port"):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[flag] = value
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]  # validated by pydantic
    except ValidationError as error:
        parser.error(f"settings: {error}")
    configure_logging(args.command, embedded_broker=getattr(args, "embedded_broker", False))
    if getattr(args, "stop_with_parent", None):
        stop_with_parent(args.stop_with_parent)

    settled = False

    def announce(line: str) -> None:
        nonlocal settled
        if not settled:  # its first line: the service is ready
            settle_heap()
            settled = True
        print(line, flush=True)

    # uvloop: the services spend most of their time in the event loop, which
    # it runs several times faster than asyncio's own.
    return int(uvloop.run(_run_service(args.command, settings, args, announce)))


async def _run_service(
    command: str, settings: Settings, args: argparse.Namespace, announce: Callable[[str], None]
) -> int:
    from arc.process import stop_event

    if command == "up":
        from arc.up import run_up

        return await run_up(settings, demo=args.demo, announce=announce)
    stop = stop_event()
    if command == "receiver":
        from arc.ingest.service import run_receiver

        await run_receiver(settings, stop, announce=announce)
    elif command == "console":
        from arc.console.service import run_console

        await run_console(settings, stop, announce=announce)
    elif command == "dispatcher":
        from arc.dispatch.service import run_dispatcher

        await run_dispatcher(settings, stop, announce=announce, all_partitions=args.all_partitions)
    else:
        from arc.logwriter.service import run_logwriter

        await run_logwriter(settings, stop, announce=announce, all_partitions=args.all_partitions)
    return 0


def _decode(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    keys: dict[str, Dc09Key] = {}
    for item in args.key:
        account, sep, spec = item.partition("=")
        if not sep or not account:
            parser.error(f"--key {item!r}: write ACCOUNT=hex:KEY or ACCOUNT=ascii:KEY")
        try:
            keys[account] = Dc09Key.parse(spec)
        except ProtocolError as error:
            parser.error(f"--key for account {account}: {error.reason}")
    now = datetime.now(UTC)
    if args.now:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            parser.error(f"--now {args.now!r} is not an ISO 8601 time")
        if now.tzinfo is None:
            now = now.replace(tzinfo=BEIJING)
    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            with open(args.file, "rb") as handle:
                data = handle.read()
        except OSError as error:
            parser.error(f"cannot read {args.file}: {error.strerror}")
    options = ReplayOptions(now=now, keys=keys)
    all_ok = True
    count = 0
    out = sys.stdout.buffer
    for record in decode(data, InputProtocol(args.protocol), options):
        out.write(orjson.dumps(record) + b"\n")
        all_ok = all_ok and bool(record["ok"])
        count += 1
    out.flush()
    if count == 0:
        print("arc decode: no message found in the input", file=sys.stderr)
        return 1
    return 0 if all_ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
