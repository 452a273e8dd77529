"""SIA DC-09 framing, CRC, AES and answers."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.crc import crc16_arc
from protocols.dc09 import (
    MAX_FRAME,
    CrcFormat,
    Frame,
    FrameSplitter,
    Header,
    build_ack,
    build_duh,
    build_frame,
    build_nak,
    decode_text,
    format_timestamp,
    parse_content,
    parse_frame,
    parse_timestamp,
)
from protocols.dc09_crypto import Dc09Key, KeyFormat, decrypt, encrypt
from protocols.errors import DecryptionError, FramingError, IntegrityError

from .strategies import frame_bodies, random_splits

AJAX_KEY = Dc09Key.parse("ascii:3BD7E66AA9E2F190")


def frame_of(text: str) -> bytes:
    """A logged frame (LF and CR lost by the logger) as it was on the wire."""
    return b"\n" + text.encode() + b"\r"


def bitwise_crc16_arc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


# -- CRC ------------------------------------------------------------------------


def test_crc_check_value() -> None:
    assert crc16_arc(b"123456789") == 0xBB3D


@given(st.binary(max_size=300), st.binary(max_size=50))
def test_crc_table_matches_bitwise_definition_and_continues(a: bytes, b: bytes) -> None:
    assert crc16_arc(a + b) == bitwise_crc16_arc(a + b) == crc16_arc(b, crc16_arc(a))


# -- frames -----------------------------------------------------------------------


def test_real_ajax_frame() -> None:
    frame = parse_frame(
        frame_of('14AB0039"SIA-DCS"0006L0#AAA[#AAA|Nri0/RP0000]_09:12:30,02-20-2023')
    )
    assert frame.header == Header("SIA-DCS", "0006", None, "0", "AAA")
    assert frame.crc_format is CrcFormat.HEX and not frame.header.encrypted
    content = parse_content(frame.content)
    assert content.data == "#AAA|Nri0/RP0000"
    assert content.timestamp == datetime(2023, 2, 20, 9, 12, 30, tzinfo=UTC)


def test_receiver_line_and_account_at_full_width() -> None:
    # pysiaalarm fixture; its CRC was made by hand, so rebuild a genuine frame.
    body = b'"ADM-CID"9876R579BDFL789ABC#12345A[#12345A|1110 00 129]_14:12:04,09-25-2011'
    header = parse_frame(build_frame(body)).header
    assert (header.receiver, header.line, header.account) == ("579BDF", "789ABC", "12345A")


def test_binary_crc_frame_trikdis() -> None:
    raw = (
        b"\n"
        + bytes.fromhex(
            "DAEB303033442241444D2D434944223030303152314C3123393431335B23393431337C3137303020"
            "3939203939395D5F32333A30353A32382C30382D33302D32303233"
        )
        + b"\r"
    )
    frame = parse_frame(raw)
    assert frame.crc_format is CrcFormat.BINARY
    assert frame.header == Header("ADM-CID", "0001", "1", "1", "9413")


def test_eldes_crc_over_cr_and_decimal_length() -> None:
    # Eldes (pysiaalarm #17): CRC AA1A covers the CR too; its length is hex here.
    frame = parse_frame(b'\nAA1A002F"ADM-CID"0227R4F39L4F39#4F39[#4F39|3401 01 057]\r')
    assert frame.crc_format is CrcFormat.HEX_OVER_CR
    # pysiaalarm test sample of the same family: the length 0047 is decimal.
    frame = parse_frame(frame_of('57150047"ADM-CID"0247R4F39L4F39#4F39[#4F39|3401 01 057]'))
    assert frame.decimal_length and frame.crc_format is CrcFormat.HEX


def test_lower_case_hex_crc_and_length() -> None:
    body = b'"NULL"0000L0#AAAAAAAAAAA[]'  # 26 bytes: length 001a
    raw = b"\n%04x%04x%b\r" % (crc16_arc(body), len(body), body)
    assert raw[5:9] == b"001a"
    frame = parse_frame(raw)
    assert frame.crc_format is CrcFormat.HEX and not frame.decimal_length
    assert frame.header == Header("NULL", "0000", None, "0", "AAAAAAAAAAA")


@pytest.mark.parametrize(
    ("text", "line", "account"),
    [
        (
            'CEF0003F"SIA-DCS"0001L#7303658550[#7303658550|NBA4]_11:52:09,05-07-2019',
            "",
            "7303658550",
        ),
        ('B0970029"NULL"0000L000#0809[]_21:00:01,02-20-2024', "000", "0809"),
        ('31FD0018"NULL"0000R0L0#XTRM189[]', "0", "XTRM189"),
        ('AC4E0025"NAK"0000R0L0A0[]_11:52:07,05-07-2019', "0", "0"),
    ],
)
def test_header_dialects(text: str, line: str, account: str) -> None:
    header = parse_frame(frame_of(text)).header
    assert (header.line, header.account) == (line, account)


def test_header_without_line_or_account() -> None:
    header = parse_frame(build_frame(b'"SIA-DCS"0001#1997[#1997|NRP]')).header
    assert header.line is None and header.account == "1997"
    header = parse_frame(build_frame(b'"SIA-DCS"4738R0001L0001[#006969|Nri04/OP001]')).header
    assert header.account is None and header.receiver == "0001"


@pytest.mark.parametrize(
    ("raw", "error", "reason"),
    [
        (b'"SIA-DCS"0001L0#1[]', FramingError, "start with LF"),
        (b"\n1234", FramingError, "start with LF"),
        (b'\n14AB0039"SIA-DCS"0006L0#AAA[#AAA|Nri0/RP0000]', FramingError, "terminated by CR"),
        (b'\nZZZZ0012"NULL"0000L0#AAA[]\r', FramingError, "not four hex digits"),
        (b"\nSR0001L0001 072538XX \r", FramingError, "no ID token"),
        (
            b'\n2E680034"SIA-DCS"6002L0#AAA[|Nri1/CL501]_14:12:04,09-25-2019\r',
            IntegrityError,
            "CRC mismatch: frame says 2E68, body gives E5D5",
        ),
        (
            b'\nE5D50078"SIA-DCS"6002L0#AAA[|Nri1/CL501]_14:12:04,09-25-2019\r',
            IntegrityError,
            "does not match the 52-byte body",
        ),
    ],
)
def test_rejected_frames(raw: bytes, error: type[Exception], reason: str) -> None:
    with pytest.raises(error, match=reason):
        parse_frame(raw)


def test_binary_crc_with_cr_variant_is_not_accepted() -> None:
    body = b'"NULL"0000L0#AAA[]'
    crc = crc16_arc(b"\r", crc16_arc(body))
    with pytest.raises(IntegrityError):
        parse_frame(b"\n" + crc.to_bytes(2, "big") + b"%04X" % len(body) + body + b"\r")


def test_malformed_header() -> None:
    with pytest.raises(FramingError, match="malformed header"):
        parse_frame(build_frame(b'"ACK"0000None'))


# -- content --------------------------------------------------------------------


def test_content_with_xdata_in_utf8() -> None:
    # Hikvision AX PRO: x-data in UTF-8; CRC and length count bytes (0x46 = 70).
    raw = frame_of('B2C20046"ADM-CID"0008L0#777[#777|1401 02 501][SУлица]_09:15:28,07-03-2025')
    content = parse_content(parse_frame(raw).content)
    assert content.xdata == (("S", "Улица"),)


def test_content_with_several_xdata() -> None:
    content = parse_content(b"|Nri1/CL501][M0026B9E4268B][X006E07.7777777][Y49N06.6]")
    assert content == type(content)(
        "|Nri1/CL501", (("M", "0026B9E4268B"), ("X", "006E07.7777777"), ("Y", "49N06.6")), None
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"#AAA|Nri0/RP0000", "no closing"),
        (b"#AAA|NRP][Mabc", "extended data has no closing"),
        (b"#AAA|NRP][1abc]", "must start with a letter"),
        (b"#AAA|NRP]xyz", "unexpected"),
        (b"#AAA|NRP]_12:00:00", "is not _HH:MM:SS"),
        (b"#AAA|NRP]_1a:00:00,01-01-2024", "is not _HH:MM:SS"),
        (b"#AAA|NRP]_25:00:00,01-01-2024", "not a real date"),
    ],
)
def test_rejected_content(content: bytes, reason: str) -> None:
    with pytest.raises(FramingError, match=reason):
        parse_content(content)


def test_text_decoding_falls_back_to_windows_1252_then_latin_1() -> None:
    assert decode_text("Straße".encode()) == "Straße"
    assert decode_text(b"caf\xe9 \x80") == "café €"
    assert decode_text(b"\x81") == "\x81"  # undefined in cp1252


# hypothesis takes naive bounds and adds the zone itself.
_YEARS = {"min_value": datetime(2000, 1, 1), "max_value": datetime(2099, 12, 31)}  # noqa: DTZ001


@given(st.datetimes(**_YEARS, timezones=st.just(UTC)))
def test_timestamp_round_trip(moment: datetime) -> None:
    aware = moment.replace(microsecond=0)
    assert parse_timestamp(format_timestamp(aware)[1:]) == aware


@given(st.lists(st.integers(0, 99), min_size=5, max_size=5), st.integers(0, 9999))
def test_timestamp_accepts_exactly_the_real_dates(fields: list[int], year: int) -> None:
    hour, minute, second, month, day = fields
    text = b"%02d:%02d:%02d,%02d-%02d-%04d" % (hour, minute, second, month, day, year)
    try:
        expected = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        with pytest.raises(FramingError, match="is not a real date and time"):
            parse_timestamp(text)
    else:
        assert parse_timestamp(text) == expected
        assert parse_content(b"#1|NRP]_" + text).timestamp == expected


@given(frame_bodies())
def test_build_then_parse_round_trip(case: tuple[bytes, Header, bytes]) -> None:
    body, header, content = case
    frame = parse_frame(build_frame(body))
    assert frame.header == header
    assert frame.content == content


@given(frame_bodies(), st.sampled_from(list(CrcFormat)))
def test_every_crc_dialect_round_trips(case: tuple[bytes, Header, bytes], fmt: CrcFormat) -> None:
    body, header, _ = case
    frame = parse_frame(build_frame(body, fmt))
    assert frame.crc_format is fmt and frame.header == header


# -- stream splitting -------------------------------------------------------------


def split_all(stream: bytes, pieces: list[bytes] | None = None) -> list[bytes]:
    splitter = FrameSplitter()
    chunks: list[bytes] = []
    for piece in pieces if pieces is not None else [stream]:
        chunks += splitter.feed(piece)
    return chunks + splitter.flush()


def test_dahua_three_frames_in_one_read() -> None:
    frames = [
        build_frame(b'"ADM-CID"0006L0#ABC[#ABC|3450 01 033][RLivingRoom]_11:02:31,01-25-2024'),
        build_frame(b'"ADM-CID"0007L0#ABC[#ABC|1400 01 033][RLivingRoom]_11:02:36,01-25-2024'),
        build_frame(b'"ADM-CID"0008L0#ABC[#ABC|1406 01 033][RLivingRoom]_11:02:36,01-25-2024'),
    ]
    assert split_all(b"".join(frames)) == frames


def test_trailing_nuls_and_stray_bytes_are_separated() -> None:
    frame = frame_of('78FC003B"SIA-DCS"0001L#22334455[#22334455|NCQ1]_14:33:53,02-09-2020')
    assert split_all(frame + b"\x00\x00" + frame) == [frame, frame]
    # Garbage before a frame becomes its own chunk, ended by CR or by the next LF.
    assert split_all(b"SR0001L0001 XX\r" + frame) == [b"SR0001L0001 XX\r", frame]
    assert split_all(b"junk" + frame) == [b"junk", frame]
    assert split_all(b"junk") == [b"junk"]


def test_frame_cut_short_by_the_next_one() -> None:
    frame = build_frame(b'"NULL"0000L0#AAA[]')
    assert split_all(frame[:-1] + frame) == [frame[:-1], frame]


def test_binary_crc_bytes_may_be_cr_or_lf() -> None:
    body = b'"NULL"0000L0#AAA[]'
    raw = b"\n\r\n" + b"%04X" % len(body) + body + b"\r"
    assert split_all(raw + raw) == [raw, raw]


def test_buffer_is_bounded() -> None:
    splitter = FrameSplitter()
    chunks = splitter.feed(b"\n1234" + b"x" * (2 * MAX_FRAME))
    assert chunks and all(len(chunk) <= MAX_FRAME for chunk in chunks)
    assert len(splitter._buffer) <= MAX_FRAME
    # Garbage without any CR or LF is cut off at the bound too.
    chunks = FrameSplitter().feed(b"y" * (3 * MAX_FRAME))
    assert [len(chunk) for chunk in chunks] == [MAX_FRAME, MAX_FRAME]


def test_incomplete_frame_waits() -> None:
    splitter = FrameSplitter()
    assert splitter.feed(b"\n14AB") == []
    assert splitter.feed(b'0039"SIA-DCS"0006') == []
    assert splitter.flush() == [b'\n14AB0039"SIA-DCS"0006']
    assert splitter.flush() == []


@given(st.lists(frame_bodies(), min_size=1, max_size=5), st.data())
def test_chunking_invariance(cases: list[tuple[bytes, Header, bytes]], data: st.DataObject) -> None:
    frames = [
        build_frame(body, data.draw(st.sampled_from(list(CrcFormat)))) for body, _, _ in cases
    ]
    stream = b"\x00".join(frames)
    whole = split_all(stream)
    assert whole == frames
    assert split_all(stream, [bytes([b]) for b in stream]) == frames
    assert split_all(stream, data.draw(random_splits(stream))) == frames


@given(st.binary(max_size=600), st.data())
def test_splitter_loses_no_byte(stream: bytes, data: st.DataObject) -> None:
    chunks = split_all(stream, data.draw(random_splits(stream)))
    kept = b"".join(chunks)
    meaningful = bytes(b for b in stream if b not in b"\x00\r ")
    assert bytes(b for b in kept if b not in b"\x00\r ") == meaningful


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_parse_frame_fuzz(raw: bytes) -> None:
    try:
        frame = parse_frame(b"\n" + raw)
    except (FramingError, IntegrityError):
        return
    assert isinstance(frame, Frame)


# -- answers --------------------------------------------------------------------


def test_nak_matches_a_real_receiver_byte_for_byte() -> None:
    # ioBroker.sia's NAK, CRC-valid, answered at 11:52:07 on 7 May 2019.
    now = datetime(2019, 5, 7, 11, 52, 7, tzinfo=UTC)
    assert build_nak(now) == frame_of('AC4E0025"NAK"0000R0L0A0[]_11:52:07,05-07-2019')


def test_ack_matches_the_one_a_pyronix_panel_accepted() -> None:
    frame = parse_frame(frame_of('EA740027"NULL"0000L0#1409[]_20:38:07,08-27-2026'))
    ack = build_ack(frame, "1409", now=datetime.now(UTC), key=None, random_bytes=bytes)
    assert ack == frame_of('59890012"ACK"0000L0#1409[]')


def test_ack_echoes_receiver_and_defaults_the_line() -> None:
    frame = parse_frame(build_frame(b'"SIA-DCS"0042R7896#3456[#3456|NRP]'))
    ack = parse_frame(build_ack(frame, "3456", now=datetime.now(UTC), key=None, random_bytes=bytes))
    assert ack.header == Header("ACK", "0042", "7896", "0", "3456")


def test_answers_mirror_the_crc_dialect() -> None:
    frame = parse_frame(build_frame(b'"NULL"0000L0#AAA[]', CrcFormat.BINARY))
    assert parse_frame(build_duh(frame, "AAA")).crc_format is CrcFormat.BINARY
    frame = parse_frame(build_frame(b'"NULL"0000L0#AAA[]', CrcFormat.HEX_OVER_CR))
    ack = build_ack(frame, "AAA", now=datetime.now(UTC), key=None, random_bytes=bytes)
    assert parse_frame(ack).crc_format is CrcFormat.HEX_OVER_CR


def test_encrypted_ack_carries_padded_timestamp() -> None:
    frame = parse_frame(build_frame(b'"*SIA-DCS"0373L0#ABC[' + b"00" * 32))
    now = datetime(2024, 1, 25, 11, 2, 31, tzinfo=UTC)
    ack = parse_frame(build_ack(frame, "ABC", now=now, key=AJAX_KEY, random_bytes=_fake_random))
    assert ack.header.token == "*ACK" and ack.header.sequence == "0373"
    plaintext = decrypt(ack.content, AJAX_KEY)
    pad, bar, rest = plaintext.partition(b"|")
    assert bar and rest == b"]_11:02:31,01-25-2024"
    assert not set(pad) & set(b"|[]")
    assert len(plaintext) % 16 == 0


# -- AES ------------------------------------------------------------------------


def _fake_random(n: int) -> bytes:
    return bytes(range(0x5A, 0x5A + n))  # includes "[", "\\" and "]" on purpose


def test_real_ajax_frame_decrypts_with_the_ascii_key() -> None:
    raw = frame_of(
        '85DF0078"*SIA-DCS"4480L0#EA1984[83F153789366885D5F83DD5A8D19F691DE6602D5D7134'
        "2E244C040C5D10D89040444068312750F38DF7E63AD3DE8AD5A"
    )
    plaintext = decrypt(parse_frame(raw).content, AJAX_KEY)
    assert plaintext.endswith(b"|#EA1984|Nri0/RP0000]_16:57:20,08-11-2020")


def test_lower_case_ciphertext_is_accepted() -> None:
    sealed = encrypt(b"NRP]_00:00:00,01-01-2024", AJAX_KEY, _fake_random)
    assert decrypt(sealed.lower(), AJAX_KEY) == decrypt(sealed, AJAX_KEY)


@given(
    st.binary(min_size=16, max_size=16)
    | st.binary(min_size=24, max_size=24)
    | st.binary(min_size=32, max_size=32),
    st.binary(max_size=100),
    st.randoms(use_true_random=False),
)
def test_encrypt_decrypt_round_trip(key_bytes: bytes, text: bytes, rnd: object) -> None:
    key = Dc09Key(key_bytes, KeyFormat.HEX)
    sealed = encrypt(text, key, lambda n: rnd.randbytes(n))  # type: ignore[attr-defined]
    plaintext = decrypt(sealed, key)
    pad_length = len(plaintext) - len(text)
    assert plaintext.endswith(text) and 1 <= pad_length <= 16
    assert plaintext[pad_length - 1] == ord("|") and len(plaintext) % 16 == 0
    assert b"|" not in plaintext[: pad_length - 1]


def _library_cbc(key: Dc09Key) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key.key), modes.CBC(bytes(16)))


_WHOLE_BLOCKS = st.integers(1, 8).flatmap(lambda n: st.binary(min_size=16 * n, max_size=16 * n))


@given(
    st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    st.lists(_WHOLE_BLOCKS, min_size=1, max_size=6),
)
def test_aes_is_cbc_with_a_zero_iv_message_after_message(
    key_bytes: bytes, messages: list[bytes]
) -> None:
    # One key serves many messages; each must come out as from a context of its own.
    key = Dc09Key(key_bytes, KeyFormat.HEX)
    for blocks in messages:
        library = _library_cbc(key).decryptor()
        assert decrypt(blocks.hex().encode(), key) == library.update(blocks) + library.finalize()
        sealed = bytes.fromhex(encrypt(blocks, key, _fake_random).decode())
        library = _library_cbc(key).decryptor()
        pad, bar, rest = (library.update(sealed) + library.finalize()).partition(b"|")
        assert bar and rest == blocks and len(pad) == 15 and not set(pad) & set(b"|[]\r\n")


def test_keys_pickle_and_copy_with_a_working_cipher() -> None:
    assert dataclasses.asdict(AJAX_KEY) == {"key": AJAX_KEY.key, "representation": "ascii"}
    sealed = encrypt(b"#1234|NRP]", AJAX_KEY, _fake_random)
    pickled = pickle.loads(pickle.dumps(AJAX_KEY))  # noqa: S301 - our own bytes
    for key in (pickled, copy.deepcopy(AJAX_KEY)):
        assert key == AJAX_KEY and key.representation is KeyFormat.ASCII
        assert decrypt(sealed, key) == decrypt(sealed, AJAX_KEY)


def test_pad_is_a_whole_block_when_the_text_fits() -> None:
    sealed = encrypt(b"x" * 16, AJAX_KEY, _fake_random)
    assert len(decrypt(sealed, AJAX_KEY)) == 32


@pytest.mark.parametrize(
    ("ciphertext", "reason"),
    [(b"", "whole 16-byte blocks"), (b"AB" * 15, "whole 16-byte blocks"), (b"ZZ" * 16, "not hex")],
)
def test_bad_ciphertext(ciphertext: bytes, reason: str) -> None:
    with pytest.raises(DecryptionError, match=reason):
        decrypt(ciphertext, AJAX_KEY)


def test_key_representations() -> None:
    hex_key = Dc09Key.parse("hex:33424437453636414139453246313930")
    assert hex_key.key == AJAX_KEY.key and hex_key.representation is KeyFormat.HEX
    assert Dc09Key.parse(hex_key.spec()) == hex_key
    assert Dc09Key.parse(AJAX_KEY.spec()) == AJAX_KEY
    assert "3BD7" not in repr(AJAX_KEY) and "128-bit ascii" in repr(AJAX_KEY)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("3BD7E66AA9E2F190", "written hex:"),
        ("aes:3BD7E66AA9E2F190", "written hex:"),
        ("hex:XYZ", "not hex digits"),
        ("hex:0011", "16, 24 or 32 bytes"),
        ("ascii:ключключключключ", "ASCII characters only"),
        ("ascii:short", "16, 24 or 32 bytes"),
    ],
)
def test_bad_keys(spec: str, reason: str) -> None:
    with pytest.raises(DecryptionError, match=reason):
        Dc09Key.parse(spec)
