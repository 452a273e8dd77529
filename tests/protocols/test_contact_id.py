"""Tests for protocols.contact_id: code table, DC-05 reports, ADM-CID blocks, field forms."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import contact_id as cid
from protocols import contact_id_codes
from protocols.errors import FramingError, IntegrityError, ProtocolError
from protocols.events import Address, AlarmEvent, EventClass, Protocol, Qualifier

CID_ALPHABET = "0123456789BCDEF"
FUZZ = settings(max_examples=250, deadline=None)
ROUND_TRIP = settings(max_examples=100, deadline=None)
QUALIFIERS = {"1": Qualifier.NEW, "3": Qualifier.RESTORE, "6": Qualifier.STATUS}


def digits(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=CID_ALPHABET, min_size=size, max_size=size)


# ---------------------------------------------------------------------------
# Corpus replay: every entry of kind "contact_id" in tests/captures
# ---------------------------------------------------------------------------

# raw -> expected AlarmEvent fields.
CORPUS_DECODED: dict[str, dict[str, object]] = {
    # Ademco serial module, "actual rx data" (tinygo-contactid).
    "AL023418314501000##": {
        "account": "0234",
        "qualifier": Qualifier.RESTORE,
        "cid_event": "145",
        "code": None,
        "event_class": EventClass.TAMPER,
        "partition": "01",
        "zone": None,
        "user": None,
    },
    # Sur-Gard receiver output (Olarm guide).
    "501E-180766E13001002": {
        "account": "0766",
        "qualifier": Qualifier.NEW,
        "cid_event": "130",
        "code": "BA",
        "event_class": EventClass.BURGLARY,
        "partition": "01",
        "zone": "002",
        "user": None,
    },
    # Lupusec (ioBroker.contactid). The corpus "expected" reads this as qualifier 8,
    # event 160, group 20 and checksum 0C5B: shifted by one character. The
    # Fletcher-16 of "alarmanlage 18160200000" is C5B7, the last four characters,
    # which pins the reading to 18 / 1 / 602 / 00 / 000.
    "[alarmanlage 18160200000C5B7]": {
        "account": "alarmanlage",
        "qualifier": Qualifier.NEW,
        "cid_event": "602",
        "code": "RP",
        "event_class": EventClass.TEST,
        "partition": None,
        "zone": None,
        "user": None,
    },
    # The only one of the five app.integrations vectors whose check digit is right.
    "1234181130010019": {
        "account": "1234",
        "qualifier": Qualifier.NEW,
        "cid_event": "130",
        "code": "BA",
        "event_class": EventClass.BURGLARY,
        "partition": "01",
        "zone": "001",
        "user": None,
    },
}

# raw -> (error class, part of the reason).
CORPUS_REFUSED: dict[str, tuple[type[ProtocolError], str]] = {
    # One check character where Lupusec sends a 4-hex Fletcher-16; as a mod-15
    # digit it cannot be checked, the subscriber "test" not being an account.
    "[test 18160201010B]": (FramingError, "4-digit upper-case hex Fletcher-16"),
    # Asterisk spool strings: '_' stands where the check digit belongs.
    "987618140103001_": (FramingError, "checksum digit '_' is not a Contact ID digit"),
    "987618340103001_": (FramingError, "checksum digit '_' is not a Contact ID digit"),
    "987618113003001_": (FramingError, "checksum digit '_' is not a Contact ID digit"),
    "987618057003001_": (FramingError, "checksum digit '_' is not a Contact ID digit"),
    # 17 digits: neither its first nor its last 16 satisfy the mod-15 rule either.
    "21001181131011015\r\n": (FramingError, "has 16 digits (ACCT MT Q XYZ GG CCC S), got 17"),
    # Egardia bodies logged without "[<subscriber> ...]": the checksum covers the
    # missing subscriber.
    "18340000003FB9B": (FramingError, "without its '[<subscriber> ...]' frame"),
    "1834560003449AA": (FramingError, "without its '[<subscriber> ...]' frame"),
    "18160200000029A": (FramingError, "without its '[<subscriber> ...]' frame"),
    "181139000011AA0": (FramingError, "without its '[<subscriber> ...]' frame"),
    # Synthetic vectors claimed valid by their source: hex A, or a wrong check digit.
    "ABCD181100010017": (FramingError, "account digit 'A' is not a Contact ID digit"),
    "1111181120010019": (IntegrityError, "expected '1', got '9'"),
    "1234181601010019": (IntegrityError, "expected '6', got '9'"),
    "ABCD181130010019": (FramingError, "account digit 'A' is not a Contact ID digit"),
    # DC-09 data blocks lifted out of their frame: nothing protects them.
    "[#3333|18113001008]": (FramingError, "DC-09 data block outside a DC-09 frame"),
    "[#2000|18110005002]": (FramingError, "DC-09 data block outside a DC-09 frame"),
}

CORPUS_PATH = Path(__file__).resolve().parents[1] / "captures" / "corpus.json"


def test_replay_cases_cover_every_contact_id_corpus_entry() -> None:
    entries = json.loads(CORPUS_PATH.read_text(encoding="utf-8"))
    raws = {entry["raw"] for entry in entries if entry["kind"] == "contact_id"}
    assert raws == set(CORPUS_DECODED) | set(CORPUS_REFUSED)


@pytest.mark.parametrize("raw", sorted(CORPUS_DECODED))
def test_corpus_entry_decodes(raw: str) -> None:
    event = cid.decode_line(raw)
    assert event.protocol is Protocol.CONTACT_ID
    assert event.raw == raw.encode()
    for name, expected in CORPUS_DECODED[raw].items():
        assert getattr(event, name) == expected, name


@pytest.mark.parametrize("raw", sorted(CORPUS_REFUSED))
def test_corpus_entry_is_refused_as_the_protocol_says(raw: str) -> None:
    error, reason = CORPUS_REFUSED[raw]
    with pytest.raises(error) as caught:
        cid.decode_line(raw)
    assert type(caught.value) is error
    assert reason in caught.value.reason


def test_asterisk_fixtures_carry_the_fields_their_source_expects() -> None:
    # With a real check digit in place of '_' the fields read as the source says.
    event = cid.decode_line("987618140103001" + cid.checksum_digit("987618140103001"))
    assert (event.account, event.qualifier, event.cid_event) == ("9876", Qualifier.NEW, "401")
    assert (event.partition, event.user, event.zone, event.code) == ("03", "001", None, "OP")
    # ...except the one with qualifier 0, which no checksum can make valid.
    with pytest.raises(FramingError, match="qualifier digit '0'"):
        cid.decode_line("987618057003001" + cid.checksum_digit("987618057003001"))


def test_corpus_dc09_blocks_lifted_out_of_frame_parse_as_blocks() -> None:
    assert cid.parse_adm_cid("#3333|18113001008") == cid.AdmCidBlock(
        "3333", "1", "130", "01", "008"
    )
    assert cid.parse_adm_cid("#2000|18110005002") == cid.AdmCidBlock(
        "2000", "1", "100", "05", "002"
    )


# ---------------------------------------------------------------------------
# ADM-CID data blocks from the DC-09 corpus entries
# ---------------------------------------------------------------------------

# block -> (block fields, expected AlarmEvent fields)
ADM_CID_BLOCKS: dict[str, tuple[tuple[str | None, str, str, str, str], dict[str, object]]] = {
    "#12345A|1110 00 129": (
        ("12345A", "1", "110", "00", "129"),
        {"code": "FA", "event_class": EventClass.FIRE, "zone": "129", "partition": None},
    ),
    "#4F39|3401 01 057": (
        ("4F39", "3", "401", "01", "057"),
        {"code": "CL", "qualifier": Qualifier.RESTORE, "user": "057", "zone": None},
    ),
    "#ABC|3450 01 033": (
        ("ABC", "3", "450", "01", "033"),
        {"code": None, "event_class": EventClass.OPEN_CLOSE, "user": "033"},
    ),
    "#ABC|1406 01 033": (("ABC", "1", "406", "01", "033"), {"code": "OC", "user": "033"}),
    "#ABC|1400 01 033": (("ABC", "1", "400", "01", "033"), {"code": "OP", "user": "033"}),
    # Pima: the block account is zero padded, unlike the header's "AAAA".
    "#00AAAA|3407 01 001": (("00AAAA", "3", "407", "01", "001"), {"code": "CQ", "user": "001"}),
    # User 000 is "no specific user" (DC-05), not a user numbered zero.
    "#AAAAAA|3408 01 000": (("AAAAAA", "3", "408", "01", "000"), {"code": "CL", "user": None}),
    # Trikdis: 700 is Hengbo's link hang-up; 99/999 are fillers, not a zone.
    "#9413|1700 99 999": (
        ("9413", "1", "700", "99", "999"),
        {"code": None, "event_class": EventClass.COMMUNICATION, "partition": "99", "zone": "999"},
    ),
    "#9413|1602 99 999": (
        ("9413", "1", "602", "99", "999"),
        {"code": "RP", "event_class": EventClass.TEST, "zone": "999", "user": None},
    ),
    "#123456|1406 01 000": (("123456", "1", "406", "01", "000"), {"code": "OC", "user": None}),
    "#AAAA|3441 01 042": (
        ("AAAA", "3", "441", "01", "042"),
        {"code": "CG", "event_class": EventClass.OPEN_CLOSE, "user": "042", "partition": "01"},
    ),
    "#4F39|1412 00 000": (("4F39", "1", "412", "00", "000"), {"code": "RB", "partition": None}),
    "#AAA|3401 01 070": (("AAA", "3", "401", "01", "070"), {"code": "CL", "user": "070"}),
    # OPAX: the block account has no '#'.
    "10064|1602 00 000": (("10064", "1", "602", "00", "000"), {"code": "RP"}),
    "#21401|1602 00 000": (("21401", "1", "602", "00", "000"), {"code": "RP"}),
    "#XTRM189|1131 01 009": (
        ("XTRM189", "1", "131", "01", "009"),
        {"code": "BA", "event_class": EventClass.BURGLARY, "zone": "009"},
    ),
    "#777|1401 02 501": (("777", "1", "401", "02", "501"), {"code": "OP", "user": "501"}),
    # Hengbo: four-digit "event" 3400 is qualifier 3 + event 400, an arming.
    "#000000|3400 00 000": (("000000", "3", "400", "00", "000"), {"code": "CL"}),
    "#1234|1130 02 001": (("1234", "1", "130", "02", "001"), {"code": "BA", "zone": "001"}),
    # Forms without an account.
    "1130 02 001": ((None, "1", "130", "02", "001"), {"code": "BA"}),
    "|1130 02 001": ((None, "1", "130", "02", "001"), {"code": "BA"}),
    # Conettix receiver form, MT 58 for ten-digit accounts.
    "#1234567890|58113001003": (("1234567890", "1", "130", "01", "003"), {"zone": "003"}),
    "#ABCD|98660201000": (("ABCD", "6", "602", "01", "000"), {"qualifier": Qualifier.STATUS}),
}


@pytest.mark.parametrize("data", sorted(ADM_CID_BLOCKS))
def test_adm_cid_block(data: str) -> None:
    fields, expected = ADM_CID_BLOCKS[data]
    block = cid.parse_adm_cid(data)
    assert block == cid.AdmCidBlock(*fields)
    assert not cid.is_dummy_block(data)
    event = cid.to_event(
        block.event,
        block.qualifier_digit,
        block.partition,
        block.zone_or_user,
        account="HEADER",
        protocol=Protocol.DC09,
        raw=data.encode(),
    )
    assert (event.account, event.protocol, event.cid_event) == (
        "HEADER",
        Protocol.DC09,
        block.event,
    )
    assert event.qualifier is block.qualifier
    for name, value in expected.items():
        assert getattr(event, name) == value, name


@pytest.mark.parametrize("data", ["#0000|0000 00 000", "0000 00 000", "|0000 00 000"])
def test_hikvision_null_filler_is_recognised_not_parsed(data: str) -> None:
    assert cid.is_dummy_block(data)
    with pytest.raises(FramingError, match="qualifier digit '0'.*is_dummy_block"):
        cid.parse_adm_cid(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        # Ajax documentation sample with an escaped '|': not wire-exact.
        ("#1234\\|1130 02 001", "account must be 3-16 letters or digits"),
        ("#|1130 02 001", "account must be 3-16 letters or digits"),
        ("#AB|1130 02 001", "account must be 3-16 letters or digits"),
        ("#AAAA|2130 01 001", "qualifier digit '2' is not 1 (new), 3 (restore) or 6"),
        ("#AAAA|0130 01 001", "qualifier digit '0'"),
        ("#AAAA|17113001008", "message type '17' is not Contact ID (expected 18 or 58 or 98)"),
        ("#AAAA|1130 01 01", "ADM-CID data must be 'QXYZ GG CCC' or '18QXYZGGCCC'"),
        ("#AAAA|1130  01 001", "ADM-CID data must be"),
        ("#AAAA|1130 A1 001", "partition digit 'A' is not a Contact ID digit"),
        ("#AAAA|1 30 01 001", "event digit ' '"),
        ("", "ADM-CID data must be"),
    ],
)
def test_adm_cid_block_refused(data: str, reason: str) -> None:
    with pytest.raises(FramingError) as caught:
        cid.parse_adm_cid(data)
    assert reason in caught.value.reason
    assert not cid.is_dummy_block(data)


def test_dummy_hint_only_for_all_zero_blocks() -> None:
    with pytest.raises(FramingError) as caught:
        cid.parse_adm_cid("#AAAA|0130 01 001")
    assert "is_dummy_block" not in caught.value.reason
    assert not cid.is_dummy_block("#AB|0000 00 000")  # an invalid account is no filler


def assert_block_is_valid(block: cid.AdmCidBlock) -> None:
    """What an ``AdmCidBlock`` may hold; ``parse_adm_cid`` is the one that checks it."""
    assert block.account is None or re.fullmatch(r"[0-9A-Za-z]{3,16}", block.account)
    assert block.qualifier_digit in ("1", "3", "6")
    assert re.fullmatch(r"[0-9B-F]{3}", block.event)
    assert re.fullmatch(r"[0-9B-F]{2}", block.partition)
    assert re.fullmatch(r"[0-9B-F]{3}", block.zone_or_user)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("#A-B-C|1130 01 001", "account must be 3-16 letters or digits"),
        ("#AAAA|1130 01 0A1", "zone/user digit 'A'"),
        ("#AAAA|1A30 01 001", "event digit 'A'"),
        ("#AAAA|18A13001001", "qualifier digit 'A'"),
        ("#AAAA|1130 a1 001", "partition digit 'a'"),
    ],
)
def test_the_parser_checks_every_field_of_the_block(data: str, reason: str) -> None:
    with pytest.raises(FramingError) as caught:
        cid.parse_adm_cid(data)
    assert reason in caught.value.reason


@ROUND_TRIP
@given(st.from_regex(cid._USUAL_BLOCK, fullmatch=True))
def test_usual_block_shortcut_agrees_with_the_field_checks(data: str) -> None:
    block = cid.parse_adm_cid(data)
    assert block == cid._parse_any_block(data)
    assert_block_is_valid(block)


# ---------------------------------------------------------------------------
# The 16-digit DC-05 report
# ---------------------------------------------------------------------------


def test_worked_example_of_section_2_1() -> None:
    assert cid.checksum_digit("123418113001001") == "9"
    message = cid.parse_message("1234 18 1 130 01 001 9")
    assert message == cid.ContactIdMessage("1234", "18", "1", "130", "01", "001", "9")
    assert message.digits == "1234181130010019"
    assert message.qualifier is Qualifier.NEW
    assert cid.encode_message("1234", "1", "130", "01", "001") == "1234181130010019"


def test_checksum_edge_values() -> None:
    # Already a multiple of 15: F, never 0 (0 is worth 10).
    assert cid.checksum_digit("0" * 15) == "F"
    # A remainder of 5 needs a digit worth 10: the digit 0.
    assert cid.checksum_digit("0" * 14 + "F") == "0"
    assert cid.checksum_digit("0" * 14 + "B") == "E"


def test_checksum_mismatch_names_expected_and_received() -> None:
    with pytest.raises(IntegrityError) as caught:
        cid.parse_message("1234181130010018")
    assert caught.value.reason == (
        "Contact ID checksum mismatch: expected '9', got '8' (digit sum 74 is not a multiple of 15)"
    )


def test_message_type_98_accepted_others_refused_with_reason() -> None:
    text = cid.encode_message("BCDE", "3", "401", "02", "015", message_type="98")
    assert cid.parse_message(text).message_type == "98"
    first15 = "123417113001001"
    with pytest.raises(
        FramingError, match=r"message type '17' is not Contact ID \(expected 18 or 98\)"
    ):
        cid.parse_message(first15 + cid.checksum_digit(first15))
    # MT 58 belongs to the block form only.
    with pytest.raises(FramingError, match="message type '58'"):
        cid.encode_message("1234", "1", "130", message_type="58")


@pytest.mark.parametrize("digit", ["0", "2", "5", "9", "F"])
def test_qualifier_other_than_1_3_6_is_named(digit: str) -> None:
    first15 = f"123418{digit}130010001"[:15]
    with pytest.raises(FramingError, match=f"qualifier digit '{digit}' is not 1"):
        cid.parse_message(first15 + cid.checksum_digit(first15))


def test_hex_a_is_reported_as_such() -> None:
    with pytest.raises(FramingError) as caught:
        cid.parse_message("12341811A0010019")
    assert caught.value.reason == (
        "event digit 'A' is not a Contact ID digit (0-9, B-F); hex A is never sent in Contact ID"
    )
    with pytest.raises(FramingError, match="hex A"):
        cid.checksum_digit("A" * 15)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "has 16 digits (ACCT MT Q XYZ GG CCC S), got 0"),
        ("123418113001001", "got 15"),
        ("1" * 60, "got 60: '" + "1" * 40 + "'..."),
        ("1234181130010019\n", "got 17"),
    ],
)
def test_parse_message_refuses_malformed_text(text: str, reason: str) -> None:
    with pytest.raises(FramingError) as caught:
        cid.parse_message(text)
    assert reason in caught.value.reason


def test_encode_message_refuses_bad_fields() -> None:
    with pytest.raises(FramingError, match="account must be 4"):
        cid.encode_message("12345", "1", "130")
    with pytest.raises(FramingError, match="account digit 'A'"):
        cid.encode_message("A234", "1", "130")
    with pytest.raises(FramingError, match="qualifier digit '5'"):
        cid.encode_message("1234", "5", "130")


def test_verify_checksum_and_frozen_message() -> None:
    cid.verify_checksum("1234181130010019")
    with pytest.raises(FramingError, match="message must be 16"):
        cid.verify_checksum("123")
    message = cid.parse_message("1234181130010019")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.event = "131"  # type: ignore[misc]


@st.composite
def reports(draw: st.DrawFn) -> tuple[str, str, str, str, str, str]:
    return (
        draw(digits(4)),
        draw(st.sampled_from(["18", "98"])),
        draw(st.sampled_from("136")),
        draw(digits(3)),
        draw(digits(2)),
        draw(digits(3)),
    )


@ROUND_TRIP
@given(reports())
def test_encode_parse_round_trip(fields: tuple[str, str, str, str, str, str]) -> None:
    account, message_type, qualifier, event, partition, zone = fields
    text = cid.encode_message(account, qualifier, event, partition, zone, message_type=message_type)
    message = cid.parse_message(text)
    assert message.digits == text
    assert (message.account, message.message_type, message.qualifier_digit) == fields[:3]
    assert (message.event, message.partition, message.zone_or_user) == fields[3:]
    # The printed, spaced form reads the same.
    spaced = " ".join(
        [text[:4], text[4:6], text[6], text[7:10], text[10:12], text[12:15], text[15]]
    )
    assert cid.parse_message(spaced) == message


@ROUND_TRIP
@given(digits(15))
def test_any_fifteen_digits_plus_checksum_verify(first15: str) -> None:
    check = cid.checksum_digit(first15)
    assert check in CID_ALPHABET
    cid.verify_checksum(first15 + check)
    total = sum(10 if c == "0" else int(c, 16) for c in first15 + check)
    assert total % 15 == 0


@ROUND_TRIP
@given(digits(15), st.integers(0, 15), st.sampled_from(CID_ALPHABET))
def test_a_single_changed_digit_never_verifies(first15: str, index: int, new: str) -> None:
    good = first15 + cid.checksum_digit(first15)
    if good[index] == new:
        new = CID_ALPHABET[(CID_ALPHABET.index(new) + 1) % len(CID_ALPHABET)]
    bad = good[:index] + new + good[index + 1 :]
    with pytest.raises(IntegrityError):
        cid.verify_checksum(bad)
    # Integrity is checked before meaning: a changed MT or qualifier digit is
    # reported as corruption, not as an unknown message type.
    with pytest.raises(IntegrityError):
        cid.parse_message(bad)


# ---------------------------------------------------------------------------
# Field transport variants
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"", 0x0000),
        (b"abcde", 0xC3EF),
        (b"\xff" * 300, 0xA2D4),
        (b"alarmanlage 18160200000", 0xC5B7),
        (b"alarmanlage 18140101001", 0xB4B6),
    ],
)
def test_fletcher16(data: bytes, value: int) -> None:
    assert cid.fletcher16(data) == value


def test_lupusec_fletcher_is_mod_256_not_the_textbook_mod_255() -> None:
    def textbook(data: bytes) -> int:
        low = high = 0
        for byte in data:
            low = (low + byte) % 255
            high = (high + low) % 255
        return high << 8 | low

    assert textbook(b"abcde") == 0xC8F0  # the published Fletcher-16 test vector
    sample = b"alarmanlage 18160200000"
    assert textbook(sample) != 0xC5B7 == cid.fletcher16(sample)


def test_lupusec_second_sample_from_iobroker_source() -> None:
    event = cid.decode_line("[alarmanlage 18140101001B4B6]")
    assert (event.qualifier, event.cid_event, event.user, event.code) == (
        Qualifier.NEW,
        "401",
        "001",
        "OP",
    )


@pytest.mark.parametrize(
    ("line", "error", "reason"),
    [
        ("[alarmanlage 18160200000C5B8]", IntegrityError, "expected C5B7, got C5B8"),
        ("[alarmanlage 18160200000c5b7]", FramingError, "Fletcher-16"),
        ("[alarmanlage 18160200000C5B7", FramingError, "does not close with ']'"),
        ("[]", FramingError, "needs '[<subscriber> <event>]'"),
        ("[alarmanlage]", FramingError, "needs '[<subscriber> <event>]'"),
        ("[ 18160200000C5B7]", FramingError, "needs '[<subscriber> <event>]'"),
        ("[报警 18160200000C5B7]", FramingError, "subscriber must be printable ASCII"),
        ("[hello world]", FramingError, "event part (18QXYZGGCCC) digit 'w'"),
        ("[x 181602000]", FramingError, "event part (18QXYZGGCCC) must be 11"),
    ],
)
def test_lupusec_frame_refused(line: str, error: type[ProtocolError], reason: str) -> None:
    with pytest.raises(error) as caught:
        cid.decode_line(line)
    assert type(caught.value) is error
    assert reason in caught.value.reason


def lupusec(subscriber: str, event_part: str) -> str:
    body = f"{subscriber} {event_part}"
    return f"[{body}{cid.fletcher16(body.encode()):04X}]"


def test_lupusec_meaning_checked_after_integrity() -> None:
    with pytest.raises(FramingError, match="message type '17'"):
        cid.decode_line(lupusec("home", "17160200000"))
    with pytest.raises(FramingError, match="qualifier digit '8'"):
        cid.decode_line(lupusec("home", "18860200000"))


SUBSCRIBERS = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="[]|"),
    min_size=1,
    max_size=30,
).filter(lambda text: text.strip() != "")


@ROUND_TRIP
@given(SUBSCRIBERS, reports())
def test_lupusec_round_trip(subscriber: str, fields: tuple[str, str, str, str, str, str]) -> None:
    _, message_type, qualifier, event, partition, zone = fields
    line = lupusec(subscriber, message_type + qualifier + event + partition + zone)
    decoded = cid.decode_line(line)
    assert decoded.account == subscriber.strip()
    assert (decoded.cid_event, decoded.qualifier) == (event, QUALIFIERS[qualifier])


def test_surgard_restore_and_refusals() -> None:
    event = cid.decode_line("501E-180766R13001002")
    assert (event.qualifier, event.code, event.zone) == (Qualifier.RESTORE, "BH", "002")
    cases = [
        ("501E-180766X13001002", "Sur-Gard qualifier 'X' is not E (new) or R (restore)"),
        ("50G1-180766E13001002", "receiver id must be 1-8 hex digits, got '50G1'"),
        ("-180766E13001002", "receiver id must be 1-8 hex digits"),
        ("501E-180766E1300100", "(15 characters), got 14"),
        ("501E-170766E13001002", "message type '17' is not Contact ID"),
        ("501E-180A66E13001002", "account digit 'A'"),
        ("501E-180766E1A001002", "event digit 'A'"),
    ]
    for line, reason in cases:
        with pytest.raises(FramingError) as caught:
            cid.decode_line(line)
        assert reason in caught.value.reason, line


def test_ademco_serial_forms_and_refusals() -> None:
    documented = cid.decode_line("AL00123418162701000##\r\n")
    assert (documented.account, documented.cid_event, documented.code) == ("1234", "627", "LB")
    assert documented.raw == b"AL00123418162701000##\r\n"
    cases = [
        ("AL023418314501000", "must end with '##'"),
        ("AL0234183145010000##", "got 'AL0234183145010000##'"),
        ("AL11023418314501000##", "'AL' or 'AL00', 15 digits"),
        ("AL0A3418314501000##", "account digit 'A'"),
        ("AL023417314501000##", "message type '17'"),
        ("AL023418214501000##", "qualifier digit '2'"),
    ]
    for line, reason in cases:
        with pytest.raises(FramingError) as caught:
            cid.decode_line(line)
        assert reason in caught.value.reason, line


def test_plain_line_with_spaces_and_terminators() -> None:
    event = cid.decode_line(" 1234 18 1 130 01 001 9\r\n")
    assert (event.account, event.cid_event, event.zone) == ("1234", "130", "001")


@pytest.mark.parametrize("line", ["", "\r\n", "   "])
def test_empty_line_refused(line: str) -> None:
    with pytest.raises(FramingError, match="empty line"):
        cid.decode_line(line)


LINE_PIECES = st.sampled_from(
    ["[", "]", "|", "#", "-", "AL", "00", "##", " ", "18", "98", "E", "R", "A", "_", "\r\n"]
)
NEAR_MISS_LINES = st.lists(
    st.one_of(LINE_PIECES, digits(1), digits(3), digits(4)), max_size=12
).map("".join)


@FUZZ
@given(st.one_of(st.text(max_size=60), NEAR_MISS_LINES))
def test_decode_line_fuzz(text: str) -> None:
    try:
        event = cid.decode_line(text)
    except ProtocolError as error:
        assert error.reason
    else:
        assert isinstance(event, AlarmEvent)
        assert event.raw == text.encode()


@FUZZ
@given(st.one_of(st.text(max_size=40), NEAR_MISS_LINES))
def test_parse_adm_cid_fuzz(text: str) -> None:
    dummy = cid.is_dummy_block(text)
    try:
        block = cid.parse_adm_cid(text)
    except ProtocolError as error:
        assert error.reason
    else:
        assert isinstance(block, cid.AdmCidBlock)
        assert_block_is_valid(block)
        assert not dummy


@ROUND_TRIP
@given(digits(4), st.sampled_from("136"), digits(3), digits(2), digits(3))
def test_any_well_formed_block_becomes_an_event(
    account: str, qualifier: str, event: str, partition: str, zone: str
) -> None:
    block = cid.parse_adm_cid(f"#{account}|{qualifier}{event} {partition} {zone}")
    alarm = cid.to_event(
        block.event,
        block.qualifier_digit,
        block.partition,
        block.zone_or_user,
        account=account,
        protocol=Protocol.DC09,
        raw=b"",
    )
    # Unknown events are kept, unclassified, never refused.
    assert alarm.unclassified == (cid.lookup(event) is None)


# ---------------------------------------------------------------------------
# to_event
# ---------------------------------------------------------------------------


def test_unknown_event_is_kept_unclassified() -> None:
    event = cid.to_event(
        "160", "1", "02", "007", account="1234", protocol=Protocol.CONTACT_ID, raw=b"x"
    )
    assert event.unclassified
    assert (event.event_class, event.code, event.cid_event) == (None, None, "160")
    assert (event.zone, event.user, event.partition) == ("007", None, "02")


def test_status_qualifier_uses_the_new_event_code() -> None:
    when = datetime(2024, 2, 21, 0, 0, 43, tzinfo=UTC)
    event = cid.to_event(
        "301",
        "6",
        "00",
        "000",
        account="1234",
        protocol=Protocol.DC09,
        raw=b"raw",
        device_time=when,
        xdata=(("R", "LivingRoom"),),
    )
    assert (event.qualifier, event.code, event.event_class) == (
        Qualifier.STATUS,
        "AT",
        EventClass.TROUBLE,
    )
    assert (event.zone, event.partition, event.device_time) == (None, None, when)
    assert (event.xdata, event.raw) == ((("R", "LivingRoom"),), b"raw")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("130", "2", "01", "001"), "qualifier digit '2'"),
        (("13", "1", "01", "001"), "event must be 3"),
        (("130", "1", "1", "001"), "partition must be 2"),
        (("130", "1", "01", "00A"), "zone/user digit 'A'"),
    ],
)
def test_to_event_refuses_bad_fields(args: tuple[str, str, str, str], reason: str) -> None:
    with pytest.raises(FramingError) as caught:
        cid.to_event(*args, account="1234", protocol=Protocol.CONTACT_ID, raw=b"")
    assert reason in caught.value.reason


def test_to_event_without_account_is_refused() -> None:
    with pytest.raises(FramingError, match="no account"):
        cid.to_event("130", "1", "01", "001", account="", protocol=Protocol.DC09, raw=b"")


# ---------------------------------------------------------------------------
# The code table
# ---------------------------------------------------------------------------


def span(first: int, last: int) -> set[str]:
    return {str(code) for code in range(first, last + 1)}


SECTION_2_3_CODES = (
    span(100, 102) | span(110, 118) | span(120, 125) | span(130, 147) | span(150, 159)
    | span(161, 163) | span(200, 206) | span(300, 313) | span(320, 327) | span(330, 339)
    | span(341, 344) | span(350, 357) | span(370, 378) | span(380, 389) | span(391, 393)
    | span(400, 409) | span(411, 416) | span(421, 434) | {"441", "442"} | span(450, 459)
    | span(461, 466) | {"501"} | span(520, 527) | {"531", "532"} | span(551, 553)
    | span(570, 577) | span(601, 609) | span(611, 616) | span(621, 632) | {"641", "642"}
    | span(651, 654) | {"900", "901", "902", "910", "911", "999"}
)  # fmt: skip
HIKVISION_CODES = {"148", "149", "750", "948", "949"}
HENGBO_CODES = {"485", "700", "944", "946"} | {str(code) for code in range(707, 818, 10)}


def test_table_holds_section_2_3_and_named_vendor_codes_only() -> None:
    assert set(cid.CID_CODES) == SECTION_2_3_CODES | HIKVISION_CODES | HENGBO_CODES
    assert len(cid.CID_CODES) == 252
    assert len(contact_id_codes._ROWS) == len(cid.CID_CODES)  # no code listed twice
    assert list(cid.CID_CODES) == sorted(cid.CID_CODES)


def test_every_row_is_complete() -> None:
    for code, row in cid.CID_CODES.items():
        assert row.code == code and len(code) == 3
        assert row.name_en and row.new_meaning_zh and row.restore_meaning_zh
        assert any("\u4e00" <= char <= "\u9fff" for char in row.name_zh), code
        for sia in (row.sia_new, row.sia_restore):
            assert sia is None or (len(sia) == 2 and sia.isascii() and sia.isupper()), code


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        cid.CID_CODES["130"] = cid.CID_CODES["131"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cid.CID_CODES["130"].name_zh = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("code", "name_zh", "new", "restore"),
    [
        ("100", "医疗求助", "医疗求助", "医疗求助恢复"),
        ("110", "火警", "火警", "火警恢复"),
        ("120", "紧急报警", "紧急报警", "紧急报警恢复"),
        ("121", "胁迫报警", "胁迫报警", "胁迫报警恢复"),
        ("130", "盗警", "盗警", "盗警恢复"),
        ("137", "防拆报警", "防拆报警", "防拆报警恢复"),
        ("151", "燃气泄漏报警", "燃气泄漏报警", "燃气泄漏报警恢复"),
        ("301", "交流掉电", "交流掉电", "交流复电"),
        ("401", "用户撤布防", "撤防", "布防"),
        ("441", "留守布防", "留守撤防", "留守布防"),
        ("570", "防区旁路", "防区旁路", "解除旁路"),
        ("602", "定期测试", "定期测试", "—"),
        ("700", "链路挂起（恒博）", "链路挂起", "链路恢复"),
        ("750", "钻孔报警（海康）", "钻孔报警", "钻孔报警恢复"),
    ],
)
def test_chinese_names_and_meanings(code: str, name_zh: str, new: str, restore: str) -> None:
    row = cid.lookup(code)
    assert row is not None
    assert (row.name_zh, row.new_meaning_zh, row.restore_meaning_zh) == (name_zh, new, restore)


@pytest.mark.parametrize(
    ("codes", "event_class"),
    [
        (["100", "101", "102"], EventClass.MEDICAL),
        (["110", "111", "112", "113", "114", "115", "116", "117", "118"], EventClass.FIRE),
        (["120", "123"], EventClass.PANIC),
        (["121", "122", "124", "125"], EventClass.HOLDUP),
        (["130", "131", "132", "133", "134", "135", "136", "146", "750"], EventClass.BURGLARY),
        (["137", "144", "145", "383", "461"], EventClass.TAMPER),
        (["151", "162"], EventClass.GAS),
        (["154"], EventClass.WATER),
        (["300", "301", "302", "380", "384"], EventClass.TROUBLE),
        (["350", "351", "354", "381", "700", "944"], EventClass.COMMUNICATION),
        (["400", "401", "402", "403", "407", "408", "409", "441", "456"], EventClass.OPEN_CLOSE),
        (["601", "602", "603", "604", "607", "608"], EventClass.TEST),
        (["570", "627", "707", "999"], EventClass.OTHER),
    ],
)
def test_event_classes(codes: list[str], event_class: EventClass) -> None:
    for code in codes:
        assert cid.CID_CODES[code].event_class is event_class, code


def test_address_user_zone_or_none() -> None:
    users = {"121", "313", "604"} | span(400, 409) | {"441"} | span(450, 459)
    for code in users:
        assert cid.CID_CODES[code].address is Address.USER, code
    for code in ("130", "110", "137", "301", "461", "465", "570", "573"):
        assert cid.CID_CODES[code].address is Address.ZONE, code
    for code in ("602", "608", "700", "944"):
        assert cid.CID_CODES[code].address is Address.NONE, code
    # Only the three addresses Contact ID distinguishes are used.
    assert {row.address for row in cid.CID_CODES.values()} == {
        Address.USER,
        Address.ZONE,
        Address.NONE,
    }


@pytest.mark.parametrize(
    ("codes", "new", "restore"),
    [
        (["121", "122", "124", "125"], "HA", "HH"),
        (["137", "144"], "TA", "TR"),
        (["143"], "ET", "ER"),
        (["150"], "UA", "UH"),
        (["158"], "KA", "KH"),
        (["159"], "ZA", "ZH"),
        (["151", "162"], "GA", "GH"),
        (["301"], "AT", "AR"),
        (["302", "309"], "YT", "YR"),
        (["350", "353", "354", "355", "356", "357"], "YC", "YK"),
        (["351", "352"], "LT", "LR"),
        (["400", "401", "408"], "OP", "CL"),
        (["403"], "OA", "CA"),
        (["407"], "OQ", "CQ"),
        (["570"], "BB", "BU"),
        (["602"], "RP", "RP"),
        (["627"], "LB", "LB"),
        (["628"], "LX", "LX"),
        (["750"], "IA", "IR"),
    ],
)
def test_sia_mapping_of_section_3_4(codes: list[str], new: str, restore: str) -> None:
    for code in codes:
        assert cid.sia_for_cid(code, Qualifier.NEW) == new, code
        assert cid.sia_for_cid(code, Qualifier.STATUS) == new, code
        assert cid.sia_for_cid(code, Qualifier.RESTORE) == restore, code


def test_unmapped_and_unknown_codes_have_no_sia() -> None:
    assert cid.sia_for_cid("154", Qualifier.NEW) is None  # §2.3: "–" (WA only at Hikvision)
    assert cid.sia_for_cid("900", Qualifier.NEW) is None
    assert cid.sia_for_cid("160", Qualifier.NEW) is None
    assert cid.lookup("160") is None


def test_openings_map_to_opening_codes_and_closings_to_closing_codes() -> None:
    # pysiaalarm's 441 and 456 rows invert this; an operator must never read an
    # arming as a disarming.
    for row in cid.CID_CODES.values():
        if row.event_class is EventClass.OPEN_CLOSE and row.sia_new != row.sia_restore:
            assert row.sia_new is not None and row.sia_new.startswith("O"), row.code
            assert row.sia_restore is not None and row.sia_restore.startswith("C"), row.code


@pytest.mark.parametrize(
    ("sia", "code"),
    [
        ("BA", "130"),
        ("BH", "130"),
        ("FA", "110"),
        ("OP", "401"),
        ("CL", "401"),
        ("RP", "602"),
        ("HA", "122"),
        ("YC", "350"),
        ("CG", "456"),
        ("TA", "137"),
        ("BU", "570"),
        ("IA", "750"),
        ("ZZ", None),
    ],
)
def test_cid_for_sia(sia: str, code: str | None) -> None:
    assert cid.cid_for_sia(sia) == code


def test_cid_for_sia_is_derived_from_the_table() -> None:
    sia_codes = {
        sia
        for row in cid.CID_CODES.values()
        for sia in (row.sia_new, row.sia_restore)
        if sia is not None
    }
    for sia in sia_codes:
        code = cid.cid_for_sia(sia)
        assert code is not None
        row = cid.CID_CODES[code]
        assert sia in (row.sia_new, row.sia_restore)
