"""`arc decode` as an operator runs it: a real process, real files, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from arc.decode import InputProtocol, ReplayOptions, decode
from protocols.dc09 import build_frame, format_timestamp
from protocols.dc09_crypto import Dc09Key, encrypt

AJAX = "3BD7E66AA9E2F190"
ENCRYPTED_TEST = (
    '85DF0078"*SIA-DCS"4480L0#EA1984[83F153789366885D5F83DD5A8D19F691DE6602D5D7134'
    "2E244C040C5D10D89040444068312750F38DF7E63AD3DE8AD5A"
)


def arc(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "arc.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def records(result: subprocess.CompletedProcess[bytes]) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_decode_a_log_file_of_frames(tmp_path: Path) -> None:
    log = tmp_path / "panel.log"
    log.write_text(
        '14AB0039"SIA-DCS"0006L0#AAA[#AAA|Nri0/RP0000]_09:12:30,02-20-2023\n'
        '7449003F"ADM-CID"0078R1L0#AAAA[#00AAAA|3407 01 001]_01:59:16,09-21-2023\n'
    )
    result = arc("decode", str(log))
    assert result.returncode == 0, result.stderr
    first, second = records(result)
    assert (first["code"], first["response"], first["partition"]) == ("RP", "ACK", "0")
    assert (second["cid_event"], second["qualifier"], second["user"]) == ("407", "restore", "001")
    assert second["data_account"] == "00AAAA"


def test_decode_encrypted_with_an_ascii_key_and_a_clock() -> None:
    result = arc(
        "decode",
        "--key",
        f"EA1984=ascii:{AJAX}",
        "--now",
        "2020-08-12T00:57:25",  # Beijing time, 5 s after the panel's UTC stamp
        stdin=b"\n" + ENCRYPTED_TEST.encode() + b"\r",
    )
    assert result.returncode == 0, result.stderr
    (record,) = records(result)
    assert (record["encrypted"], record["code"], record["response"]) == (True, "RP", "ACK")
    assert record["drift_seconds"] == -5.0


def test_encrypted_without_key_fails_with_reason_and_status_1() -> None:
    result = arc("decode", stdin=b"\n" + ENCRYPTED_TEST.encode() + b"\r")
    assert result.returncode == 1
    (record,) = records(result)
    assert record["ok"] is False and record["response"] == "DUH"
    assert "has no key" in str(record["error"])


def test_contact_id_and_json_are_detected() -> None:
    cid = arc("decode", stdin=b"1234181130010019\n")
    assert records(cid)[0]["protocol"] == "cid" and cid.returncode == 0
    push = b'{"at":1553224749838,"imei":"866971030389733","type":2,"dev_id":5,"status":0}'
    onenet = arc("decode", "--protocol", "json", stdin=push)
    (record,) = records(onenet)
    assert (record["protocol"], record["code"], record["account"]) == (
        "onenet",
        "YC",
        "866971030389733",
    )


def test_garbage_is_reported_not_crashed_on() -> None:
    result = arc("decode", stdin=b"\x00\xff garbage \x81\n")
    assert result.returncode == 1
    assert all(record["ok"] is False and record["error"] for record in records(result))


def test_empty_input_says_so() -> None:
    result = arc("decode", stdin=b"")
    assert result.returncode == 1 and b"no message found" in result.stderr


def test_usage_errors_name_the_problem(tmp_path: Path) -> None:
    bad_key = arc("decode", "--key", "EA1984=ascii:short", stdin=b"")
    assert bad_key.returncode == 2 and b"16, 24 or 32 bytes" in bad_key.stderr
    assert b"ACCOUNT=hex:KEY" in arc("decode", "--key", "nokey", stdin=b"").stderr
    assert b"not an ISO 8601" in arc("decode", "--now", "yesterday", stdin=b"").stderr
    missing = arc("decode", str(tmp_path / "missing.log"))
    assert missing.returncode == 2 and b"cannot read" in missing.stderr


NOW = datetime(2024, 1, 25, 11, 2, 40, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(list(InputProtocol)))
def test_decode_never_raises(data: bytes, protocol: InputProtocol) -> None:
    for record in decode(data, protocol, ReplayOptions(now=NOW)):
        assert isinstance(record["ok"], bool)
        assert record["ok"] or record["error"]


def test_key_from_the_command_line_decrypts_our_own_frames() -> None:
    key = Dc09Key.parse("hex:000102030405060708090A0B0C0D0E0F")
    sealed = encrypt(b"#1234|Nri1/FA2]" + format_timestamp(NOW), key, bytes)
    frame = build_frame(b'"*SIA-DCS"0001L0#1234[' + sealed)
    (record,) = decode(frame, InputProtocol.AUTO, ReplayOptions(now=NOW, keys={"1234": key}))
    assert (record["code"], record["event_class"], record["zone"]) == ("FA", "fire", "2")
