"""Every capture of tests/captures/corpus.json replayed as a golden case.

The replay goes through `arc decode`'s engine, and each decoded message is
checked against what the capture's source says it means (``expected``). A
capture whose CRC or checksum was made by hand, or edited by whoever posted
it, is answered as the protocol says (NAK, DUH), never "fixed"; those are
listed below with their reasons, as are the few places where we read a
capture differently from its source, and why.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from arc.decode import InputProtocol, ReplayOptions, decode
from protocols.dc09_crypto import Dc09Key, KeyFormat

CORPUS = json.loads((Path(__file__).parent / "captures" / "corpus.json").read_text("utf-8"))

_HAND_MADE_CRC = "test fixture whose CRC was made by hand"
_REDACTED = "field capture edited by its reporter (redacted text), so its CRC fails"
_LENGTH = "pysiaalarm fixture with a valid CRC but a wrong length field"
_NO_KEY = "encrypted capture whose key is not public"

# index -> (response, error fragment, why). Every other entry must decode.
REFUSED: dict[int, tuple[str | None, str, str]] = {
    0: ("NAK", "CRC mismatch", _HAND_MADE_CRC),
    1: ("NAK", "CRC mismatch", _HAND_MADE_CRC),
    2: ("NAK", "CRC mismatch", _HAND_MADE_CRC),
    4: ("NAK", "length field", _LENGTH),
    5: ("NAK", "length field", _LENGTH),
    6: ("NAK", "length field", "edited fixture (header account changed): length no longer fits"),
    7: ("DUH", "has no key", _NO_KEY),
    8: ("NAK", "length field", _LENGTH),
    9: ("NAK", "CRC mismatch", _HAND_MADE_CRC),
    10: ("NAK", "CRC mismatch", "its source records the bad CRC itself"),
    13: ("NAK", "CRC mismatch", "bad-CRC test vector"),
    15: ("NAK", "CRC mismatch", "'0101' is an Osborne-Hoffman pseudo-CRC"),
    16: ("DUH", "has no key", _NO_KEY),
    17: ("DUH", "has no key", _NO_KEY),
    18: ("NAK", "CRC mismatch", _REDACTED),
    19: ("NAK", "CRC mismatch", _REDACTED),
    20: ("NAK", "CRC mismatch", _REDACTED),
    38: ("NAK", "CRC mismatch", _REDACTED),
    46: ("NAK", "CRC mismatch", "a broken ACK from another receiver"),
    48: ("NAK", "no ID token", "Osborne-Hoffman heartbeat on a DC-09 port"),
    49: ("NAK", "CRC mismatch", "'0101' is an Osborne-Hoffman pseudo-CRC"),
    50: ("DUH", "has no key", _NO_KEY),
    51: ("DUH", "has no key", _NO_KEY),
    53: ("NAK", "no ID token", "documentation sample with typographic quotes, not wire-exact"),
    67: (None, "stream ended inside a block", "the checksum byte is missing from the log"),
    68: ("NAK", "checksum", "the checksum byte was garbled by the log: REJECT block"),
    69: (None, "not framed as a block", "not a DC-03 block by the 0xFF-XOR rule"),
    72: ("NAK", "Fletcher-16", "a 1-character check where Lupusec sends 4 hex digits"),
    74: ("NAK", "checksum digit '_'", "Asterisk spool fixture: '_' stands in for the checksum"),
    75: ("NAK", "checksum digit '_'", "Asterisk spool fixture: '_' stands in for the checksum"),
    76: ("NAK", "checksum digit '_'", "Asterisk spool fixture: '_' stands in for the checksum"),
    77: ("NAK", "checksum digit '_'", "Asterisk spool fixture: '_' stands in for the checksum"),
    78: ("NAK", "got 17", "17 digits: a vendor prefix we cannot verify"),
    92: ("NAK", "without its '[<subscriber>", "Egardia body whose checksum covers the subscriber"),
    93: ("NAK", "without its '[<subscriber>", "Egardia body whose checksum covers the subscriber"),
    94: ("NAK", "without its '[<subscriber>", "Egardia body whose checksum covers the subscriber"),
    95: ("NAK", "without its '[<subscriber>", "Egardia body whose checksum covers the subscriber"),
    97: ("NAK", "hex A is never sent", "synthetic vector with 'A' in the account"),
    98: ("NAK", "checksum mismatch", "synthetic vector, wrong mod-15 digit"),
    99: ("NAK", "checksum mismatch", "synthetic vector, wrong mod-15 digit"),
    100: ("NAK", "hex A is never sent", "synthetic vector with 'A' in the account"),
}

# Where the source's "expected" is itself wrong or lossy: index -> fields to skip, and why.
READ_DIFFERENTLY: dict[int, tuple[set[str], str]] = {
    # The Fletcher-16 of "alarmanlage 18160200000" is C5B7, the last four
    # characters: the source shifted the fields by one (qualifier 8, event 160).
    91: ({"qualifier", "event", "group", "zone_or_user", "checksum_fletcher16"}, "shifted"),
    # CCC 000 means "no user" (DC-05); we report None rather than "000".
    33: ({"user"}, "000 is none"),
    # The corpus reports the data-block account; the header account is primary.
    9: ({"account"}, "refused anyway"),
}

_QUALIFIERS = {"1": "new", "3": "restore", "6": "status", "E (new event)": "new"}


@dataclass(frozen=True)
class Replay:
    data: bytes
    protocol: InputProtocol
    options: ReplayOptions


def replay_of(entry: dict[str, Any]) -> Replay:
    """The bytes as they were on the wire, with the key and clock to read them."""
    raw: str = entry["raw"]
    if entry.get("raw_bytes_hex"):
        data = bytes.fromhex(entry["raw_bytes_hex"])
    elif all(ord(char) < 256 for char in raw):
        data = raw.encode("latin-1")  # binary CRC bytes logged as Latin-1 (OPAX)
    else:
        data = raw.encode("utf-8")  # Hikvision's UTF-8 x-data
    expected = entry["expected"]
    if entry["kind"] == "dc09" and "sent_crc" in expected:
        # Eldes: only the body was logged; put the CRC it sent back in front.
        data = expected["sent_crc"].encode() + b"%04X" % len(data) + data
    if entry["kind"] == "dc09":
        # Loggers lost LF and CR; frames logged on one line are split again.
        frames = re.split(rb' (?=[0-9A-F]{8}")', data.strip(b"\n\r\x00"))
        data = b"".join(b"\n" + frame + b"\r" for frame in frames)
    keys = {}
    if entry.get("key_hex"):
        keys[expected["account"]] = Dc09Key(bytes.fromhex(entry["key_hex"]), KeyFormat.ASCII)
    # The receiver's clock at the message's own time, so that windows hold.
    stamp = re.search(r"(\d\d:\d\d:\d\d,\d\d-\d\d-\d{4})", raw + json.dumps(expected))
    now = datetime(2024, 1, 1, tzinfo=UTC)
    if stamp:
        now = datetime.strptime(stamp.group(1), "%H:%M:%S,%m-%d-%Y").replace(tzinfo=UTC)
    protocol = {
        "dc09": InputProtocol.DC09,
        "contact_id": InputProtocol.AUTO,
        "sia_dc03": InputProtocol.SIA,
        "nbiot_json": InputProtocol.JSON,
    }[entry["kind"]]
    return Replay(data, protocol, ReplayOptions(now=now, keys=keys))


def records_of(entry: dict[str, Any]) -> list[dict[str, Any]]:
    replay = replay_of(entry)
    return list(decode(replay.data, replay.protocol, replay.options))


def _none_if_blank(value: str) -> str | None:
    return None if value.strip("0") == "" and len(value) == 3 else value


def check_expected(record: dict[str, Any], expected: dict[str, Any], skip: set[str]) -> None:
    """Compare a decoded record with what the capture's source says it means."""
    for name, value in expected.items():
        if name in skip or not isinstance(value, str):
            continue
        if name == "account":
            assert value in (record["account"], record.get("data_account")), name
        elif name in ("code", "sequence"):
            assert record[name] == value, name
        elif name == "message_id":
            assert record["message_id"] == value, name
        elif name == "line" and value.startswith("L"):
            assert record["line"] == ("" if "no digits" in value else value[1:]), name
        elif name == "receiver":
            assert record["receiver"] == value.removeprefix("R"), name
        elif name in ("ri", "pi"):
            assert record["partition"] == value, name
        elif name == "qualifier":
            assert record["qualifier"] == _QUALIFIERS[value], name
        elif name == "event":
            assert record["cid_event"] == value[-3:], name
        elif name in ("partition", "group", "area", "gg"):
            assert record["partition"] == (None if value == "00" else value), name
        elif name in ("zone", "zone_or_user", "user"):
            assert _none_if_blank(value) in (record["zone"], record["user"]), name
        elif name == "timestamp":
            stamp = datetime.strptime(value, "%H:%M:%S,%m-%d-%Y").replace(tzinfo=UTC)
            assert record["timestamp"] == stamp.isoformat(), name


@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_corpus_entry(index: int) -> None:
    entry = CORPUS[index]
    records = records_of(entry)
    assert records, "every capture yields at least one record"
    if index in REFUSED:
        response, fragment, _why = REFUSED[index]
        assert not any(record["ok"] for record in records)
        assert records[0]["response"] == response
        assert any(fragment in record["error"] for record in records)
        return
    (record,) = records
    assert record["ok"], record["error"]
    assert record["error"] is None
    skip = READ_DIFFERENTLY.get(index, (set(), ""))[0]
    check_expected(record, entry["expected"], skip)
    if "extended_data" in entry["expected"]:
        for letter, text in entry["expected"]["extended_data"].items():
            if "redacted" not in text and "photo" not in text:
                assert record["xdata"][letter] == text


def test_three_frames_in_one_read_give_three_answers() -> None:
    records = records_of(CORPUS[18])  # Dahua: three frames in one TCP read
    assert len(records) == 3 and all(record["response"] == "NAK" for record in records)


def test_genuine_dc09_captures_are_acked_with_their_events() -> None:
    acked = [i for i, entry in enumerate(CORPUS) if entry["kind"] == "dc09" and i not in REFUSED]
    responses = {i: records_of(CORPUS[i])[0]["response"] for i in acked}
    answers = {26, 27, 45}  # receiver-generated NAKs and an ACK: decoded, never answered
    assert {i for i, r in responses.items() if r is None} == answers
    assert all(r == "ACK" for i, r in responses.items() if i not in answers)
    assert len(acked) - len(answers) == 39


def test_eldes_and_binary_crc_dialects_are_recognised() -> None:
    assert records_of(CORPUS[41])[0]["crc_format"] == "hex+cr"
    assert {records_of(CORPUS[i])[0]["crc_format"] for i in (21, 34, 35, 54)} == {"binary"}


def test_pima_header_and_data_accounts_are_both_kept() -> None:
    (record,) = records_of(CORPUS[32])
    assert (record["account"], record["data_account"]) == ("AAAA", "00AAAA")


def test_ajax_encrypted_capture_decrypts_with_its_ascii_key() -> None:
    (record,) = records_of(CORPUS[14])
    assert (record["code"], record["encrypted"], record["response"]) == ("RP", True, "ACK")


def test_every_refusal_is_documented_against_a_real_entry() -> None:
    assert set(REFUSED) < set(range(len(CORPUS)))
    assert all(why for _, _, why in REFUSED.values())
