"""protocols.sia: the SIA code table, SIA-DCS data blocks, raw DC-03 blocks and sessions.

Corpus entries are written as literals, each naming its entry in
/work/shared/captures/corpus.json (by index) or its place in PROTOCOLS.md,
so the suite does not depend on files outside the repository.
"""

from __future__ import annotations

import json
import re
import string
from datetime import UTC, datetime, time
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import sia
from protocols.contact_id import cid_for_sia
from protocols.errors import FramingError, IntegrityError, ProtocolError
from protocols.events import Address, AlarmEvent, EventClass, Protocol, Qualifier
from protocols.sia import (
    ACK_BLOCK,
    MAX_BLOCK,
    MAX_PAYLOAD,
    REJECT_BLOCK,
    Block,
    BlockDecoder,
    Dc03Session,
    Dc03Step,
    SiaBlock,
    SiaReport,
    encode_block,
    parse_data_block,
    to_event,
)
from protocols.sia_codes import SIA_CODES, SiaCode, lookup

FUZZ = settings(max_examples=200, deadline=None)
PROPERTY = settings(max_examples=80, deadline=None)

# ---------------------------------------------------------------------------
# Code table
# ---------------------------------------------------------------------------

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_table_holds_every_dc03_code() -> None:
    assert len(SIA_CODES) >= 300
    assert len(SIA_CODES) == 325  # SIA DC-03 as pysiaalarm lists it, Ajax codes included
    assert {"ZY", "ZZ", "NP", "YG"} <= set(SIA_CODES)


def test_every_code_is_two_capitals_with_a_chinese_name() -> None:
    for key, entry in SIA_CODES.items():
        assert key == entry.code
        assert re.fullmatch(r"[A-Z]{2}", key), key
        assert CJK.search(entry.name_zh), (key, entry.name_zh)
        # An untranslated English word would show up as ASCII letters.
        assert not re.search(r"[A-Za-z]", entry.name_zh), (key, entry.name_zh)
        assert entry.name_en and entry.name_en[0].isupper(), key


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        SIA_CODES["QQ"] = SIA_CODES["BA"]  # type: ignore[index]


def test_lookup() -> None:
    assert lookup("BA") is SIA_CODES["BA"]
    assert lookup("QQ") is None  # not a code
    assert lookup("ba") is None  # codes are upper case on the wire


@pytest.mark.parametrize(
    ("code", "name_zh", "address", "event_class", "qualifier"),
    [
        ("BA", "盗警", Address.ZONE, EventClass.BURGLARY, Qualifier.NEW),
        ("BR", "盗警恢复", Address.ZONE, EventClass.BURGLARY, Qualifier.RESTORE),
        ("BH", "盗警恢复", Address.ZONE, EventClass.BURGLARY, Qualifier.RESTORE),
        ("FA", "火警", Address.ZONE, EventClass.FIRE, Qualifier.NEW),
        ("KA", "高温报警", Address.ZONE, EventClass.FIRE, Qualifier.NEW),  # heat is fire
        ("HA", "劫盗/挟持报警", Address.ZONE, EventClass.HOLDUP, Qualifier.NEW),
        ("PA", "紧急报警", Address.ZONE, EventClass.PANIC, Qualifier.NEW),
        ("MA", "医疗求助", Address.ZONE, EventClass.MEDICAL, Qualifier.NEW),
        ("GA", "燃气报警", Address.ZONE, EventClass.GAS, Qualifier.NEW),
        ("WA", "水浸报警", Address.ZONE, EventClass.WATER, Qualifier.NEW),
        ("TA", "防拆报警", Address.ZONE, EventClass.TAMPER, Qualifier.NEW),
        ("TR", "防拆恢复", Address.ZONE, EventClass.TAMPER, Qualifier.RESTORE),
        ("AT", "交流电故障", Address.NONE, EventClass.TROUBLE, Qualifier.NEW),
        ("AR", "交流电恢复", Address.NONE, EventClass.TROUBLE, Qualifier.RESTORE),
        ("YT", "系统电池故障", Address.NONE, EventClass.TROUBLE, Qualifier.NEW),
        ("XT", "无线探测器电池欠压", Address.ZONE, EventClass.TROUBLE, Qualifier.NEW),
        ("OP", "撤防", Address.USER, EventClass.OPEN_CLOSE, Qualifier.NEW),
        ("CL", "布防", Address.USER, EventClass.OPEN_CLOSE, Qualifier.RESTORE),
        ("NL", "留守布防", Address.AREA, EventClass.OPEN_CLOSE, Qualifier.RESTORE),
        ("CA", "分区自动布防", Address.AREA, EventClass.OPEN_CLOSE, Qualifier.RESTORE),
        ("OA", "分区自动撤防", Address.AREA, EventClass.OPEN_CLOSE, Qualifier.NEW),
        ("RP", "自动测试", Address.NONE, EventClass.TEST, Qualifier.NEW),
        ("RX", "手动测试", Address.USER, EventClass.TEST, Qualifier.NEW),
        ("YC", "通讯故障", Address.NONE, EventClass.COMMUNICATION, Qualifier.NEW),
        ("YK", "通讯恢复", Address.NONE, EventClass.COMMUNICATION, Qualifier.RESTORE),
        ("LT", "电话线故障", Address.DEVICE, EventClass.COMMUNICATION, Qualifier.NEW),
        ("NT", "网络故障", Address.DEVICE, EventClass.COMMUNICATION, Qualifier.NEW),
        ("DF", "门被强行打开", Address.DOOR, EventClass.BURGLARY, Qualifier.NEW),
        ("ES", "扩展模块防拆", Address.DEVICE, EventClass.TAMPER, Qualifier.NEW),
        # A bypass is a status change, not the hazard: never BURGLARY.
        ("BB", "盗警防区旁路", Address.ZONE, EventClass.OTHER, Qualifier.NEW),
        ("BU", "盗警防区取消旁路", Address.ZONE, EventClass.OTHER, Qualifier.RESTORE),
        ("FT", "火警防区故障", Address.ZONE, EventClass.TROUBLE, Qualifier.NEW),
        ("ND", "夜间模式胁迫撤防", Address.AREA, EventClass.HOLDUP, Qualifier.NEW),
        ("ZY", "设备开启", Address.DEVICE, EventClass.OTHER, Qualifier.NEW),
    ],
)
def test_code_spot_checks(
    code: str, name_zh: str, address: Address, event_class: EventClass, qualifier: Qualifier
) -> None:
    entry = SIA_CODES[code]
    assert (entry.name_zh, entry.address, entry.event_class, entry.qualifier) == (
        name_zh,
        address,
        event_class,
        qualifier,
    )


HAZARDS = {
    EventClass.BURGLARY,
    EventClass.HOLDUP,
    EventClass.PANIC,
    EventClass.FIRE,
    EventClass.GAS,
    EventClass.WATER,
    EventClass.MEDICAL,
}


def test_qualifier_and_class_follow_the_names() -> None:
    for entry in SIA_CODES.values():
        name = entry.name_en.lower()
        if "restor" in name or "unbypass" in name:
            assert entry.qualifier is Qualifier.RESTORE, entry.code
        if name.endswith((" alarm", " bypass", " trouble")):
            assert entry.qualifier is Qualifier.NEW, entry.code
        if "bypass" in name:  # a status change, whatever the zone type
            assert entry.event_class is EventClass.OTHER, entry.code
        if name.endswith(" trouble"):  # a fault calls for service, not for the hazard's response
            assert entry.event_class not in HAZARDS, entry.code
        if "test" in name.split() and "fail" not in name:
            assert entry.event_class is EventClass.TEST, entry.code


# pysiaalarm's "concerns" column, as our address kinds.
CONCERNS = {
    "Zone or point": {Address.ZONE},
    "Zone number": {Address.ZONE},
    "Point number": {Address.ZONE, Address.DEVICE},
    "User number": {Address.USER},
    "User": {Address.USER},
    "Area number": {Address.AREA},
    "Door number": {Address.DOOR},
    "Unused": {Address.NONE},
}


def test_table_agrees_with_pysiaalarm() -> None:
    codes = pytest.importorskip("pysiaalarm.data.sia_codes")
    theirs = codes.SIA_CODES
    assert set(theirs) == set(SIA_CODES)
    for key, their in theirs.items():
        expected = CONCERNS.get(their.concerns, {Address.DEVICE})
        assert SIA_CODES[key].address in expected, (key, their.concerns)


def test_sia_code_validates() -> None:
    kinds = (Address.ZONE, EventClass.OTHER, Qualifier.NEW)
    with pytest.raises(FramingError, match="two upper-case"):
        SiaCode("B1", "x", "盗", *kinds)
    with pytest.raises(FramingError, match="Chinese"):
        SiaCode("QQ", "Something", "", *kinds)


# ---------------------------------------------------------------------------
# SIA-DCS data blocks from real captures
# ---------------------------------------------------------------------------

# (data block, account, [(code, address, partition, user, text)])
CORPUS_BLOCKS = [
    # corpus[0], pysiaalarm #11: no '/' between ri1 and the code
    ("#123456|Nri1CL0^VX FRONTE ^", "123456", [("CL", "0", "1", None, "VX FRONTE ")]),
    # corpus[1], SIA #42
    ("#123456|Nri0KR1^TAST. 001 ^", "123456", [("KR", "1", "0", None, "TAST. 001 ")]),
    # corpus[4]/[8]/[13]: account left empty before '|'
    ("|Nri1/CL501", None, [("CL", "501", "1", None, None)]),
    # corpus[6] decrypted (Ajax), no account at all
    ("Nri0/RP0000", None, [("RP", "0000", "0", None, None)]),
    # PROTOCOLS.md §1.7, AlphaVision: stray end-of-data section
    ("#0001|0|NRP", "0001", [("RP", None, None, None, None)]),
    # corpus[49], Aritech ATS via OH: XSIA trailer after the address
    ("#072538|Nri01/CL003*''NM", "072538", [("CL", "003", "01", None, "*''NM")]),
    # corpus[9], OH conversion trailer
    ("#006969|Nri04/OP001NM", "006969", [("OP", "001", "04", None, "NM")]),
    # corpus[15], same with a typographic quote
    ("#006969|Nri04/OP001*\u2019NM", "006969", [("OP", "001", "04", None, "*\u2019NM")]),
    # corpus[56], PROSEC: account without '#'
    ("36214|NRP", "36214", [("RP", None, None, None, None)]),
    # corpus[57], PROSEC: four-digit partition, code without address
    ("#51449|Nri0000/LR", "51449", [("LR", None, "0000", None, None)]),
    # corpus[58], PROSEC
    ("3044|NBC1", "3044", [("BC", "1", None, None, None)]),
    # corpus[24], Chinese GSM panel: no modifiers
    ("#7303658550|NBA4", "7303658550", [("BA", "4", None, None, None)]),
    # corpus[25], G90B-PLUS
    ("#22334455|NCQ1", "22334455", [("CQ", "1", None, None, None)]),
    # PROTOCOLS.md §1.7/§1.15, Eaton SecureConnect "SIA3"
    ("#3080|Nti19:44/id1/RP", "3080", [("RP", None, None, "1", None)]),
    # corpus[103]: ASCII text section inside the N section
    ("#3333|Nri01/BA0008/APB", "3333", [("BA", "0008", "01", None, "PB")]),
    # corpus[104]
    ("#2000|Nri01/FA0005/AZone 5", "2000", [("FA", "0005", "01", None, "Zone 5")]),
    # corpus[21], binary-CRC panel
    ("#2511|Nri01/BB026", "2511", [("BB", "026", "01", None, None)]),
    # corpus[22]/[23]/[28], Ajax automatic test
    ("#AAA|Nri0/RP0000", "AAA", [("RP", "0000", "0", None, None)]),
    # corpus[28], Ajax via node-red-contrib-sia-ultimate
    ("#0000|Nri0/RP0000", "0000", [("RP", "0000", "0", None, None)]),
    # corpus[29], Ajax arming event
    ("#0000|Nri1/NP501", "0000", [("NP", "501", "1", None, None)]),
    # corpus[31], Ajax common event
    ("#AAA|Nri0/ZY0", "AAA", [("ZY", "0", "0", None, None)]),
    # corpus[52], Ajax parameters changed
    ("#AAA|Nri0/YG0", "AAA", [("YG", "0", "0", None, None)]),
    # corpus[12]
    ("#AAA|Nri1/XC12", "AAA", [("XC", "12", "1", None, None)]),
    # corpus[10]
    ("Nri1/WA000", None, [("WA", "000", "1", None, None)]),
    # corpus[5]
    ("|Nri1/RP000", None, [("RP", "000", "1", None, None)]),
]


@pytest.mark.parametrize(("data", "account", "expected"), CORPUS_BLOCKS)
def test_corpus_data_blocks(
    data: str, account: str | None, expected: list[tuple[str, ...]]
) -> None:
    block = parse_data_block(data)
    assert block.account == account
    got = [(r.code, r.address, r.partition, r.user, r.text) for r in block.reports]
    assert got == expected


CORPUS_PATH = Path(__file__).resolve().parents[1] / "captures" / "corpus.json"
SIA_DCS_DATA = re.compile(r'"SIA-DCS"[^\[]*\[([^\]]*)\]')


def test_every_sia_data_block_of_the_corpus_is_replayed() -> None:
    # Keeps the literals above complete: each unencrypted SIA-DCS frame and each
    # bare data block of the corpus is listed and parses to the code it names.
    listed = {data for data, _, _ in CORPUS_BLOCKS}
    for index, entry in enumerate(json.loads(CORPUS_PATH.read_text(encoding="utf-8"))):
        found = SIA_DCS_DATA.search(entry["raw"]) or re.fullmatch(r"\[(.*)\]", entry["raw"])
        if entry["kind"] not in ("dc09", "sia_dc03") or found is None:
            continue
        data = found.group(1)
        assert data in listed, (index, data)
        code = entry["expected"].get("code")
        assert code is None or parse_data_block(data).reports[0].code == code, index


def test_galaxy_payloads_of_the_corpus() -> None:
    # corpus[70] and [71]: N payloads as the Galaxy README shows them, framing stripped
    (closing,) = parse_data_block("N" + "ti11:45/id001/pi010/CL").reports
    assert closing == SiaReport("CL", None, "010", "001", time(11, 45))
    (burglary,) = parse_data_block("N" + "ti11:46/BA1011").reports
    assert burglary == SiaReport("BA", "1011", time_of_day=time(11, 46))


# (data block, zone, user, partition, class, qualifier) after the code table
CORPUS_EVENTS = [
    ("#123456|Nri1CL0^VX FRONTE ^", None, "0", "1", EventClass.OPEN_CLOSE, Qualifier.RESTORE),
    ("|Nri1/CL501", None, "501", "1", EventClass.OPEN_CLOSE, Qualifier.RESTORE),
    ("#006969|Nri04/OP001NM", None, "001", "04", EventClass.OPEN_CLOSE, Qualifier.NEW),
    ("#123456|Nri0KR1^TAST. 001 ^", "1", None, "0", EventClass.FIRE, Qualifier.RESTORE),
    ("#7303658550|NBA4", "4", None, None, EventClass.BURGLARY, Qualifier.NEW),
    ("3044|NBC1", None, "1", None, EventClass.OTHER, Qualifier.NEW),
    ("#AAA|Nri0/RP0000", None, None, "0", EventClass.TEST, Qualifier.NEW),  # unused field
    ("#51449|Nri0000/LR", None, None, "0000", EventClass.COMMUNICATION, Qualifier.RESTORE),
    ("#3080|Nti19:44/id1/RP", None, "1", None, EventClass.TEST, Qualifier.NEW),
    ("#2000|Nri01/FA0005/AZone 5", "0005", None, "01", EventClass.FIRE, Qualifier.NEW),
    ("#0000|Nri1/NP501", "501", None, "1", EventClass.OPEN_CLOSE, Qualifier.NEW),
    ("#AAA|Nri0/ZY0", "0", None, "0", EventClass.OTHER, Qualifier.NEW),  # hub number
]


@pytest.mark.parametrize(
    ("data", "zone", "user", "partition", "event_class", "qualifier"), CORPUS_EVENTS
)
def test_corpus_events(
    data: str,
    zone: str | None,
    user: str | None,
    partition: str | None,
    event_class: EventClass,
    qualifier: Qualifier,
) -> None:
    (report,) = parse_data_block(data).reports
    raw = f"[{data}]".encode()
    event = to_event(report, account="HDR", protocol=Protocol.DC09, raw=raw)
    assert (event.zone, event.user, event.partition) == (zone, user, partition)
    assert (event.event_class, event.qualifier) == (event_class, qualifier)
    assert (event.account, event.protocol, event.code, event.raw) == (
        "HDR",
        Protocol.DC09,
        report.code,
        raw,
    )
    assert event.cid_event == cid_for_sia(report.code)
    assert event.text == report.text


def test_time_of_day_modifier() -> None:
    (report,) = parse_data_block("#3080|Nti19:44/id1/RP").reports
    assert report.time_of_day == time(19, 44)
    (report,) = parse_data_block("Nti07:05:09va1440/RX").reports
    assert (report.time_of_day, report.value) == (time(7, 5, 9), "1440")


# ---------------------------------------------------------------------------
# Grammar details
# ---------------------------------------------------------------------------


def test_several_events_share_the_modifiers_in_force() -> None:
    block = parse_data_block("#1234|Nri1/id7/BA01/BA02/ri2/TA03")
    assert [(r.code, r.address, r.partition, r.user) for r in block.reports] == [
        ("BA", "01", "1", "7"),
        ("BA", "02", "1", "7"),
        ("TA", "03", "2", "7"),
    ]


def test_modifiers_do_not_leak_into_the_next_n_section() -> None:
    block = parse_data_block("#1234|Nri1/BA01|NBA02")
    assert [r.partition for r in block.reports] == ["1", None]


def test_glued_modifiers() -> None:
    (report,) = parse_data_block("Nri3id12ti08:30BA5").reports
    assert (report.partition, report.user, report.time_of_day, report.address) == (
        "3",
        "12",
        time(8, 30),
        "5",
    )


@pytest.mark.parametrize(
    ("data", "codes", "text"),
    [
        ("Nri1/BA1/AT", ["BA", "AT"], None),  # a known A code with nothing after it: an event
        ("Nri1/BA1/AR2", ["BA", "AR"], None),
        ("Nri1/BA1/AR2^mains^", ["BA", "AR"], None),
        ("Nri1/BA1/ATest", ["BA"], "Test"),  # known code, but followed by letters: text
        ("Nri1/BA1/AZ5", ["BA"], "Z5"),  # AZ is no code: text
        ("Nri1/BA1/A", ["BA"], None),  # empty text
        ("NAT", ["AT"], None),  # first event of a section is always an event
    ],
)
def test_ascii_text_or_a_family_code(data: str, codes: list[str], text: str | None) -> None:
    block = parse_data_block(data)
    assert [r.code for r in block.reports] == codes
    assert block.reports[0].text == text


def test_text_pieces_are_joined() -> None:
    (report,) = parse_data_block("#1|Nri1/BA1^Front door^NM|AHall").reports
    assert report.text == "Front door NM Hall"


def test_caret_text_may_hold_separators() -> None:
    block = parse_data_block("#1|NBA1^a/b|c^/BA2^^")
    assert [(r.address, r.text) for r in block.reports] == [("1", "a/b|c"), ("2", None)]


def test_pipe_ascii_section_attaches_to_the_last_event() -> None:
    block = parse_data_block("#1|NBA1/BA2|AKitchen|NFA3")
    assert [r.text for r in block.reports] == [None, "Kitchen", None]


@pytest.mark.parametrize(
    ("data", "account"),
    [
        ("0|NRP", None),  # a lone 0 is the end marker, not an account
        ("ABC|NRP", "ABC"),  # hex: an account without '#'
        ("#XTRM189|NRP", "XTRM189"),  # non-hex accounts occur behind '#'
    ],
)
def test_account_forms(data: str, account: str | None) -> None:
    assert parse_data_block(data).account == account


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("", "empty section at offset 0"),
        ("#1234|", "empty section at offset 6"),
        ("#1234", "no new-event"),
        ("#", "account ''"),
        ("#12.4|NRP", "account '12.4'"),
        ("N", "ends at offset 1 without an event code"),
        ("#1|Nri12", "ends at offset 8 without an event code"),
        ("Nri1", "ends at offset 4 without an event code"),
        ("Nri1/", "ends at offset 5 without an event code"),
        ("NBA1/", "ends at offset 5 without an event code"),
        ("Nri/BA", "modifier 'ri' without a valid value"),
        ("Nti1944/BA", "modifier 'ti' without a valid value"),
        ("Nti25:00/BA", "time '25:00' out of range"),
        ("Nti12:60/BA", "out of range"),
        ("Nti12:00:61/BA", "out of range"),
        ("NBA1^Front", "unterminated ^text^ at offset 4"),
        ("Nri1//BA1", "expected a modifier or a two-letter event code at offset 5 ('/BA1')"),
        ("N1BA", "at offset 1 ('1BA')"),
        ("NbA", "two-letter event code"),
        ("|Atext", "ASCII section at offset 1 precedes every event"),
        ("Ab|NRP", "ASCII section at offset 0 precedes every event"),  # not hex: no account
        ("#1|X12", "section 'X12' at offset 3 is not"),
        ("#1|NRP|0x", "section '0x'"),
        ("#1|#2|NRP", "section '#2'"),
    ],
)
def test_malformed_blocks_name_the_offending_part(data: str, reason: str) -> None:
    with pytest.raises(FramingError) as caught:
        parse_data_block(data)
    assert reason in caught.value.reason


# ---------------------------------------------------------------------------
# Reports, blocks and to_event
# ---------------------------------------------------------------------------


def assert_block_is_valid(block: SiaBlock) -> None:
    """What a ``SiaBlock`` may hold; the parser is the one that checks it."""
    assert block.account is None or re.fullmatch(r"[0-9A-Za-z]{1,16}", block.account)
    assert block.reports
    for report in block.reports:
        assert re.fullmatch(r"[A-Z]{2}", report.code)
        for number in (report.address, report.partition, report.user, report.value):
            assert number is None or re.fullmatch(r"[0-9]+", number)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("NBa1", "expected a modifier or a two-letter event code"),
        ("Nri1/Ba", "expected a modifier or a two-letter event code"),
        ("Npix/BA1", "modifier 'pi' without a valid value"),
        ("Nid\u0663/BA1", "modifier 'id' without a valid value"),  # a non-ASCII digit
        ("Nva-1/BA1", "modifier 'va' without a valid value"),
        ("#12 34|NRP", "account '12 34' is not 1-16 letters/digits"),
        ("#1234|0", "no new-event"),
    ],
)
def test_the_parser_checks_what_reports_and_blocks_hold(data: str, reason: str) -> None:
    with pytest.raises(FramingError) as caught:
        parse_data_block(data)
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("data", "report"),
    [
        ("NBAA", SiaReport("BA", None, text="A")),  # never a three-letter code
        ("NBA1a", SiaReport("BA", "1", text="a")),  # never an address with a letter
        ("NBA\u0663", SiaReport("BA", None, text="\u0663")),  # nor with a non-ASCII digit
    ],
)
def test_what_follows_an_event_is_text_not_part_of_it(data: str, report: SiaReport) -> None:
    block = parse_data_block(data)
    assert block.reports == (report,)
    assert_block_is_valid(block)


@PROPERTY
@given(st.from_regex(sia._USUAL_BLOCK, fullmatch=True))
def test_usual_block_shortcut_agrees_with_the_general_parser(data: str) -> None:
    block = parse_data_block(data)
    assert block == sia._parse_any_block(data)
    assert_block_is_valid(block)


def _event(report: SiaReport) -> AlarmEvent:
    return to_event(report, account="1234", protocol=Protocol.DC09, raw=b"x")


@pytest.mark.parametrize(
    ("report", "zone", "user", "partition"),
    [
        (SiaReport("BA", "12", partition="1", user="3"), "12", "3", "1"),  # zone
        (SiaReport("OP", "5", partition="1", user="3"), None, "5", "1"),  # user: address wins
        (SiaReport("OP", None, partition="1", user="3"), None, "3", "1"),  # user from id
        (SiaReport("CG", "2", partition="1"), None, None, "2"),  # area: address wins
        (SiaReport("CG", None, partition="1"), None, None, "1"),
        (SiaReport("DF", "4"), "4", None, None),  # door, shown as zone
        (SiaReport("ET", "9"), "9", None, None),  # expander, shown as zone
        (SiaReport("RP", "0000", partition="0"), None, None, "0"),  # unused field dropped
        (SiaReport("QQ", "77", partition="2"), "77", None, "2"),  # unknown code
    ],
)
def test_address_goes_where_the_code_says(
    report: SiaReport, zone: str | None, user: str | None, partition: str | None
) -> None:
    event = _event(report)
    assert (event.zone, event.user, event.partition) == (zone, user, partition)


def test_unknown_code_is_kept_unclassified() -> None:
    event = _event(SiaReport("QQ", "7", text="vendor"))
    assert event.code == "QQ"
    assert event.unclassified
    assert event.qualifier is Qualifier.NEW
    assert event.text == "vendor"


def test_to_event_passes_time_and_xdata_through() -> None:
    when = datetime(2024, 2, 21, 0, 3, 31, tzinfo=UTC)
    xdata = (("M", "0026B9E4268B"),)
    event = to_event(
        SiaReport("BA", "1"),
        account="AAA",
        protocol=Protocol.DC09,
        raw=b"raw",
        device_time=when,
        xdata=xdata,
    )
    assert (event.device_time, event.xdata, event.raw) == (when, xdata, b"raw")


def test_time_of_day_and_value_are_kept_beside_the_xdata() -> None:
    (report,) = parse_data_block("Nti07:05:09va1440/RX").reports
    event = to_event(report, account="AAA", protocol=Protocol.DC09, raw=b"", xdata=(("M", "1"),))
    assert event.xdata == (("M", "1"), ("ti", "07:05:09"), ("va", "1440"))


def test_to_event_errors_are_protocol_errors() -> None:
    with pytest.raises(FramingError):
        to_event(SiaReport("BA"), account="", protocol=Protocol.DC09, raw=b"")
    with pytest.raises(FramingError):
        to_event(
            SiaReport("BA"),
            account="1",
            protocol=Protocol.DC09,
            raw=b"",
            device_time=datetime(2024, 1, 1),  # noqa: DTZ001 - naive on purpose
        )


# ---------------------------------------------------------------------------
# Hypothesis: render, parse back; fuzz
# ---------------------------------------------------------------------------

digits = st.text(string.digits, min_size=1, max_size=6)
times = st.builds(time, st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
texts = st.text(st.characters(codec="utf-8", exclude_characters="^"), min_size=1)
accounts = st.text(string.ascii_letters + string.digits, min_size=1, max_size=16)
codes = st.text(string.ascii_uppercase, min_size=2, max_size=2)


def reports(codes: st.SearchStrategy[str]) -> st.SearchStrategy[SiaReport]:
    return st.builds(
        SiaReport,
        code=codes,
        address=st.none() | digits,
        partition=st.none() | digits,
        user=st.none() | digits,
        time_of_day=st.none() | times,
        value=st.none() | digits,
        text=st.none() | texts,
    )


def render_event(report: SiaReport, sep: str) -> str:
    """Render one report the way DC-03 writes it: modifiers, code, address, ^text^."""
    parts = []
    if report.partition is not None:
        parts.append(f"ri{report.partition}")
    if report.user is not None:
        parts.append(f"id{report.user}")
    if report.time_of_day is not None:
        fmt = "%H:%M:%S" if report.time_of_day.second else "%H:%M"
        parts.append("ti" + report.time_of_day.strftime(fmt))
    if report.value is not None:
        parts.append(f"va{report.value}")
    text = "" if report.text is None else f"^{report.text}^"
    parts.append(f"{report.code}{report.address or ''}{text}")
    return sep.join(parts)


@PROPERTY
@given(
    st.none() | accounts,
    st.lists(reports(codes), min_size=1, max_size=4),
    st.sampled_from(["/", ""]),
)
def test_rendered_sections_parse_back(
    account: str | None, events: list[SiaReport], sep: str
) -> None:
    sections = [] if account is None else [f"#{account}"]
    sections += ["N" + render_event(report, sep) for report in events]
    block = parse_data_block("|".join(sections))
    assert block == SiaBlock(account, tuple(events))


@PROPERTY
@given(st.lists(reports(st.sampled_from(sorted(SIA_CODES))), min_size=1, max_size=5))
def test_one_section_carries_modifiers_forward(events: list[SiaReport]) -> None:
    body = "/".join(render_event(report, "/") for report in events)
    expected = []
    partition = user = value = None
    time_of_day = None
    for report in events:
        partition = report.partition or partition
        user = report.user or user
        time_of_day = report.time_of_day or time_of_day
        value = report.value or value
        expected.append(
            SiaReport(report.code, report.address, partition, user, time_of_day, value, report.text)
        )
    assert list(parse_data_block("N" + body).reports) == expected


# Characters that matter to the grammar, so fuzzing reaches past the first check.
GRAMMAR = st.text(alphabet="#|N/A0^riptdva:19BCLRPXZ*' ", max_size=40)


@FUZZ
@given(st.text() | GRAMMAR)
def test_parse_data_block_never_raises_anything_else(data: str) -> None:
    try:
        block = parse_data_block(data)
    except ProtocolError:
        return
    assert_block_is_valid(block)
    for report in block.reports:
        _event(report)  # every parsed report makes an event


# ---------------------------------------------------------------------------
# Raw DC-03 blocks
# ---------------------------------------------------------------------------

# corpus[66], Honeywell Galaxy FX020 (sia #32): account block, checksum 0x92
GALAXY_ACCOUNT = bytes.fromhex("44233031393292")
# PROTOCOLS.md §3.1 / S-GALAXY: ASCII block with the code page 437 letter 0x99 = Ö
GALAXY_ASCII = b"[A+INBROTT        IR Sovrum \x99\x34"
# corpus[69], Galaxy Flex 3 opening bytes that are no DC-03 block
FLEX_OPENING = bytes.fromhex("0501815968")


def test_galaxy_account_block() -> None:
    assert GALAXY_ACCOUNT == b"D#0192\x92"
    assert encode_block("#", b"0192") == GALAXY_ACCOUNT  # checksum 0xFF ^ every byte = 0x92
    (block,) = BlockDecoder().feed(GALAXY_ACCOUNT)
    assert block == Block("#", b"0192")
    assert isinstance(block, Block) and block.raw == GALAXY_ACCOUNT


def test_galaxy_ascii_block_decodes_code_page_437() -> None:
    (block,) = BlockDecoder().feed(GALAXY_ASCII)
    assert isinstance(block, Block)
    assert block.function == "A"
    assert block.text == "+INBROTT        IR Sovrum Ö"


def test_flex_opening_bytes_are_rejected_cleanly() -> None:
    decoder = BlockDecoder()
    (error,) = decoder.feed(FLEX_OPENING)
    assert isinstance(error, FramingError)
    assert "skipped 3 byte(s)" in error.reason
    # "Yh" could still start a 25-byte block; only the end of stream settles it.
    assert decoder.buffered == 2
    closing = decoder.close()
    assert closing is not None and "stream ended inside a block" in closing.reason
    assert decoder.buffered == 0
    assert decoder.close() is None


def test_ack_and_reject_blocks() -> None:
    assert ACK_BLOCK == b"\x408\x87"
    assert REJECT_BLOCK == b"\x409\x86"
    assert BlockDecoder().feed(ACK_BLOCK + REJECT_BLOCK) == [Block("8", b""), Block("9", b"")]


def test_encode_block_limits() -> None:
    longest = encode_block("A", b"x" * MAX_PAYLOAD)
    assert len(longest) == MAX_BLOCK
    assert longest[0] == 0x7F
    with pytest.raises(FramingError, match="exceeds 63"):
        encode_block("A", b"x" * (MAX_PAYLOAD + 1))
    for function in ("", "NA", "\u0100"):
        with pytest.raises(FramingError, match="one byte"):
            encode_block(function, b"")
    with pytest.raises(FramingError):
        Block("N", b"x" * 64)


def test_bad_checksum_of_a_known_block_is_an_integrity_error() -> None:
    corrupt = bytearray(encode_block("N", b"ti11:46/BA1011"))
    corrupt[-1] ^= 0x01
    good = encode_block("0", b"")
    out = BlockDecoder().feed(bytes(corrupt) + good)
    assert isinstance(out[0], IntegrityError)
    assert "block 'N' checksum" in out[0].reason
    assert out[1:] == [Block("0", b"")]  # the whole corrupt block was consumed


def test_resynchronises_after_garbage() -> None:
    # 0x42 looks like a header (flag set, length 2) but its checksum fails and
    # 0x01 is no known function, so it is garbage; so are the flagless bytes.
    stream = b"\x13\x42\x01\x02\x03\x00" + GALAXY_ACCOUNT
    out = BlockDecoder().feed(stream)
    assert isinstance(out[0], FramingError) and not isinstance(out[0], IntegrityError)
    assert "skipped 6 byte(s)" in out[0].reason
    assert out[1:] == [Block("#", b"0192")]


def test_header_like_garbage_waits_for_the_panel_to_resend() -> None:
    # 'Z' (0x5A) could start a 26-byte block, so the decoder waits for 29
    # bytes before judging it; the Galaxy repeats an unanswered block, and the
    # repeats settle it.
    decoder = BlockDecoder()
    assert decoder.feed(b"Z" + GALAXY_ACCOUNT) == []
    out = decoder.feed(GALAXY_ACCOUNT * 4)
    assert isinstance(out[0], FramingError)
    assert out[1:] == [Block("#", b"0192")] * 5


def test_unknown_functions_and_flag_bits_are_kept() -> None:
    old_event = encode_block("O", b"BA1")  # "old event": not ours to judge
    flagged = bytearray(GALAXY_ACCOUNT)
    flagged[0] |= 0x80  # a high flag bit: the length is the low six bits
    flagged[-1] ^= 0x80
    out = BlockDecoder().feed(old_event + bytes(flagged))
    assert out == [Block("O", b"BA1"), Block("#", b"0192", bytes(flagged))]


def test_buffer_holds_at_most_one_incomplete_block() -> None:
    decoder = BlockDecoder()
    assert decoder.feed(b"\x7fA" + b"x" * 63) == []  # one byte short of 66
    assert decoder.buffered == MAX_BLOCK - 1
    out = decoder.feed(b"\x00" + GALAXY_ACCOUNT * 3)  # wrong checksum: resync
    assert [x for x in out if isinstance(x, Block)] == [Block("#", b"0192")] * 3
    assert isinstance(out[0], IntegrityError)  # 'A' is a known function
    assert decoder.buffered == 0


def test_a_large_read_leaves_no_backlog() -> None:
    decoder = BlockDecoder()
    out = decoder.feed(GALAXY_ACCOUNT * 5000 + b"D#01")
    assert len(out) == 5000
    assert decoder.buffered == 4


functions = st.characters(min_codepoint=0, max_codepoint=255)
payloads = st.binary(max_size=MAX_PAYLOAD)


@PROPERTY
@given(functions, payloads)
def test_encode_decode_round_trip(function: str, payload: bytes) -> None:
    frame = encode_block(function, payload)
    assert BlockDecoder().feed(frame) == [Block(function, payload)]


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in pairwise(points)]


def _decode(chunks: list[bytes]) -> tuple[list[Block | str], int]:
    decoder = BlockDecoder()
    out: list[Block | str] = []
    for chunk in chunks:
        for item in decoder.feed(chunk):
            # How garbage runs are grouped into errors depends on the reads;
            # blocks and checksum failures must not.
            if isinstance(item, Block):
                out.append(item)
            elif isinstance(item, IntegrityError):
                out.append(item.reason)
    return out, decoder.buffered


def _corrupt(function: str, payload: bytes) -> bytes:
    frame = encode_block(function, payload)
    return frame[:-1] + bytes([frame[-1] ^ 0xFF])


# A stream item: a good block, a known block with a bad checksum, or noise
# without the 0x40 flag.
stream_items = st.one_of(
    st.builds(encode_block, functions, payloads),
    st.builds(_corrupt, st.sampled_from("#NA089"), payloads),
    st.binary(min_size=1, max_size=4).map(lambda b: bytes(x & 0xBF for x in b)),
)


@PROPERTY
@given(st.lists(stream_items, max_size=8), st.lists(st.integers(0, 2000), max_size=10))
def test_chunking_invariance(items: list[bytes], cuts: list[int]) -> None:
    data = b"".join(items)
    whole = _decode([data])
    assert _decode([data[i : i + 1] for i in range(len(data))]) == whole
    assert _decode(_split(data, cuts)) == whole
    blocks, buffered = whole
    framed = [item for item in items if item[0] & 0x40]  # every block, good or bad, in order
    assert [isinstance(x, Block) for x in blocks] == [
        item[-1] == encode_block(chr(item[1]), item[2:-1])[-1] for item in framed
    ]
    assert buffered == 0


@PROPERTY
@given(st.binary(max_size=300), st.lists(st.integers(0, 2000), max_size=10))
def test_chunking_invariance_on_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    whole = _decode([data])
    assert _decode(_split(data, cuts)) == whole
    assert _decode([data[i : i + 1] for i in range(len(data))]) == whole


@FUZZ
@given(st.lists(st.binary(max_size=80), max_size=6))
def test_block_decoder_never_raises_anything_else(chunks: list[bytes]) -> None:
    decoder = BlockDecoder()
    for chunk in chunks:
        for item in decoder.feed(chunk):
            assert isinstance(item, Block | ProtocolError)
        assert decoder.buffered < MAX_BLOCK
    tail = decoder.close()
    assert tail is None or isinstance(tail, FramingError)


# ---------------------------------------------------------------------------
# A Galaxy connection
# ---------------------------------------------------------------------------

# The exchange of S-GALAXY's README (corpus[70]/[71] payloads): account, a user
# closing with its ASCII line, a burglary alarm, end of data.
CLOSING = encode_block("N", b"ti11:45/id001/pi010/CL")
CLOSING_TEXT = encode_block("A", b"Q P\x8fSLAG    Magnus")
BURGLARY = encode_block("N", b"ti11:46/BA1011")
END = encode_block("0", b"")
CONVERSATION = [GALAXY_ACCOUNT, CLOSING, CLOSING_TEXT, BURGLARY, END]


def test_galaxy_conversation() -> None:
    session = Dc03Session()
    steps = session.feed(b"".join(CONVERSATION))
    assert [s.answer for s in steps] == [ACK_BLOCK] * 5
    assert [s.error for s in steps] == [None] * 5
    assert [s.raw for s in steps] == CONVERSATION  # every step names its input
    assert session.account == "0192"
    assert session.ended
    # Each N block's events come with its own answer, so none waits on a
    # later block once acknowledged; the A text is a note of its own.
    assert [len(s.events) for s in steps] == [0, 1, 1, 1, 0]
    closing, note, burglary = steps[1].events[0], steps[2].events[0], steps[3].events[0]
    assert closing == AlarmEvent(
        account="0192",
        protocol=Protocol.SIA_DC03,
        qualifier=Qualifier.RESTORE,
        code="CL",
        cid_event="401",
        event_class=EventClass.OPEN_CLOSE,
        user="001",
        partition="010",
        xdata=(("ti", "11:45:00"),),
        raw=CLOSING,
    )
    assert note == AlarmEvent(
        account="0192",
        protocol=Protocol.SIA_DC03,
        qualifier=Qualifier.STATUS,
        event_class=EventClass.OTHER,
        user="001",
        partition="010",
        text="Q PÅSLAG    Magnus",
        xdata=(("ti", "11:45:00"), ("for_code", "CL")),
        raw=CLOSING_TEXT,
    )
    assert (burglary.code, burglary.zone, burglary.event_class) == (
        "BA",
        "1011",
        EventClass.BURGLARY,
    )
    assert burglary.raw == BURGLARY
    assert session.close() == Dc03Step(b"")


def test_conversation_is_the_same_byte_by_byte() -> None:
    data = b"".join(CONVERSATION)
    whole = Dc03Session().feed(data)
    session = Dc03Session()
    trickled = [step for i in range(len(data)) for step in session.feed(data[i : i + 1])]
    assert trickled == whole


def test_events_come_with_the_answer_to_their_own_block() -> None:
    session = Dc03Session()
    steps = session.feed(GALAXY_ACCOUNT + BURGLARY)
    assert [e.code for e in steps[1].events] == ["BA"]
    assert steps[1].answer == ACK_BLOCK
    assert session.close() == Dc03Step(b"")  # nothing held back


def test_close_reports_a_truncated_block() -> None:
    session = Dc03Session()
    session.feed(GALAXY_ACCOUNT + BURGLARY[:5])
    final = session.close()
    assert final.events == ()
    assert isinstance(final.error, FramingError)
    assert final.raw == BURGLARY[:5]


def test_new_account_completes_the_events_of_the_previous_one() -> None:
    session = Dc03Session()
    steps = session.feed(GALAXY_ACCOUNT + BURGLARY + encode_block("#", b"7777") + BURGLARY)
    assert [e.account for e in steps[1].events] == ["0192"]
    assert [e.account for e in steps[3].events] == ["7777"]
    # Text after another account's block belongs to no event of this one.
    (step,) = session.feed(encode_block("#", b"8888") + CLOSING_TEXT)[1:]
    assert step.events == () and step.error is not None


def test_bad_checksum_is_rejected_and_the_resend_accepted() -> None:
    corrupt = bytearray(BURGLARY)
    corrupt[3] ^= 0x20
    session = Dc03Session()
    steps = session.feed(GALAXY_ACCOUNT + bytes(corrupt) + BURGLARY + END)
    assert [s.answer for s in steps] == [ACK_BLOCK, REJECT_BLOCK, ACK_BLOCK, ACK_BLOCK]
    assert isinstance(steps[1].error, IntegrityError)
    assert steps[1].raw == bytes(corrupt)
    assert [e.zone for e in steps[2].events] == ["1011"]


def test_noise_gets_no_answer() -> None:
    steps = Dc03Session().feed(FLEX_OPENING[:3])
    assert len(steps) == 1
    assert steps[0].answer == b""
    assert isinstance(steps[0].error, FramingError)
    assert steps[0].raw == steps[0].error.raw == FLEX_OPENING[:3]  # kept for quarantine


@pytest.mark.parametrize(
    ("blocks", "reason"),
    [
        ([BURGLARY], "before any account block"),
        ([encode_block("#", b"01 92")], "account block '01 92'"),
        ([GALAXY_ACCOUNT, encode_block("N", b"ti11:46/BA1011/")], "without an event code"),
    ],
)
def test_unusable_blocks_are_rejected(blocks: list[bytes], reason: str) -> None:
    steps = Dc03Session().feed(b"".join(blocks))
    assert steps[-1].answer == REJECT_BLOCK
    assert steps[-1].error is not None and reason in steps[-1].error.reason


def test_ascii_without_event_is_acknowledged_but_reported() -> None:
    (step,) = Dc03Session().feed(CLOSING_TEXT)
    assert step.answer == ACK_BLOCK
    assert step.error is not None and "without a new-event block" in step.error.reason


def test_answers_are_not_answered_and_other_blocks_are_acknowledged() -> None:
    session = Dc03Session()
    steps = session.feed(GALAXY_ACCOUNT + BURGLARY + ACK_BLOCK + encode_block("O", b"BA1"))
    assert [s.answer for s in steps] == [ACK_BLOCK, ACK_BLOCK, b"", ACK_BLOCK]
    assert [e.code for e in steps[1].events] == ["BA"]
    assert not session.ended


def test_unknown_code_over_dc03_is_still_an_event() -> None:
    steps = Dc03Session().feed(GALAXY_ACCOUNT + encode_block("N", b"QQ12") + END)
    assert steps[1].answer == ACK_BLOCK
    (event,) = steps[1].events
    assert (event.code, event.zone, event.unclassified) == ("QQ", "12", True)


def test_unknown_modifier_is_kept_as_text_not_refused() -> None:
    # A genuine message must not be NAKed for ever over a modifier we do not know.
    (report,) = parse_data_block("Nzz1/ri2/BA3^Door^").reports
    assert (report.code, report.address, report.partition) == ("BA", "3", "2")
    assert report.text == "zz1 Door"
    (report,) = parse_data_block("Nri1/qq7/BA3").reports
    assert report.text == "qq7"
