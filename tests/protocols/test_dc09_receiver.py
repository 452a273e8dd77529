"""What the DC-09 receiver answers, and the events it reads."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dc09 import CrcFormat, build_frame, format_timestamp, parse_frame
from protocols.dc09_crypto import Dc09Key, decrypt, encrypt
from protocols.dc09_receiver import (
    AccountSettings,
    DriftAction,
    TimestampPolicy,
    receive,
)
from protocols.errors import (
    DecryptionError,
    FramingError,
    IntegrityError,
    Response,
    TimestampError,
    UnknownAccountError,
    UnsupportedError,
)
from protocols.events import EventClass, Protocol, Qualifier

NOW = datetime(2024, 1, 25, 11, 2, 40, tzinfo=UTC)
KEY = Dc09Key.parse("ascii:3BD7E66AA9E2F190")
HIK_KEY = Dc09Key.parse("ascii:AAAAAAAAAAAAAAAA")


def served(**settings: AccountSettings) -> dict[str, AccountSettings]:
    return settings


PLAIN = AccountSettings()
KEYED = AccountSettings(key=KEY)


def seeded(n: int) -> bytes:
    return random.Random(n).randbytes(n)


def raw_cbc(plaintext: bytes, key: Dc09Key) -> bytes:
    """Encrypt exactly ``plaintext`` (whole blocks, no DC-09 pad), as hex."""
    encryptor = Cipher(algorithms.AES(key.key), modes.CBC(bytes(16))).encryptor()
    return (encryptor.update(plaintext) + encryptor.finalize()).hex().upper().encode()


def plain_frame(data: str, *, account: str = "1234", when: datetime | None = NOW) -> bytes:
    stamp = b"" if when is None else format_timestamp(when)
    return build_frame(
        b'"%s"0042L0#%s[%s]%s'
        % (
            b"ADM-CID" if "|" in data and data.split("|")[1][:1].isdigit() else b"SIA-DCS",
            account.encode(),
            data.encode(),
            stamp,
        )
    )


def sealed_frame(token: str, data: str, *, key: Dc09Key = KEY, when: datetime = NOW) -> bytes:
    sealed = encrypt(data.encode() + b"]" + format_timestamp(when), key, seeded)
    return build_frame(b'"*%s"0373L0#1234[%s' % (token.encode(), sealed))


def test_plain_burglary_alarm_is_acked_with_its_event() -> None:
    raw = plain_frame("#1234|Nri1/BA012")
    reception = receive(raw, now=NOW, accounts=served(**{"1234": PLAIN}).get)
    assert reception.response is Response.ACK and reception.error is None
    assert reception.reply == build_frame(b'"ACK"0042L0#1234[]')
    assert reception.message is not None
    (event,) = reception.message.events
    assert (event.account, event.protocol, event.code) == ("1234", Protocol.DC09, "BA")
    assert (event.zone, event.partition, event.event_class) == ("012", "1", EventClass.BURGLARY)
    assert event.device_time == NOW and event.raw == raw
    assert reception.message.drift == 0 and not reception.message.drift_flagged


def test_contact_id_message_is_read() -> None:
    raw = build_frame(b'"ADM-CID"0078R1L0#AAAA[#00AAAA|3407 01 001]_11:02:30,01-25-2024')
    reception = receive(raw, now=NOW, accounts=served(AAAA=PLAIN).get)
    assert reception.response is Response.ACK and reception.message is not None
    assert reception.message.data_account == "00AAAA"
    (event,) = reception.message.events
    assert (event.account, event.cid_event, event.qualifier) == ("AAAA", "407", Qualifier.RESTORE)
    assert event.user == "001" and event.event_class is EventClass.OPEN_CLOSE


def test_account_from_the_data_block_when_the_header_has_none() -> None:
    raw = build_frame(b'"SIA-DCS"4738R0001L0001[#006969|Nri04/OP001]')
    reception = receive(raw, now=NOW, accounts=served(**{"006969": PLAIN}).get)
    assert reception.response is Response.ACK
    assert reception.reply == build_frame(b'"ACK"4738R0001L0001#006969[]')


def test_no_account_anywhere_is_nak() -> None:
    raw = build_frame(b'"SIA-DCS"4738R0001L0001[Nri04/OP001]')
    reception = receive(raw, now=NOW, accounts=served().get)
    assert reception.response is Response.NAK
    assert isinstance(reception.error, FramingError)


def test_link_test_is_acked_as_a_test_event() -> None:
    raw = build_frame(b'"NULL"0000L0#AAAB[#0000|0000 00 000]' + format_timestamp(NOW))
    reception = receive(raw, now=NOW, accounts=served(AAAB=PLAIN).get)
    assert reception.response is Response.ACK and reception.message is not None
    (event,) = reception.message.events
    assert event.event_class is EventClass.TEST and event.code is None


def test_unknown_event_code_is_acked_and_unclassified() -> None:
    reception = receive(
        plain_frame("#1234|Nri1/QZ7"), now=NOW, accounts=served(**{"1234": PLAIN}).get
    )
    assert reception.response is Response.ACK and reception.message is not None
    (event,) = reception.message.events
    assert event.code == "QZ" and event.unclassified


def test_unknown_account_is_duh_echoing_the_frame() -> None:
    reception = receive(plain_frame("#1234|NBA1"), now=NOW, accounts=served().get)
    assert reception.response is Response.DUH
    assert isinstance(reception.error, UnknownAccountError)
    assert reception.reply == build_frame(b'"DUH"0042L0#1234[]')


def test_unknown_token_is_duh() -> None:
    raw = build_frame(b'"MODULE_REG"0001L0#1234[]')
    reception = receive(raw, now=NOW, accounts=served(**{"1234": PLAIN}).get)
    assert reception.response is Response.DUH and isinstance(reception.error, UnsupportedError)


def test_answers_are_decoded_but_never_answered() -> None:
    reception = receive(build_frame(b'"ACK"0000L0#1409[]'), now=NOW, accounts=served().get)
    assert reception.response is None and reception.reply == b"" and reception.error is None
    assert reception.frame is not None and reception.frame.header.token == "ACK"


def test_bad_crc_is_nak_with_receiver_time() -> None:
    raw = b'\n2E680034"SIA-DCS"6002L0#AAA[|Nri1/CL501]_14:12:04,09-25-2019\r'
    reception = receive(raw, now=NOW, accounts=served(AAA=PLAIN).get)
    assert reception.response is Response.NAK and isinstance(reception.error, IntegrityError)
    assert reception.reply == build_frame(b'"NAK"0000R0L0A0[]' + format_timestamp(NOW))


def test_malformed_data_block_is_nak() -> None:
    raw = build_frame(b'"SIA-DCS"0001L0#1234[#1234|Nri1/BA1')
    reception = receive(raw, now=NOW, accounts=served(**{"1234": PLAIN}).get)
    assert reception.response is Response.NAK and isinstance(reception.error, FramingError)


# -- encryption -------------------------------------------------------------------


def test_encrypted_alarm_is_acked_encrypted() -> None:
    raw = sealed_frame("SIA-DCS", "#1234|Nri1/FA003")
    reception = receive(raw, now=NOW, accounts=served(**{"1234": KEYED}).get, random_bytes=seeded)
    assert reception.response is Response.ACK and reception.message is not None
    assert reception.message.events[0].event_class is EventClass.FIRE
    ack = parse_frame(reception.reply)
    assert ack.header.token == "*ACK" and ack.header.sequence == "0373"
    assert decrypt(ack.content, KEY).endswith(b"|]" + format_timestamp(NOW))


def test_real_ajax_capture_decrypts() -> None:
    raw = (
        b'\n85DF0078"*SIA-DCS"4480L0#EA1984[83F153789366885D5F83DD5A8D19F691DE6602D5D7134'
        b"2E244C040C5D10D89040444068312750F38DF7E63AD3DE8AD5A\r"
    )
    sent = datetime(2020, 8, 11, 16, 57, 20, tzinfo=UTC)
    reception = receive(raw, now=sent, accounts=served(EA1984=KEYED).get)
    assert reception.response is Response.ACK and reception.message is not None
    (event,) = reception.message.events
    assert (event.code, event.partition, event.event_class) == ("RP", "0", EventClass.TEST)


def test_hikvision_null_without_pad_terminator() -> None:
    # Hikvision hub firmware 2020 pads with "p" and sends no "|" (PROTOCOLS.md §1.10).
    sealed = raw_cbc(b"ppppppppppp]_18:24:52,07-05-2020", HIK_KEY)
    raw = build_frame(b'"*NULL"0000R0L0#AAAB[' + sealed)
    when = datetime(2020, 7, 5, 18, 24, 52, tzinfo=UTC)
    reception = receive(raw, now=when, accounts=served(AAAB=AccountSettings(key=HIK_KEY)).get)
    assert reception.response is Response.ACK


def test_event_padded_without_terminator_is_read() -> None:
    # The pad ends without "|" and the block has no account: the message is
    # found where the rest reads as one (DC-09 §5.4.4 bent, as Hikvision does).
    plaintext = b"ppp" + b"Nri1/BA1]" + format_timestamp(NOW)
    raw = build_frame(b'"*SIA-DCS"0001L0#1234[' + raw_cbc(plaintext, KEY))
    reception = receive(raw, now=NOW, accounts=served(**{"1234": KEYED}).get)
    assert reception.response is Response.ACK and reception.message is not None
    (event,) = reception.message.events
    assert (event.code, event.zone, event.partition) == ("BA", "1", "1")


def test_no_terminator_and_no_message_is_nak() -> None:
    raw = build_frame(b'"*SIA-DCS"0001L0#1234[' + raw_cbc(b"p" * 32, KEY))
    reception = receive(raw, now=NOW, accounts=served(**{"1234": KEYED}).get)
    assert reception.response is Response.NAK and isinstance(reception.error, DecryptionError)
    assert "no pad terminator" in reception.error.reason


def test_wrong_key_is_nak() -> None:
    raw = sealed_frame("SIA-DCS", "#1234|Nri1/BA1", key=HIK_KEY)
    reception = receive(raw, now=NOW, accounts=served(**{"1234": KEYED}).get)
    assert reception.response is Response.NAK and isinstance(reception.error, DecryptionError)


def test_encrypted_without_a_key_is_duh() -> None:
    raw = sealed_frame("SIA-DCS", "#1234|Nri1/BA1")
    reception = receive(raw, now=NOW, accounts=served(**{"1234": PLAIN}).get)
    assert reception.response is Response.DUH and "has no key" in str(reception.error)


def test_encrypted_without_header_account_is_nak() -> None:
    sealed = encrypt(b"Nri1/BA1]" + format_timestamp(NOW), KEY, seeded)
    reception = receive(build_frame(b'"*SIA-DCS"0001L0[' + sealed), now=NOW, accounts=served().get)
    assert reception.response is Response.NAK and isinstance(reception.error, FramingError)


def test_encrypted_without_timestamp_is_nak() -> None:
    sealed = encrypt(b"#1234|Nri1/BA1]", KEY, seeded)
    raw = build_frame(b'"*SIA-DCS"0001L0#1234[' + sealed)
    reception = receive(raw, now=NOW, accounts=served(**{"1234": KEYED}).get)
    assert reception.response is Response.NAK and "without timestamp" in str(reception.error)


# -- the timestamp window ---------------------------------------------------------


@pytest.mark.parametrize(("offset", "inside"), [(20, True), (21, False), (-40, True), (-41, False)])
def test_window_edges_for_encrypted_messages(offset: int, inside: bool) -> None:
    raw = sealed_frame("SIA-DCS", "#1234|Nri1/BA1", when=NOW + timedelta(seconds=offset))
    reception = receive(raw, now=NOW, accounts=served(**{"1234": KEYED}).get)
    if inside:
        assert reception.response is Response.ACK
    else:
        assert reception.response is Response.NAK
        assert isinstance(reception.error, TimestampError)
        assert reception.error.drift_seconds == offset
        assert reception.reply.endswith(format_timestamp(NOW) + b"\r")  # our time, to resync


def test_plain_message_outside_window_is_accepted_and_flagged() -> None:
    # A panel retrying 25 minutes later keeps its timestamp (home-assistant #21253).
    raw = plain_frame("#1234|Nri1/BA1", when=NOW - timedelta(minutes=25))
    reception = receive(raw, now=NOW, accounts=served(**{"1234": PLAIN}).get)
    assert reception.response is Response.ACK and reception.message is not None
    assert reception.message.drift_flagged and reception.message.drift == -1500


def test_policy_per_account_overrides_the_default() -> None:
    strict = AccountSettings(timestamps=TimestampPolicy(plain=DriftAction.NAK))
    lenient = AccountSettings(key=KEY, timestamps=TimestampPolicy(encrypted=DriftAction.FLAG))
    late_plain = plain_frame("#1234|Nri1/BA1", when=NOW - timedelta(minutes=5))
    late_sealed = sealed_frame("SIA-DCS", "#1234|Nri1/BA1", when=NOW - timedelta(minutes=5))
    assert receive(late_plain, now=NOW, accounts=served(**{"1234": strict}).get).response is (
        Response.NAK
    )
    assert receive(late_sealed, now=NOW, accounts=served(**{"1234": lenient}).get).response is (
        Response.ACK
    )
    wide = TimestampPolicy(ahead=600, behind=600, plain=DriftAction.NAK)
    assert receive(late_plain, now=NOW, accounts=served(**{"1234": PLAIN}).get, policy=wide).message


def test_panel_sending_local_time_is_corrected_by_its_offset() -> None:
    beijing = AccountSettings(key=KEY, utc_offset=timedelta(hours=8))
    raw = sealed_frame("SIA-DCS", "#1234|Nri1/BA1", when=NOW + timedelta(hours=8))
    reception = receive(raw, now=NOW, accounts=served(**{"1234": beijing}).get)
    assert reception.response is Response.ACK and reception.message is not None
    assert reception.message.events[0].device_time == NOW


def test_binary_crc_panel_gets_binary_crc_answers() -> None:
    raw = build_frame(b'"SIA-DCS"9832L000000#2511[#2511|Nri01/BB026]', CrcFormat.BINARY)
    reception = receive(raw, now=NOW, accounts=served(**{"2511": PLAIN}).get)
    assert reception.response is Response.ACK
    assert reception.reply == build_frame(b'"ACK"9832L000000#2511[]', CrcFormat.BINARY)


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_receive_never_raises(raw: bytes) -> None:
    reception = receive(b"\n" + raw + b"\r", now=NOW, accounts=served(AAA=KEYED).get)
    assert reception.response in (None, Response.NAK, Response.DUH, Response.ACK)
    assert (reception.error is None) == (reception.response in (None, Response.ACK))


@settings(max_examples=400)
@given(
    st.sampled_from([b"SIA-DCS", b"ADM-CID", b"NULL", b"HENG-BO", b"*SIA-DCS", b"*NULL"]),
    st.binary(max_size=120) | st.text("0123456789ABCDEFabcdef", max_size=96).map(str.encode),
)
def test_genuine_frames_with_any_content_never_raise(token: bytes, content: bytes) -> None:
    # CRC-valid frames reach the data-block parsers and the decryption.
    raw = build_frame(b'"' + token + b'"0001L0#AAA[' + content)
    reception = receive(raw, now=NOW, accounts=served(AAA=KEYED).get)
    assert reception.frame is not None
    assert (reception.error is None) == (reception.response is Response.ACK)


def test_decrypted_text_with_pad_but_no_message_is_nak() -> None:
    # A wrong key now and then yields a "|" by chance; what follows must still parse.
    raw = build_frame(b'"*SIA-DCS"0001L0#1234[' + raw_cbc(b"ab|" + b"x" * 29, KEY))
    reception = receive(raw, now=NOW, accounts=served(**{"1234": KEYED}).get)
    assert reception.response is Response.NAK
    assert isinstance(reception.error, DecryptionError)
    assert "wrong key?" in reception.error.reason
