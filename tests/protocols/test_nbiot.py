"""Tests of protocols.nbiot: real platform pushes, OneNET signatures and secure mode, fuzz.

The OneNET encrypting side lives here only: the receiver never encrypts, but the
tests must build genuine secure-mode bodies to prove the decrypting side.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from protocols.errors import (
    DecryptionError,
    FramingError,
    IntegrityError,
    ProtocolError,
    UnsupportedError,
)
from protocols.events import AlarmEvent, EventClass, Protocol, Qualifier
from protocols.nbiot import (
    _member_spans,
    decode_ctwing,
    decode_oceanconnect,
    decode_onenet,
    decode_push,
    verify_url,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Structured documents cost more to generate: fewer, but each reaches the decoders.
FUZZ_SHAPED = settings(FUZZ, max_examples=200)
PROPERTY = settings(max_examples=60, deadline=None)

TOKEN = "abcdefghijkmlnopqrstuvwxyz"
NONCE = "Nx7q2LpA"
KEY = bytes(range(32))


def ms(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)


# --------------------------------------------------------------------------- real pushes

# The nbiot_json entries of the capture corpus (tests/captures/corpus.json, by index),
# copied so each case reads on its own; a test below keeps them equal to the corpus.
CORPUS: dict[int, bytes] = {
    80: b'{"upPacketSN":-1,"upDataSN":-1,"topic":"v1/up/ad19prof","timestamp":1606982320277,"tenantId":"10461180","serviceId":"","protocol":"lwm2m","productId":"15014772","payload":{"serviceId":"notification","serviceData":{"TData":30,"SNR":1,"RSRP":114,"IMEI":"860374051096202","Cell_ID_Length":8,"Cell_ID":"38848339","CSQ":5,"Battery_Level":100,"Alarm_Status":2,"AlarmLevel":100}},"messageType":"dataReport","deviceType":"","deviceId":"acf7baaee65e431eadfb8f5fe50e8b81","assocAssetId":"","IMSI":"undefined","IMEI":"860374051096202"}',  # noqa: E501
    81: b'{"IMEI":"860803031745975","IMSI":"undefined","deviceType":"","messageType":"dataReport","topic":"v1/up/ad","assocAssetId":"","payload":{"APPdata":"UFUAMBAKLwgBAAMAGwL75SxogDAwcVR5BQgAAAAAAS9kdwJVcVJZAvmvgAL75SwAAAAAAA=="},"upPacketSN":"","upDataSN":"","serviceId":"","tenantId":"10461180","productId":"10045600","deviceId":"f15d8b0a090447539896c085e27966c4","timestamp":1586571442454,"protocol":"lwm2m"}',  # noqa: E501
    82: b'{"timestamp":1589444233258,"tenantId":"10461180","taskId":1,"result":{"resultDetail":"","resultCode":"DELIVERED"},"protocol":"lwm2m","productId":"10053421","messageType":"commandResponse","deviceId":"44d0b9e48d404094bbbcf889e4e64ece"}',  # noqa: E501
    83: b'{"upPacketSN":"","upDataSN":"","topic":"v1/up/ad","timestamp":1589444235861,"tenantId":"10461180","serviceId":"","protocol":"lwm2m","productId":"10053421","payload":{"APPdata":"UFUAPBAAAAYBAAMAJwMnuwpogDAwYGckCQYAAQAADjxkZAJVcVCnAAAAAAAAAEYAAAAAAAAAAAEDJ7sKAAAAAA=="},"messageType":"dataReport","deviceType":"","deviceId":"44d0b9e48d404094bbbcf889e4e64ece","assocAssetId":"","IMSI":"undefined","IMEI":"860803030676429"}',  # noqa: E501
    84: b'{"upPacketSN":-1,"upDataSN":-1,"topic":"ad","timestamp":1609231209882,"tenantId":"10461180","serviceId":"","protocol":"tcp","productId":"15017085","payload":{"APPdata":"ewogICAiYiIgOiBbCiAgICAgIHsKICAgICAgICAgImlkIiA6ICIyMjIiLAogICAgICAgICAidiIgOiAiMSIKICAgICAgfQogICBdLAogICAiYyIgOiAyNywKICAgImlkIiA6IDE2MDkyMzEyMDk3NjcsCiAgICJ0bSIgOiAxNjA5MjMxMjA5NzY3Cn0="},"messageType":"dataReport","deviceType":"","deviceId":"1501708501","assocAssetId":"","IMSI":"","IMEI":""}',  # noqa: E501
    85: b'{"notifyType":"deviceDataChanged","deviceId":"10c60373-7a77-4712-883b-b1aaa31d18cc", "gatewayId":"10c60373-7a77-4712-883b-b1aaa31d18cc","requestId":null, "service":{"serviceId":"WPS","serviceType":"WPS","data":{"Data":"N311V31I865815040244829H89861118280005212549X10T28U99S18"},"eventTime":"20200520T021156Z"}}',  # noqa: E501
    86: b'{"notifyType":"deviceDataChanged","deviceId":"10c60373-7a77-4712-883b-b1aaa31d18cc","gatewayId":"10c60373-7a77-4712-883b-b1aaa31d18cc","requestId":null,"service":{"serviceId":"WPS","serviceType":"WPS","data":{"Data":"N311V31I865815040244829H89860317452041182488X10T26U99S25"},"eventTime":"20200706T055534Z"}}',  # noqa: E501
    87: b'{"timestamp":1619523036482,"tenantId":"2000033827","protocol":"lwm2m","productId":"15045240","messageType":"deviceOnlineOfflineReport","iccid":"undefined","eventType":1,"deviceId":"d01308047f864601a821e02dc328eab4"}',  # noqa: E501
    88: b'{"upPacketSN":-1,"upDataSN":-1,"topic":"v1/up/ad19","timestamp":1619524024049,"tenantId":"2000033827","serviceId":10,"protocol":"lwm2m","productId":"15045240","payload":{"time":1619524019000,"longitude":-174,"latitude":-86},"messageType":"dataReport","deviceType":"","deviceId":"d01308047f864601a821e02dc328eab4","assocAssetId":"","IMSI":"undefined","IMEI":"161941770261953"}',  # noqa: E501
    89: b'{"upPacketSN":-1,"upDataSN":-1,"topic":"v1/up/ad","timestamp":1650554828842,"tenantId":"2000033629","serviceId":"","protocol":"lwm2m","productId":"15114816","payload":{"APPdata":"AQFWMS4wAAAAACMAAAAH/wAlODYyNTkyMDUxNjUxNDcyAAEAMjUAODAAAAAAAAABAQAAAAEAAASD"},"messageType":"dataReport","deviceType":"","deviceId":"40edca19b0124480864366de4621de99","assocAssetId":"","IMSI":"undefined","IMEI":"862592051651472"}',  # noqa: E501
    90: b'{"at":1553224749838,"login_type":10,"imei":"866971030389733","type":2,"dev_id":520156945,"status":1}',  # noqa: E501
}

# index: (account, protocol, device time, code, qualifier, class, x-data that must be there)
EXPECTED: dict[int, tuple[str, Protocol, datetime, str | None, Qualifier, EventClass | None, dict[str, str]]] = {  # noqa: E501
    80: ("860374051096202", Protocol.CTWING, ms(1606982320277), None, Qualifier.NEW, None,
         {"productId": "15014772", "topic": "v1/up/ad19prof", "upPacketSN": "-1",
          "deviceId": "acf7baaee65e431eadfb8f5fe50e8b81", "messageType": "dataReport"}),
    81: ("860803031745975", Protocol.CTWING, ms(1586571442454), None, Qualifier.NEW, None,
         {"productId": "10045600", "topic": "v1/up/ad", "deviceId": "f15d8b0a090447539896c085e27966c4"}),  # noqa: E501
    82: ("44d0b9e48d404094bbbcf889e4e64ece", Protocol.CTWING, ms(1589444233258), None,
         Qualifier.STATUS, EventClass.OTHER,
         {"messageType": "commandResponse", "taskId": "1", "resultCode": "DELIVERED"}),
    83: ("860803030676429", Protocol.CTWING, ms(1589444235861), None, Qualifier.NEW, None,
         {"productId": "10053421", "deviceId": "44d0b9e48d404094bbbcf889e4e64ece"}),
    84: ("1501708501", Protocol.CTWING, ms(1609231209882), None, Qualifier.NEW, None,
         {"productId": "15017085", "protocol": "tcp", "topic": "ad"}),
    85: ("10c60373-7a77-4712-883b-b1aaa31d18cc", Protocol.OCEANCONNECT,
         datetime(2020, 5, 20, 2, 11, 56, tzinfo=UTC), None, Qualifier.NEW, None,
         {"notifyType": "deviceDataChanged", "serviceId": "WPS", "serviceType": "WPS",
          "gatewayId": "10c60373-7a77-4712-883b-b1aaa31d18cc"}),
    86: ("10c60373-7a77-4712-883b-b1aaa31d18cc", Protocol.OCEANCONNECT,
         datetime(2020, 7, 6, 5, 55, 34, tzinfo=UTC), None, Qualifier.NEW, None,
         {"serviceId": "WPS"}),
    87: ("d01308047f864601a821e02dc328eab4", Protocol.CTWING, ms(1619523036482), "YK",
         Qualifier.RESTORE, EventClass.COMMUNICATION,
         {"messageType": "deviceOnlineOfflineReport", "eventType": "1", "productId": "15045240"}),
    88: ("161941770261953", Protocol.CTWING, ms(1619524024049), None, Qualifier.NEW, None,
         {"serviceId": "10", "topic": "v1/up/ad19", "deviceId": "d01308047f864601a821e02dc328eab4"}),  # noqa: E501
    89: ("862592051651472", Protocol.CTWING, ms(1650554828842), None, Qualifier.NEW, None,
         {"productId": "15114816", "topic": "v1/up/ad"}),
    90: ("866971030389733", Protocol.ONENET, ms(1553224749838), "YK", Qualifier.RESTORE,
         EventClass.COMMUNICATION,
         {"type": "2", "dev_id": "520156945", "login_type": "10", "status": "1"}),
}  # fmt: skip


@pytest.mark.parametrize("index", sorted(CORPUS))
def test_corpus_push_decodes_to_expected_event(index: int) -> None:
    (event,) = decode_push(CORPUS[index])
    account, protocol, time, code, qualifier, event_class, xdata = EXPECTED[index]
    assert event.account == account
    assert event.protocol is protocol
    assert event.device_time == time
    assert event.device_time.utcoffset() is not None
    assert event.code == code
    assert event.qualifier is qualifier
    assert event.event_class is event_class
    assert dict(event.xdata).items() >= xdata.items()
    assert event.raw == CORPUS[index]


def test_corpus_copies_match_the_shared_corpus() -> None:
    path = Path(__file__).resolve().parents[1] / "captures" / "corpus.json"
    entries = json.loads(path.read_text(encoding="utf-8"))
    shared = [e["raw"].encode() for e in entries if e["kind"] == "nbiot_json"]
    # A new platform capture in the corpus must get its expectations here too.
    assert sorted(shared) == sorted(CORPUS.values())


def test_smoke_detector_profile_value_is_kept_not_guessed() -> None:
    # Alarm_Status 2 is "silenced" in the only dictionary found, bound to one product:
    # it must reach the operator verbatim and unclassified, never as a fire alarm.
    (event,) = decode_push(CORPUS[80])
    assert event.unclassified and event.code is None
    payload = orjson.loads(event.text or "")
    assert payload["serviceData"]["Alarm_Status"] == 2
    assert event.text == orjson.dumps(orjson.loads(CORPUS[80])["payload"]).decode()


def test_undefined_imsi_and_empty_fields_are_not_kept_as_xdata() -> None:
    (event,) = decode_push(CORPUS[80])
    names = dict(event.xdata)
    assert "IMSI" not in names and "deviceType" not in names and "serviceId" not in names


@pytest.mark.parametrize("index", [81, 83, 89])
def test_transparent_binary_appdata_is_kept_as_hex(index: int) -> None:
    (event,) = decode_push(CORPUS[index])
    appdata = orjson.loads(CORPUS[index])["payload"]["APPdata"]
    assert dict(event.xdata)["APPdata_hex"] == base64.b64decode(appdata).hex()
    assert event.text == orjson.dumps({"APPdata": appdata}).decode()


def test_huaqiang_frames_keep_their_0x5055_header() -> None:
    for index in (81, 83):
        (event,) = decode_push(CORPUS[index])
        assert dict(event.xdata)["APPdata_hex"].startswith("5055")


def test_transparent_json_appdata_becomes_compact_text() -> None:
    (event,) = decode_push(CORPUS[84])
    assert event.text == '{"b":[{"id":"222","v":"1"}],"c":27,"id":1609231209767,"tm":1609231209767}'
    assert "APPdata_hex" not in dict(event.xdata)
    assert event.account == "1501708501"  # IMEI "" falls back to deviceId


def test_oceanconnect_data_is_compact_text() -> None:
    (event,) = decode_push(CORPUS[85])
    assert event.text == '{"Data":"N311V31I865815040244829H89861118280005212549X10T28U99S18"}'
    assert "requestId" not in dict(event.xdata)  # null


def test_command_response_is_informational_not_an_alarm() -> None:
    (event,) = decode_push(CORPUS[82])
    assert event.text == '{"resultDetail":"","resultCode":"DELIVERED"}'
    assert "resultDetail" not in dict(event.xdata)


def test_platform_specific_decoders_accept_their_own_pushes() -> None:
    assert decode_ctwing(CORPUS[87])[0].code == "YK"
    assert decode_oceanconnect(CORPUS[86])[0].protocol is Protocol.OCEANCONNECT
    assert decode_onenet(CORPUS[90], token=None, aes_key=None)[0].code == "YK"


def test_platform_specific_decoders_refuse_other_platforms() -> None:
    with pytest.raises(FramingError, match="no messageType"):
        decode_ctwing(CORPUS[85])
    with pytest.raises(FramingError, match="no notifyType"):
        decode_oceanconnect(CORPUS[87])
    with pytest.raises(FramingError, match="neither msg nor enc_msg"):
        decode_onenet(CORPUS[87], token=None, aes_key=None)


# --------------------------------------------------------------------------- CTWing


def ctwing(**fields: object) -> bytes:
    doc: dict[str, object] = {"timestamp": 1619523036482, "deviceId": "dev-1", "productId": "p"}
    doc.update(fields)
    return orjson.dumps({k: v for k, v in doc.items() if v is not None})


@pytest.mark.parametrize(
    ("event_type", "code", "qualifier", "event_class"),
    [
        (0, "YC", Qualifier.NEW, EventClass.COMMUNICATION),
        (1, "YK", Qualifier.RESTORE, EventClass.COMMUNICATION),
        (7, None, Qualifier.NEW, None),  # unknown value: kept, unclassified
        (True, None, Qualifier.NEW, None),  # JSON true is not eventType 1
        ("1", None, Qualifier.NEW, None),
    ],
)
def test_ctwing_online_offline(
    event_type: object, code: str | None, qualifier: Qualifier, event_class: EventClass | None
) -> None:
    (event,) = decode_push(ctwing(messageType="deviceOnlineOfflineReport", eventType=event_type))
    assert (event.code, event.qualifier, event.event_class) == (code, qualifier, event_class)
    assert event.text is None


@pytest.mark.parametrize(
    ("event_type", "code", "qualifier", "event_class"),
    [
        (3, "YX", Qualifier.NEW, EventClass.TROUBLE),  # fault
        (2, None, Qualifier.NEW, None),  # warning: nature only in product content
        (1, None, Qualifier.STATUS, EventClass.OTHER),  # info
        (9, None, Qualifier.NEW, None),
    ],
)
def test_ctwing_event_report(
    event_type: int, code: str | None, qualifier: Qualifier, event_class: EventClass | None
) -> None:
    body = ctwing(
        messageType="eventReport",
        eventType=event_type,
        eventContent={"smoke_state": 1},
        serviceId=1001,
        deviceSn="SN9",
        IMEI="861234567890123",
    )
    (event,) = decode_push(body)
    assert (event.code, event.qualifier, event.event_class) == (code, qualifier, event_class)
    assert event.text == '{"smoke_state":1}'
    assert event.account == "861234567890123"
    assert dict(event.xdata)["serviceId"] == "1001"
    assert dict(event.xdata)["deviceSn"] == "SN9"


@pytest.mark.parametrize(
    ("imei", "account"),
    [
        ("860000000000001", "860000000000001"),
        (" 860000000000001 ", "860000000000001"),
        ("undefined", "dev-1"),
        ("UNDEFINED", "dev-1"),
        ("", "dev-1"),
        ("  ", "dev-1"),
        (860000000000002, "860000000000002"),
        (-5, "dev-1"),
        (False, "dev-1"),
        ({"x": 1}, "dev-1"),
    ],
)
def test_ctwing_account_prefers_a_real_imei(imei: object, account: str) -> None:
    (event,) = decode_push(ctwing(messageType="dataReport", IMEI=imei, payload={}))
    assert event.account == account


def test_ctwing_without_identity_is_refused() -> None:
    with pytest.raises(FramingError, match="neither a usable IMEI nor a deviceId"):
        decode_push(orjson.dumps({"messageType": "dataReport", "IMEI": "undefined"}))


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        (1.5e12, "integer milliseconds"),
        ("1619523036482", "integer milliseconds"),
        (True, "integer milliseconds"),
        (-1, "outside years 1970-9999"),
        (253402300800000, "outside years 1970-9999"),
    ],
)
def test_ctwing_bad_timestamp_is_refused(timestamp: object, reason: str) -> None:
    with pytest.raises(FramingError, match=reason):
        decode_push(ctwing(messageType="dataReport", timestamp=timestamp))


def test_ctwing_timestamp_limits() -> None:
    (event,) = decode_push(ctwing(messageType="dataReport", timestamp=0))
    assert event.device_time == datetime(1970, 1, 1, tzinfo=UTC)
    (event,) = decode_push(ctwing(messageType="dataReport", timestamp=253402300799999))
    assert event.device_time == datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    (event,) = decode_push(orjson.dumps({"messageType": "dataReport", "deviceId": "d"}))
    assert event.device_time is None and event.text is None


def test_ctwing_unknown_message_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedError, match="deviceAdded") as info:
        decode_push(ctwing(messageType="deviceAdded"))
    assert info.value.response == "DUH"


def test_ctwing_message_type_must_be_a_string() -> None:
    with pytest.raises(FramingError, match="messageType must be a string"):
        decode_push(ctwing(messageType=3))


def test_ctwing_command_response_without_result() -> None:
    (event,) = decode_push(ctwing(messageType="commandResponse", taskId=7))
    assert event.text is None and dict(event.xdata)["taskId"] == "7"
    assert event.event_class is EventClass.OTHER


@pytest.mark.parametrize(
    ("appdata", "text", "hex_"),
    [
        ("MQ==", '{"APPdata":"MQ=="}', "31"),  # "1" parses as JSON, but is no document
        ("WzEsMl0=", "[1,2]", None),  # "[1,2]"
        ("", '{"APPdata":""}', ""),
        ("/w==", '{"APPdata":"/w=="}', "ff"),  # not UTF-8
    ],
)
def test_ctwing_appdata_forms(appdata: str, text: str, hex_: str | None) -> None:
    (event,) = decode_push(ctwing(messageType="dataReport", payload={"APPdata": appdata}))
    assert event.text == text
    assert dict(event.xdata).get("APPdata_hex") == hex_


@pytest.mark.parametrize("appdata", ["UFU*", "UFU", "UFUA=A==", "ünï"])
def test_ctwing_bad_base64_appdata_is_refused(appdata: str) -> None:
    with pytest.raises(FramingError, match="APPdata is not valid Base64"):
        decode_push(ctwing(messageType="dataReport", payload={"APPdata": appdata}))


def test_ctwing_non_string_appdata_is_plain_payload() -> None:
    (event,) = decode_push(ctwing(messageType="dataReport", payload={"APPdata": 5}))
    assert event.text == '{"APPdata":5}'
    (event,) = decode_push(ctwing(messageType="dataReport", payload=[{"serviceData": {}}]))
    assert event.text == '[{"serviceData":{}}]'


def test_ctwing_payload_too_deep_to_keep_is_a_framing_error() -> None:
    deep = b"[" * 300 + b"]" * 300
    body = b'{"messageType":"dataReport","deviceId":"d","payload":' + deep + b"}"
    with pytest.raises(FramingError, match="nested too deeply"):
        decode_push(body)


def test_xdata_drops_only_exact_no_value_markers() -> None:
    (event,) = decode_push(
        ctwing(messageType="dataReport", IMSI="undefined", iccid="", topic=" ", deviceSn="null")
    )
    xdata = dict(event.xdata)
    assert "IMSI" not in xdata and "iccid" not in xdata
    assert xdata["topic"] == " " and xdata["deviceSn"] == "null"


def test_xdata_renders_non_string_values_as_json() -> None:
    (event,) = decode_push(
        ctwing(messageType="dataReport", serviceId={"a": [1]}, upPacketSN=5, deviceType=True)
    )
    xdata = dict(event.xdata)
    assert xdata["serviceId"] == '{"a":[1]}'
    assert xdata["upPacketSN"] == "5"
    assert xdata["deviceType"] == "true"


# --------------------------------------------------------------------------- OceanConnect


def test_oceanconnect_batch_gives_one_event_per_service() -> None:
    body = orjson.dumps(
        {
            "notifyType": "deviceDatasChanged",
            "deviceId": "gw-dev",
            "services": [
                {"serviceId": "Smoke", "data": {"alarm": 1}, "eventTime": "20240229T235959Z"},
                {"serviceId": "Battery", "data": {"level": 80}},
            ],
        }
    )
    first, second = decode_push(body)
    assert first.text == '{"alarm":1}' and second.text == '{"level":80}'
    assert first.device_time == datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    assert second.device_time is None
    assert dict(first.xdata)["serviceId"] == "Smoke"
    assert dict(second.xdata)["serviceId"] == "Battery"
    assert first.account == second.account == "gw-dev"
    assert first.unclassified and second.unclassified


@pytest.mark.parametrize(
    ("doc", "error", "reason"),
    [
        ({"notifyType": "deviceDatasChanged", "deviceId": "d", "services": []},
         FramingError, "non-empty services"),
        ({"notifyType": "deviceDatasChanged", "deviceId": "d", "services": {}},
         FramingError, "non-empty services"),
        ({"notifyType": "deviceDataChanged", "deviceId": "d", "service": "x"},
         FramingError, "service must be an object"),
        ({"notifyType": "deviceDataChanged", "deviceId": "d"},
         FramingError, "service must be an object"),
        ({"notifyType": "deviceDataChanged", "service": {}}, FramingError, "no deviceId"),
        ({"notifyType": "deviceDataChanged", "deviceId": "undefined", "service": {}},
         FramingError, "no deviceId"),
        ({"notifyType": "deviceDeleted", "deviceId": "d"}, UnsupportedError, "deviceDeleted"),
        ({"notifyType": None, "deviceId": "d"}, FramingError, "notifyType must be a string"),
        ({"notifyType": "deviceDataChanged", "deviceId": "d",
          "service": {"eventTime": "2020-05-20T02:11:56Z"}}, FramingError, "yyyyMMddTHHmmssZ"),
        ({"notifyType": "deviceDataChanged", "deviceId": "d",
          "service": {"eventTime": "20200520T021156Z\n"}}, FramingError, "yyyyMMddTHHmmssZ"),
        ({"notifyType": "deviceDataChanged", "deviceId": "d",
          "service": {"eventTime": 20200520}}, FramingError, "yyyyMMddTHHmmssZ"),
        ({"notifyType": "deviceDataChanged", "deviceId": "d",
          "service": {"eventTime": "20201340T000000Z"}}, FramingError, "not a valid date"),
        ({"notifyType": "deviceDataChanged", "deviceId": "d",
          "service": {"eventTime": "20230229T000000Z"}}, FramingError, "not a valid date"),
    ],
)  # fmt: skip
def test_oceanconnect_malformed(
    doc: dict[str, object], error: type[Exception], reason: str
) -> None:
    with pytest.raises(error, match=reason):
        decode_push(orjson.dumps(doc))


# --------------------------------------------------------------------------- decode_push shape


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),
        (b"[]", "must be a JSON object, got list"),
        (b'"x"', "must be a JSON object, got str"),
        (b"{}", "not a push of a known platform"),
        (b'{"dev_id":1}', "not a push of a known platform"),
    ],
)
def test_decode_push_refuses_what_is_no_push(body: bytes, reason: str) -> None:
    with pytest.raises(FramingError, match=reason):
        decode_push(body)


# --------------------------------------------------------------------------- exact spans


def test_member_spans_cover_every_kind_of_value() -> None:
    doc = (
        b' \r\n{ "o" : {"a":[1,{"}":"]"}]} , "s":"x\\"}]" ,"n":-1.5e3,"t":true,'
        b'"f":false,"z":null,"a":[ ],"e":{}, "u":"\\u00e9" }\t'
    )
    spans = _member_spans(doc)
    assert {name: doc[a:b] for name, (a, b) in spans.items()} == {
        "o": b'{"a":[1,{"}":"]"}]}',
        "s": b'"x\\"}]"',
        "n": b"-1.5e3",
        "t": b"true",
        "f": b"false",
        "z": b"null",
        "a": b"[ ]",
        "e": b"{}",
        "u": b'"\\u00e9"',
    }


def test_member_spans_decode_escaped_names() -> None:
    doc = b'{"m\\u0073g":1}'
    assert _member_spans(doc) == {"msg": (12, 13)}
    assert _member_spans(b"{ }") == {}


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (b"", "not an object"),
        (b"  [1]", "not an object"),
        (b'{"a":1,"a":2}', "duplicate member 'a'"),
        (b'{"a":1,"\\u0061":2}', "duplicate member 'a'"),
        (b"{a:1}", "member name expected"),
        (b'{"a":1,', "member name expected"),
        (b'{"a" 1}', "':' expected"),
        (b'{"a"', "':' expected"),
        (b'{"a":', "JSON value expected at end"),
        (b'{"a":,}', "JSON value expected at byte 5"),
        (b'{"a":1 2}', "',' or '}' expected"),
        (b'{"a":1', "',' or '}' expected"),
        (b'{"a":"abc', "unterminated string"),
        (b'{"a', "unterminated string"),
        (b'{"a":{"b":[1}', "unbalanced brackets"),
        (b'{"\\x":1}', "invalid member name"),
    ],
)
def test_member_spans_refuse_malformed_documents(doc: bytes, reason: str) -> None:
    with pytest.raises(FramingError, match=reason):
        _member_spans(doc)


WHITESPACE = st.sampled_from(["", " ", "\n", "\t", "\r\n", "  \n\t "])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)


def render(value: object, gaps: Iterator[str]) -> str:
    """Serialise JSON with the drawn whitespace between every pair of tokens."""
    if isinstance(value, dict):
        members = [
            f"{next(gaps)}{render(k, gaps)}{next(gaps)}:{next(gaps)}{render(v, gaps)}{next(gaps)}"
            for k, v in value.items()
        ]
        return "{" + (",".join(members) if members else next(gaps)) + "}"
    if isinstance(value, list):
        items = [f"{next(gaps)}{render(v, gaps)}{next(gaps)}" for v in value]
        return "[" + (",".join(items) if items else next(gaps)) + "]"
    if isinstance(value, str):
        # Escape more than needed, as other serialisers do: "/" and non-ASCII.
        return json.dumps(value).replace("/", "\\/")
    return orjson.dumps(value).decode()


def gap_stream(data: st.DataObject) -> Iterator[str]:
    while True:
        yield data.draw(WHITESPACE)


@PROPERTY
@given(st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=5), st.data())
def test_member_spans_slice_exactly_each_value(doc: dict[str, object], data: st.DataObject) -> None:
    text = (next(gap_stream(data)) + render(doc, gap_stream(data)) + " ").encode()
    spans = _member_spans(text)
    assert spans.keys() == doc.keys()
    for name, (start, end) in spans.items():
        assert orjson.loads(text[start:end]) == orjson.loads(orjson.dumps(doc[name]))
        assert text[start:end].strip() == text[start:end]


# --------------------------------------------------------------------------- OneNET signing


def sign(token: str, nonce: str, signed: bytes) -> str:
    """Sign as OneNET does; MD5 is the platform's choice, not ours."""
    digest = hashlib.md5(token.encode() + nonce.encode() + signed).digest()  # noqa: S324
    return base64.b64encode(digest).decode()


def onenet_body(msg_text: bytes, *, signature: str | None = None, nonce: str = NONCE) -> bytes:
    signature = sign(TOKEN, nonce, msg_text) if signature is None else signature
    return (
        b'{"msg":' + msg_text + b',"msg_signature":"' + signature.encode() + b'","nonce":"'
        + nonce.encode() + b'"}'
    )  # fmt: skip


DATAPOINT = b'{"at":1466133706841,"type":1,"ds_id":"3200_0_5500","value":42,"dev_id":2016617}'


def test_verify_url_echoes_msg_exactly() -> None:
    msg = "AIzc32d1xKW"
    assert verify_url(msg, NONCE, sign(TOKEN, NONCE, msg.encode()), TOKEN) == msg


def test_verify_url_undoes_plus_turned_space_and_missing_padding() -> None:
    nonce, msg = next(
        (f"n{i:07d}", f"m{i}")
        for i in range(10_000)
        if "+" in sign(TOKEN, f"n{i:07d}", f"m{i}".encode())
    )
    signature = sign(TOKEN, nonce, msg.encode())
    assert verify_url(msg, nonce, signature.replace("+", " "), TOKEN) == msg
    assert verify_url(msg, nonce, signature.rstrip("="), TOKEN) == msg


@pytest.mark.parametrize(
    ("msg", "nonce", "token"),
    [
        ("AIzc32d1xKW", NONCE, "other-token"),
        ("AIzc32d1xKX", NONCE, TOKEN),
        ("AIzc32d1xKW", "x", TOKEN),
    ],
)
def test_verify_url_refuses_a_wrong_signature(msg: str, nonce: str, token: str) -> None:
    signature = sign(TOKEN, NONCE, b"AIzc32d1xKW")
    with pytest.raises(IntegrityError, match="URL verification signature"):
        verify_url(msg, nonce, signature, token)


@pytest.mark.parametrize("signature", ["", "é" * 24, "\udcff", "=" * 24])
def test_verify_url_garbage_signature_is_an_integrity_error(signature: str) -> None:
    with pytest.raises(IntegrityError):
        verify_url("\ud800msg", NONCE, signature, TOKEN)


def test_signed_plaintext_push_decodes() -> None:
    (event,) = decode_onenet(onenet_body(DATAPOINT), token=TOKEN, aes_key=None)
    assert event.protocol is Protocol.ONENET
    assert event.account == "2016617"
    assert event.device_time == ms(1466133706841)
    assert event.text == "42" and event.unclassified
    assert dict(event.xdata) == {"type": "1", "ds_id": "3200_0_5500", "dev_id": "2016617"}


def test_decode_push_verifies_onenet_with_the_given_token() -> None:
    body = onenet_body(DATAPOINT)
    assert decode_push(body, onenet_token=TOKEN)[0].account == "2016617"
    with pytest.raises(IntegrityError):
        decode_push(body, onenet_token="other")


def test_tampered_msg_is_refused() -> None:
    signature = sign(TOKEN, NONCE, DATAPOINT)
    tampered = DATAPOINT.replace(b'"value":42', b'"value":43')
    with pytest.raises(IntegrityError, match="msg_signature does not match"):
        decode_onenet(onenet_body(tampered, signature=signature), token=TOKEN, aes_key=None)


def test_tampered_signature_or_nonce_is_refused() -> None:
    good = sign(TOKEN, NONCE, DATAPOINT)
    bad = ("A" if good[0] != "A" else "B") + good[1:]
    with pytest.raises(IntegrityError):
        decode_onenet(onenet_body(DATAPOINT, signature=bad), token=TOKEN, aes_key=None)
    with pytest.raises(IntegrityError):
        decode_onenet(
            onenet_body(DATAPOINT, signature=good, nonce="zzzzzzzz"), token=TOKEN, aes_key=None
        )


def test_signature_covers_the_msg_text_exactly_as_sent() -> None:
    spaced = b'{ "at" : 1466133706841,\n  "type":1, "ds_id":"3200_0_5500",\t"value" : 42 ,"dev_id":2016617 }'  # noqa: E501
    body = b'\n{ "nonce" : "' + NONCE.encode() + b'" ,\r\n "msg":\t' + spaced + b" , "
    body += b'"msg_signature" : "' + sign(TOKEN, NONCE, spaced).encode() + b'" }\n'
    (event,) = decode_onenet(body, token=TOKEN, aes_key=None)
    assert event.text == "42"
    # The same message re-serialised compactly is a different text: its signature
    # no longer matches, which proves the receiver hashes the bytes as sent.
    assert orjson.loads(spaced) == orjson.loads(DATAPOINT)
    with pytest.raises(IntegrityError):
        decode_onenet(
            onenet_body(DATAPOINT, signature=sign(TOKEN, NONCE, spaced)), token=TOKEN, aes_key=None
        )


@PROPERTY
@given(st.data())
def test_any_whitespace_layout_of_a_signed_msg_verifies(data: st.DataObject) -> None:
    msg = data.draw(datapoints())
    text = render(msg, gap_stream(data)).encode()
    body = onenet_body(text)
    (event,) = decode_onenet(body, token=TOKEN, aes_key=None)
    assert event.text == orjson.dumps(orjson.loads(orjson.dumps(msg["value"]))).decode()


def test_escaped_slashes_in_msg_are_hashed_as_sent() -> None:
    text = b'{"type":1,"dev_id":5,"ds_id":"a\\/b","value":"x\\u00e9"}'
    (event,) = decode_onenet(onenet_body(text), token=TOKEN, aes_key=None)
    assert dict(event.xdata)["ds_id"] == "a/b" and event.text == '"x\xe9"'


def test_duplicate_msg_members_are_refused() -> None:
    # The signature would cover the first msg while a parser keeps the second.
    benign = b'{"type":2,"dev_id":5,"status":1}'
    evil = b'{"type":2,"dev_id":5,"status":0}'
    body = onenet_body(benign)[:-1] + b',"msg":' + evil + b"}"
    with pytest.raises(FramingError, match="duplicate member 'msg'"):
        decode_onenet(body, token=TOKEN, aes_key=None)


@pytest.mark.parametrize(
    "body",
    [
        b'{"msg":{"type":1,"dev_id":5},"nonce":"abcdefgh"}',
        b'{"msg":{"type":1,"dev_id":5},"msg_signature":"x"}',
        b'{"msg":{"type":1,"dev_id":5},"msg_signature":1,"nonce":"abcdefgh"}',
    ],
)
def test_missing_signature_parts_are_refused_when_a_token_is_set(body: bytes) -> None:
    with pytest.raises(IntegrityError, match="lacks a string nonce and msg_signature"):
        decode_onenet(body, token=TOKEN, aes_key=None)
    assert decode_onenet(body, token=None, aes_key=None)[0].account == "5"


def test_bare_message_needs_no_token_but_is_refused_with_one() -> None:
    assert decode_onenet(CORPUS[90], token=None, aes_key=None)[0].code == "YK"
    with pytest.raises(IntegrityError, match="unsigned OneNET message"):
        decode_onenet(CORPUS[90], token=TOKEN, aes_key=None)


def test_batched_messages_give_one_event_each() -> None:
    batch = b'[{"type":2,"dev_id":1,"status":0,"at":1000},{"type":2,"dev_id":2,"status":1}]'
    first, second = decode_onenet(onenet_body(batch), token=TOKEN, aes_key=None)
    assert (first.account, first.code, first.qualifier) == ("1", "YC", Qualifier.NEW)
    assert first.event_class is EventClass.COMMUNICATION
    assert (second.account, second.code, second.qualifier) == ("2", "YK", Qualifier.RESTORE)
    assert first.raw == second.raw == onenet_body(batch)


@pytest.mark.parametrize(
    ("msg", "error", "reason"),
    [
        (b"[]", FramingError, "empty array"),
        (b'"text"', FramingError, "must be a JSON object"),
        (b"[1]", FramingError, "must be a JSON object"),
        (b'{"dev_id":5}', FramingError, "type must be an integer"),
        (b'{"dev_id":5,"type":"1"}', FramingError, "type must be an integer"),
        (b'{"dev_id":5,"type":true}', FramingError, "type must be an integer"),
        (b'{"type":1}', FramingError, "neither a usable imei nor a dev_id"),
        (b'{"type":1,"imei":"","dev_id":-1}', FramingError, "neither a usable imei"),
        (b'{"type":1,"dev_id":5,"at":"x"}', FramingError, "at must be integer"),
        (b'{"type":3,"dev_id":5}', UnsupportedError, "type 3 is not processed"),
    ],
)
def test_onenet_malformed_messages(msg: bytes, error: type[Exception], reason: str) -> None:
    with pytest.raises(error, match=reason):
        decode_onenet(onenet_body(msg), token=TOKEN, aes_key=None)


def test_onenet_message_kinds() -> None:
    cases = {
        b'{"type":1,"dev_id":5,"imei":"867000000000001","ds_id":"t"}': (None, None, None),
        b'{"type":2,"dev_id":5,"status":3}': (None, None, None),
        b'{"type":2,"dev_id":5}': (None, None, None),
        b'{"type":7,"dev_id":5,"cmd_type":1,"cmd_id":"c-1"}': (
            None,
            EventClass.OTHER,
            '{"type":7,"dev_id":5,"cmd_type":1,"cmd_id":"c-1"}',
        ),
    }
    for msg, (code, event_class, text) in cases.items():
        (event,) = decode_onenet(onenet_body(msg), token=TOKEN, aes_key=None)
        assert (event.code, event.event_class, event.text) == (code, event_class, text)
    (nb,) = decode_onenet(onenet_body(next(iter(cases))), token=TOKEN, aes_key=None)
    assert nb.account == "867000000000001"  # imei preferred to dev_id
    (command,) = decode_onenet(onenet_body(list(cases)[3]), token=TOKEN, aes_key=None)
    assert command.qualifier is Qualifier.STATUS
    assert dict(command.xdata)["cmd_id"] == "c-1"


def test_msg_and_enc_msg_together_are_refused() -> None:
    body = b'{"msg":{"type":1,"dev_id":5},"enc_msg":"AAAA","nonce":"a","msg_signature":"b"}'
    with pytest.raises(FramingError, match="both msg and enc_msg"):
        decode_onenet(body, token=None, aes_key=None)


# --------------------------------------------------------------------------- OneNET secure mode


def encoding_aes_key(key: bytes) -> str:
    """The console form: Base64 of the 32-byte key without its trailing '='."""
    return base64.b64encode(key).decode().rstrip("=")


def encrypt(
    message: bytes,
    key: bytes = KEY,
    *,
    block: int = 16,
    trailer: bytes = b"",
    declared: int | None = None,
) -> str:
    """Build enc_msg as the platform does: AES-256-CBC(random16 + len4 + msg + trailer)."""
    length = len(message) if declared is None else declared
    plain = os.urandom(16) + length.to_bytes(4, "big") + message + trailer
    pad = block - len(plain) % block
    return encrypt_raw(plain + bytes([pad]) * pad, key)


def encrypt_raw(padded: bytes, key: bytes = KEY) -> str:
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def secure_body(enc_msg: str, *, token: str = TOKEN, signature: str | None = None) -> bytes:
    if signature is None:
        signature = sign(token, NONCE, enc_msg.encode())
    return orjson.dumps({"enc_msg": enc_msg, "msg_signature": signature, "nonce": NONCE})


def datapoints() -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries(
        {
            "type": st.just(1),
            "dev_id": st.integers(min_value=0, max_value=2**53),
            "ds_id": st.text(min_size=1, max_size=20),
            "at": st.integers(min_value=0, max_value=2**41),
            "value": JSON_VALUES,
        },
        optional={"imei": st.from_regex(r"86[0-9]{13}", fullmatch=True)},
    )


@PROPERTY
@given(
    msgs=st.lists(datapoints(), min_size=1, max_size=3),
    batch=st.booleans(),
    key=st.binary(min_size=32, max_size=32),
    block=st.sampled_from([16, 32]),
    trailer=st.binary(max_size=24),
)
def test_secure_mode_round_trip(
    msgs: list[dict[str, object]], batch: bool, key: bytes, block: int, trailer: bytes
) -> None:
    msgs = msgs if batch else msgs[:1]
    text = orjson.dumps(msgs if batch else msgs[0])
    body = secure_body(encrypt(text, key, block=block, trailer=trailer))
    events = decode_onenet(body, token=TOKEN, aes_key=encoding_aes_key(key))
    assert len(events) == len(msgs)
    for event, msg in zip(events, msgs, strict=True):
        assert event.account == str(msg.get("imei", msg["dev_id"]))
        assert event.device_time == ms(msg["at"])  # type: ignore[arg-type]
        assert event.text == orjson.dumps(orjson.loads(orjson.dumps(msg["value"]))).decode()
        assert dict(event.xdata)["ds_id"] == msg["ds_id"]
        assert event.raw == body


@PROPERTY
@given(key=st.binary(min_size=32, max_size=32), other=st.binary(min_size=32, max_size=32))
def test_secure_mode_wrong_key_is_a_decryption_error(key: bytes, other: bytes) -> None:
    assume(other != key)
    body = secure_body(encrypt(DATAPOINT, key))
    with pytest.raises(DecryptionError):
        decode_onenet(body, token=TOKEN, aes_key=encoding_aes_key(other))


def test_secure_mode_decodes_through_decode_push() -> None:
    body = secure_body(encrypt(DATAPOINT))
    (event,) = decode_push(body, onenet_token=TOKEN, onenet_aes_key=encoding_aes_key(KEY))
    assert event.text == "42"


def test_secure_mode_key_pasted_with_padding_is_accepted() -> None:
    body = secure_body(encrypt(DATAPOINT))
    pasted = " " + base64.b64encode(KEY).decode() + " "
    assert decode_onenet(body, token=TOKEN, aes_key=pasted)[0].text == "42"


def test_secure_mode_signature_is_checked_before_decryption() -> None:
    enc = encrypt(DATAPOINT)
    garbled = enc[:10] + ("A" if enc[10] != "A" else "B") + enc[11:]
    with pytest.raises(IntegrityError, match="msg_signature does not match"):
        decode_onenet(
            secure_body(garbled, signature=sign(TOKEN, NONCE, enc.encode())),
            token=TOKEN,
            aes_key=encoding_aes_key(KEY),
        )


def flip_last_pad_byte(enc_msg: str) -> str:
    """XOR 0x80 into the last plaintext byte via the previous ciphertext block."""
    raw = bytearray(base64.b64decode(enc_msg))
    raw[-17] ^= 0x80
    return base64.b64encode(bytes(raw)).decode()


def truncate(enc_msg: str) -> str:
    return base64.b64encode(base64.b64decode(enc_msg)[:-5]).decode()


def short_plaintext() -> str:
    return encrypt_raw(b"0123456789" + b"\x06" * 6)


def overlong_declared() -> str:
    return encrypt(DATAPOINT, declared=len(DATAPOINT) + 1)


def not_json() -> str:
    return encrypt(b"\xff\xfe not json")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: flip_last_pad_byte(encrypt(DATAPOINT)), "bad PKCS#7 padding"),
        (lambda: encrypt_raw(bytes(32)), "bad PKCS#7 padding"),  # pad byte 0
        (lambda: encrypt_raw(bytes(31) + b"\x21"), "bad PKCS#7 padding"),  # 33 > 32
        (lambda: encrypt_raw(bytes(14) + b"\x02\x03"), "bad PKCS#7 padding"),
        (short_plaintext, "10 bytes, shorter than its 20-byte header"),
        (overlong_declared, "declares"),
        (not_json, "not JSON"),
        (lambda: truncate(encrypt(DATAPOINT)), "not a positive multiple of 16"),
        (lambda: "", "0 bytes, not a positive multiple of 16"),
        (lambda: "AAAA*", "enc_msg is not valid Base64"),
        (lambda: "ÄÖ==", "enc_msg is not valid Base64"),
    ],
)
def test_secure_mode_corruption_is_a_precise_decryption_error(
    make: Callable[[], str], reason: str
) -> None:
    body = secure_body(make())
    with pytest.raises(DecryptionError, match=reason):
        decode_onenet(body, token=TOKEN, aes_key=encoding_aes_key(KEY))


@pytest.mark.parametrize("make", [lambda: encrypt(DATAPOINT), short_plaintext, lambda: "*"])
def test_secure_mode_without_a_token_is_refused_before_decrypting(make: Callable[[], str]) -> None:
    # Unsigned CBC ciphertext answered with "bad padding" would be a padding oracle.
    with pytest.raises(IntegrityError, match="needs a configured token"):
        decode_onenet(secure_body(make()), token=None, aes_key=encoding_aes_key(KEY))


@pytest.mark.parametrize(
    ("aes_key", "reason"),
    [
        (None, "no EncodingAESKey configured"),
        ("not*base64", "EncodingAESKey is not valid Base64"),
        ("ÄÖÜ", "EncodingAESKey is not valid Base64"),
        (encoding_aes_key(bytes(16)), "decodes to 16 bytes, not 32"),
    ],
)
def test_secure_mode_key_configuration_errors(aes_key: str | None, reason: str) -> None:
    with pytest.raises(DecryptionError, match=reason):
        decode_onenet(secure_body(encrypt(DATAPOINT)), token=TOKEN, aes_key=aes_key)


def test_enc_msg_must_be_a_string() -> None:
    with pytest.raises(FramingError, match="enc_msg must be a string"):
        decode_onenet(b'{"enc_msg":5}', token=None, aes_key=encoding_aes_key(KEY))


# --------------------------------------------------------------------------- fuzz


def check_outcome(call: Callable[[], tuple[AlarmEvent, ...]], body: bytes) -> None:
    """Events, or a ProtocolError with a reason: nothing else may come out."""
    try:
        events = call()
    except ProtocolError as exc:
        assert exc.reason
        return
    assert isinstance(events, tuple)
    for event in events:
        assert isinstance(event, AlarmEvent)
        assert event.raw == body
        assert event.device_time is None or event.device_time.utcoffset() is not None


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_decode_push_any_bytes(body: bytes) -> None:
    check_outcome(lambda: decode_push(body), body)


@FUZZ
@given(
    st.binary(max_size=300),
    st.sampled_from([None, TOKEN]),
    st.sampled_from([None, encoding_aes_key(KEY)]),
)
def test_fuzz_decode_onenet_any_bytes(body: bytes, token: str | None, aes_key: str | None) -> None:
    check_outcome(lambda: decode_onenet(body, token=token, aes_key=aes_key), body)


NAMES = st.sampled_from(
    [
        "messageType", "notifyType", "msg", "enc_msg", "dev_id", "type", "IMEI", "imei",
        "deviceId", "timestamp", "at", "eventType", "eventContent", "payload", "APPdata",
        "service", "services", "data", "eventTime", "status", "value", "result", "nonce",
        "msg_signature", "serviceData", "Alarm_Status",
    ]
)  # fmt: skip
KNOWN = st.sampled_from(
    [
        "dataReport", "eventReport", "deviceOnlineOfflineReport", "commandResponse",
        "deviceDataChanged", "deviceDatasChanged", "undefined", "", "20200520T021156Z",
        "20201340T000000Z", "eyJjIjoyN30=", "UFUA", "*", 0, 1, 2, 3, 7, -1, 1606982320277,
        2**62, True, None, 1.5, "860374051096202",
    ]
)  # fmt: skip
SHAPED = st.recursive(
    KNOWN | SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=4),
    max_leaves=8,
)
# One platform's discriminating member set to a kind it knows, over random members,
# over identities (which the random members may overwrite with junk).
IDENTITIES = {"deviceId": "dev-1", "dev_id": 5}
SHAPED_OBJECTS = st.builds(
    lambda head, rest: {**IDENTITIES, **rest, **head},
    st.sampled_from(
        [
            {"messageType": "dataReport"},
            {"messageType": "eventReport"},
            {"messageType": "deviceOnlineOfflineReport"},
            {"messageType": "commandResponse"},
            {"notifyType": "deviceDataChanged"},
            {"notifyType": "deviceDatasChanged"},
            {"type": 1},
            {"type": 2},
            {"type": 7},
            {},
        ]
    ),
    st.dictionaries(NAMES, SHAPED, max_size=6),
)


@FUZZ_SHAPED
@given(SHAPED_OBJECTS)
def test_fuzz_decode_push_shaped_json(doc: dict[str, object]) -> None:
    body = orjson.dumps(doc)
    check_outcome(lambda: decode_push(body), body)


@FUZZ_SHAPED
@given(SHAPED, st.booleans())
def test_fuzz_signed_and_encrypted_onenet_messages(msg: object, secure: bool) -> None:
    # Correctly signed (and encrypted) bodies, so the fuzz reaches message decoding.
    text = orjson.dumps(msg)
    body = secure_body(encrypt(text)) if secure else onenet_body(text)
    check_outcome(lambda: decode_onenet(body, token=TOKEN, aes_key=encoding_aes_key(KEY)), body)
