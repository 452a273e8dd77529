"""Codec benchmark: DC-09 frames decoded and answered per second on one core.

ARC's sans-I/O receiver (split, CRC, decrypt, parse, classify, build the
ACK) against pysiaalarm's parser and response builder, on the same frames,
in the same process, pinned to one core. Both must ACK every frame, or the
run is void. `make bench` runs it; docs/benchmarks.md records the numbers.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from protocols.dc09 import FrameSplitter, build_frame, format_timestamp
from protocols.dc09_crypto import Dc09Key, encrypt
from protocols.dc09_receiver import AccountSettings, receive
from protocols.errors import Response

KEY_TEXT = "3BD7E66AA9E2F190"  # 16 ASCII characters used as key bytes (Ajax style)
ACCOUNTS = [f"{n:06d}" for n in range(1, 51)]
PAYLOADS = [
    ("SIA-DCS", "#{acct}|Nri1/BA{zone:03d}"),
    ("SIA-DCS", "#{acct}|Nri0/RP0000"),
    ("SIA-DCS", "#{acct}|Nri1/CL{zone:03d}"),
    ("ADM-CID", "#{acct}|1130 01 {zone:03d}"),
    ("ADM-CID", "#{acct}|3401 01 {zone:03d}"),
]


def make_frames(count: int, *, encrypted: bool, now: datetime, seed: int = 9) -> list[bytes]:
    """Realistic frames: 50 panels, burglary/test/arm events, current timestamps."""
    rnd = random.Random(seed)
    key = Dc09Key.parse("ascii:" + KEY_TEXT)
    frames = []
    for n in range(count):
        account = rnd.choice(ACCOUNTS)
        token, template = rnd.choice(PAYLOADS)
        data = template.format(acct=account, zone=rnd.randint(1, 64)).encode()
        tail = b"]" + format_timestamp(now)
        if encrypted:
            sealed = encrypt(data + tail, key, rnd.randbytes)
            body = b'"*%s"%04dL0#%s[%s' % (token.encode(), n % 10000, account.encode(), sealed)
        else:
            body = b'"%s"%04dL0#%s[%s%s' % (token.encode(), n % 10000, account.encode(), data, tail)
        frames.append(build_frame(body))
    return frames


def arc_handler(encrypted: bool, now: datetime) -> Callable[[bytes], bytes]:
    settings = AccountSettings(key=Dc09Key.parse("ascii:" + KEY_TEXT) if encrypted else None)
    table = dict.fromkeys(ACCOUNTS, settings)
    splitter = FrameSplitter()

    def handle(frame: bytes) -> bytes:
        reply = b""
        for chunk in splitter.feed(frame):
            reception = receive(chunk, now=now, accounts=table.get)  # pads as the server makes them
            if reception.response is not Response.ACK:
                raise SystemExit(f"ARC did not ACK {chunk!r}: {reception.error}")
            reply = reception.reply
        return reply

    return handle


def pysiaalarm_handler(encrypted: bool) -> Callable[[bytes], bytes] | None:
    try:
        from pysiaalarm import SIAAccount
        from pysiaalarm.base_server import BaseSIAServer
        from pysiaalarm.utils import Counter
    except ImportError:
        return None
    logging.getLogger("pysiaalarm").setLevel(logging.CRITICAL)
    accounts = {a: SIAAccount(a, KEY_TEXT if encrypted else None) for a in ACCOUNTS}
    server = BaseSIAServer(accounts, Counter())

    def handle(frame: bytes) -> bytes:
        event = server.parse_and_check_event(frame)
        if event is None or event.response is None or event.response.value != "ACK":
            raise SystemExit(f"pysiaalarm did not ACK {frame!r}")
        return event.create_response()

    return handle


def rate(handler: Callable[[bytes], bytes], frames: list[bytes], seconds: float) -> float:
    """Frames per second, the median of three runs of about ``seconds`` each."""
    results = []
    for _ in range(3):
        done = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for frame in frames:
                handler(frame)
            done += len(frames)
        results.append(done / (time.perf_counter() - start))
    return statistics.median(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=2000, help="distinct frames per case")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one timed run")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    now = datetime.now(UTC)
    print(
        f"# codec benchmark, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores (pinned to one), {args.frames} distinct frames, "
        f"median of 3 runs of {args.seconds:g} s"
    )
    print("| case | ARC frames/s | pysiaalarm frames/s | ratio |")
    print("|---|---:|---:|---:|")
    for encrypted in (False, True):
        frames = make_frames(args.frames, encrypted=encrypted, now=now)
        ours = rate(arc_handler(encrypted, now), frames, args.seconds)
        reference = pysiaalarm_handler(encrypted)
        theirs = rate(reference, frames, args.seconds) if reference else float("nan")
        name = "AES-128" if encrypted else "plain"
        print(f"| {name} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
