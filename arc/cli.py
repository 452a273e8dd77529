"""The `arc` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import orjson

from arc.decode import InputProtocol, ReplayOptions, decode
from protocols.dc09_crypto import Dc09Key
from protocols.errors import ProtocolError

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `arc` command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "decode":
        return _decode(parser, args)
    print(
        "arc up: the receive path (DC-09 receiver, broker, log writer) is not built yet; "
        "`arc decode` replays captures today.",
        file=sys.stderr,
    )
    return 2


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
    commands.add_parser("up", help="run the centre (not built yet)")
    return parser


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
