"""IoT-platform pushes (CTWing/AEP, Huawei OceanConnect-style, OneNET) as alarm events.

Theory of operation (PROTOCOLS.md §5)
-------------------------------------
An NB-IoT detector never talks to the centre: it talks to its carrier's platform,
which POSTs one JSON document per uplink to an HTTP endpoint of ours. The HTTP
layer hands this module the raw body bytes and what the centre configured (the
OneNET token and EncodingAESKey); nothing here touches a socket or the clock.

* Platform by shape: CTWing carries ``messageType`` (§5.1), the Huawei-style
  platform ``notifyType`` (§5.2), OneNET wraps its message as ``msg`` or
  ``enc_msg`` next to ``nonce`` and ``msg_signature`` (§5.3). Receivers that log
  OneNET traffic often keep only the inner message, so a bare OneNET message
  (``dev_id`` and ``type``) is accepted too, but never when a token is
  configured: it carries no signature.
* Account = the identity the centre registers for the device: the IMEI where the
  platform reports one (CTWing sends ``""`` or ``"undefined"`` when it has none),
  else the platform's own device id.
* Meaning: the platforms define a few envelope messages whose meaning is fixed
  (online/offline, fault event, command result); those map to SIA codes below.
  A data report's payload is defined by each product's profile or the vendor's
  binary frame, so the same field name means different things on different
  products; it stays unclassified, with the payload as text, for the operator.
  A wrong fire alarm sends a fire crew; an unclassified event is still shown.
* Unknown *kinds* (a ``messageType``/``notifyType``/OneNET ``type`` we do not
  know) raise ``UnsupportedError`` (one such message refuses a whole OneNET
  batch); unknown *values* inside a known kind (``eventType`` 5) give an
  unclassified event, so nothing a device said is lost. Every error answer
  makes the platform retry, so the HTTP layer should quarantine DUH rather than
  provoke retries (CTWing cools down endpoints that fail too often, §5.1).
* OneNET signs MD5(token + nonce + the msg JSON text as it serialised it).
  Re-serialising would change spacing, escapes and key order, so the exact
  bytes of the ``msg`` value are cut out of the body, hashed, and the events are
  decoded from those same bytes: what is verified is what is processed.
* OneNET secure mode is AES-256-CBC without a MAC, hence malleable: only the
  signature (over ``enc_msg``) authenticates it, so it is required and checked
  before decrypting; the precise decryption errors then cannot serve as a
  padding oracle to someone without the token.

Normalisation (SIA codes and meanings from PROTOCOLS.md §3.3, §3.4):

    push                                            code  qualifier  class
    CTWing deviceOnlineOfflineReport eventType 0    YC    new        communication
    CTWing deviceOnlineOfflineReport eventType 1    YK    restore    communication
    OneNET type 2, status 0 / status 1              YC / YK, as above
    CTWing eventReport eventType 3 (fault)          YX    new        trouble
    CTWing eventReport eventType 2 (warning)        -     new        unclassified
    CTWing eventReport eventType 1 (info)           -     status     other
    CTWing commandResponse, OneNET type 7           -     status     other
    CTWing dataReport, OceanConnect data, OneNET 1  -     new        unclassified

Offline means the device stopped keeping its registration or connection alive:
a supervision failure, hence "communications fail", as Contact ID 350/354 map
to YC/YK. A fault event says the device needs service without saying which
part failed, hence YX "service required" rather than a part-specific code. A
warning's nature (smoke? tamper? low battery?) is only in product-specific
content, so it is not classified. Informational events and command results are
"other": the platform itself says they are no alarm signal, yet they are kept,
not refused, since a refusal only provokes retries (see above).

Profile tables are deliberately not applied: the LiAn smoke detector's
``Alarm_Status`` (1 alarm, 2 silenced, 4 low voltage, 5 fault, 7 normal,
10/11 removal/restored, 14 simulated alarm) comes from one integrator's
dictionary (wanghanhong/springcloud_alibaba ``LiAnSmokeMapConstant``), not the
vendor's, and belongs to that product's profile, not to the field name. Such
tables belong in per-product configuration.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import orjson
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocols.errors import (
    DecryptionError,
    FramingError,
    IntegrityError,
    UnsupportedError,
)
from protocols.events import AlarmEvent, EventClass, Protocol, Qualifier

__all__ = [
    "decode_ctwing",
    "decode_oceanconnect",
    "decode_onenet",
    "decode_push",
    "verify_url",
]

JsonObject = dict[str, object]


@dataclass(frozen=True, slots=True)
class _Meaning:
    """What an envelope message means in SIA terms."""

    code: str | None
    qualifier: Qualifier
    event_class: EventClass | None


_OFFLINE = _Meaning("YC", Qualifier.NEW, EventClass.COMMUNICATION)
_ONLINE = _Meaning("YK", Qualifier.RESTORE, EventClass.COMMUNICATION)
_FAULT = _Meaning("YX", Qualifier.NEW, EventClass.TROUBLE)
_INFORMATIONAL = _Meaning(None, Qualifier.STATUS, EventClass.OTHER)
_UNCLASSIFIED = _Meaning(None, Qualifier.NEW, None)

_CTWING_ONLINE_OFFLINE = {0: _OFFLINE, 1: _ONLINE}
_CTWING_EVENT_TYPES = {1: _INFORMATIONAL, 2: _UNCLASSIFIED, 3: _FAULT}
_ONENET_STATUS = {0: _OFFLINE, 1: _ONLINE}

# Envelope fields kept as x-data, in this order, when present and meaningful.
_CTWING_XDATA = (
    "messageType",
    "tenantId",
    "productId",
    "deviceId",
    "deviceType",
    "IMEI",
    "IMSI",
    "iccid",
    "deviceSn",
    "protocol",
    "topic",
    "serviceId",
    "upPacketSN",
    "upDataSN",
    "assocAssetId",
    "eventType",
    "taskId",
)
_OCEANCONNECT_XDATA = ("notifyType", "deviceId", "gatewayId", "requestId")
_OCEANCONNECT_SERVICE_XDATA = ("serviceId", "serviceType")
_ONENET_XDATA = (
    "type",
    "dev_id",
    "imei",
    "ds_id",
    "login_type",
    "status",
    "cmd_type",
    "cmd_id",
)

# Placeholders the platforms put where they have no value (CTWing: "undefined");
# compared stripped and case-folded for identities, exactly for x-data.
_PLACEHOLDERS = frozenset({"", "undefined", "null"})
_NO_VALUE = ("", "undefined")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // timedelta(
    milliseconds=1
)
_COMPACT_TIME = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")

# OneNET secure mode (SDK decryptMsg): 16 random bytes, 4-byte big-endian length.
_RANDOM_PREFIX = 16
_HEADER = _RANDOM_PREFIX + 4
_AES_KEY_BYTES = 32
# The SDK's C# encoder pads to 32-byte blocks (WeChat lineage) while its Java and
# Node decoders accept only 16-byte-block padding; accept any PKCS#7 pad up to 32.
_MAX_PAD = 32


# --------------------------------------------------------------------------- entry points


def decode_push(
    body: bytes,
    *,
    onenet_token: str | None = None,
    onenet_aes_key: str | None = None,
) -> tuple[AlarmEvent, ...]:
    """Decode a push of any supported platform, recognised by its JSON shape.

    The OneNET token and key are used only for OneNET bodies; without a token a
    OneNET signature is not checked (see ``decode_onenet``).
    """
    doc = _load_object(body)
    if "messageType" in doc:
        return _ctwing(doc, body)
    if "notifyType" in doc:
        return _oceanconnect(doc, body)
    if _is_onenet(doc):
        return _onenet(doc, body, token=onenet_token, aes_key=onenet_aes_key)
    raise FramingError(
        "not a push of a known platform: no messageType (CTWing), notifyType "
        "(OceanConnect), msg/enc_msg or dev_id+type (OneNET)"
    )


def decode_ctwing(body: bytes) -> tuple[AlarmEvent, ...]:
    """Decode a CTWing/AEP subscription push (PROTOCOLS.md §5.1)."""
    doc = _load_object(body)
    if "messageType" not in doc:
        raise FramingError("CTWing push has no messageType")
    return _ctwing(doc, body)


def decode_oceanconnect(body: bytes) -> tuple[AlarmEvent, ...]:
    """Decode a Huawei OceanConnect-style push (PROTOCOLS.md §5.2)."""
    doc = _load_object(body)
    if "notifyType" not in doc:
        raise FramingError("OceanConnect push has no notifyType")
    return _oceanconnect(doc, body)


def decode_onenet(body: bytes, *, token: str | None, aes_key: str | None) -> tuple[AlarmEvent, ...]:
    """Verify, decrypt if needed and decode a OneNET HTTP push (PROTOCOLS.md §5.3).

    ``token`` None skips signature checks on plaintext pushes, which OneNET
    allows; then anyone who can reach the endpoint can forge pushes, so
    production should set one. Secure mode refuses to decrypt without it.
    ``aes_key`` is the EncodingAESKey as shown on the OneNET console.
    """
    doc = _load_object(body)
    if not _is_onenet(doc):
        raise FramingError("OneNET push has neither msg nor enc_msg (nor dev_id+type)")
    return _onenet(doc, body, token=token, aes_key=aes_key)


def verify_url(msg: str, nonce: str, signature: str, token: str) -> str:
    """Answer OneNET's URL-verification GET: return the ``msg`` to echo, or raise.

    Arguments are the query parameters already URL-decoded, as any HTTP framework
    delivers them. The reply body must be exactly the returned string (no quotes).
    """
    # Base64 may contain '+', which form decoding turns into ' ' when the
    # platform did not percent-encode it; OneNET's Java SDK undoes the same way.
    received = signature.replace(" ", "+")
    if not _signature_matches(token, nonce, _utf8(msg), received):
        raise IntegrityError("URL verification signature does not match the configured token")
    return msg


# --------------------------------------------------------------------------- CTWing


def _ctwing(doc: JsonObject, raw: bytes) -> tuple[AlarmEvent, ...]:
    kind = doc["messageType"]
    if not isinstance(kind, str):
        raise FramingError(f"CTWing messageType must be a string, got {_show(kind)}")
    account = _identity(doc.get("IMEI")) or _identity(doc.get("deviceId"))
    if account is None:
        raise FramingError("CTWing push has neither a usable IMEI nor a deviceId")
    time = _ms_time(doc, "timestamp")
    xdata = _pick(doc, _CTWING_XDATA)

    if kind == "dataReport":
        text, extra = _ctwing_payload(doc.get("payload"))
        return (_event(account, Protocol.CTWING, _UNCLASSIFIED, text, time, xdata + extra, raw),)
    if kind == "deviceOnlineOfflineReport":
        meaning = _lookup(_CTWING_ONLINE_OFFLINE, doc.get("eventType"))
        return (_event(account, Protocol.CTWING, meaning, None, time, xdata, raw),)
    if kind == "eventReport":
        meaning = _lookup(_CTWING_EVENT_TYPES, doc.get("eventType"))
        text = _json_text(doc.get("eventContent"))
        return (_event(account, Protocol.CTWING, meaning, text, time, xdata, raw),)
    if kind == "commandResponse":
        result = doc.get("result")
        extra = _pick(result, ("resultCode", "resultDetail")) if isinstance(result, dict) else ()
        text = _json_text(result)
        return (_event(account, Protocol.CTWING, _INFORMATIONAL, text, time, xdata + extra, raw),)
    raise UnsupportedError(f"CTWing messageType {_show(kind)} is not processed")


def _ctwing_payload(payload: object) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """Return the text and x-data of a dataReport payload, decoding transparent APPdata."""
    if not (isinstance(payload, dict) and isinstance(payload.get("APPdata"), str)):
        return _json_text(payload), ()
    encoded = payload["APPdata"]
    try:
        frame = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise FramingError(
            f"CTWing payload.APPdata is not valid Base64: {_show(encoded)}"
        ) from None
    # Some transparent products (fire user-information devices) send a JSON
    # document rather than a binary frame; show it readably. A frame that merely
    # parses as a JSON scalar ("1") is still treated as binary.
    try:
        decoded = orjson.loads(frame)
    except orjson.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict | list):
        return _json_text(decoded), ()
    return _json_text(payload), (("APPdata_hex", frame.hex()),)


# --------------------------------------------------------------------------- OceanConnect


def _oceanconnect(doc: JsonObject, raw: bytes) -> tuple[AlarmEvent, ...]:
    kind = doc["notifyType"]
    if not isinstance(kind, str):
        raise FramingError(f"OceanConnect notifyType must be a string, got {_show(kind)}")
    if kind == "deviceDataChanged":
        services: list[object] = [doc.get("service")]
    elif kind == "deviceDatasChanged":
        batch = doc.get("services")
        if not (isinstance(batch, list) and batch):
            raise FramingError("OceanConnect deviceDatasChanged needs a non-empty services list")
        services = batch
    else:
        raise UnsupportedError(f"OceanConnect notifyType {_show(kind)} is not processed")
    account = _identity(doc.get("deviceId"))
    if account is None:
        raise FramingError("OceanConnect push has no deviceId")
    xdata = _pick(doc, _OCEANCONNECT_XDATA)
    events = []
    for service in services:
        if not isinstance(service, dict):
            raise FramingError(f"OceanConnect service must be an object, got {_show(service)}")
        time = _compact_time(service.get("eventTime"))
        extra = _pick(service, _OCEANCONNECT_SERVICE_XDATA)
        text = _json_text(service.get("data"))
        events.append(
            _event(account, Protocol.OCEANCONNECT, _UNCLASSIFIED, text, time, xdata + extra, raw)
        )
    return tuple(events)


def _compact_time(value: object) -> datetime | None:
    """Parse OceanConnect's compact UTC ``yyyyMMddTHHmmssZ``."""
    if value is None:
        return None
    match = _COMPACT_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise FramingError(f"eventTime must be yyyyMMddTHHmmssZ, got {_show(value)}")
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise FramingError(f"eventTime {value!r} is not a valid date and time") from None


# --------------------------------------------------------------------------- OneNET


def _is_onenet(doc: JsonObject) -> bool:
    return "msg" in doc or "enc_msg" in doc or ("dev_id" in doc and "type" in doc)


def _onenet(
    doc: JsonObject, raw: bytes, *, token: str | None, aes_key: str | None
) -> tuple[AlarmEvent, ...]:
    if "msg" in doc and "enc_msg" in doc:
        raise FramingError("OneNET push carries both msg and enc_msg")
    if "enc_msg" in doc:
        encrypted = doc["enc_msg"]
        if not isinstance(encrypted, str):
            raise FramingError(f"OneNET enc_msg must be a string, got {_show(encrypted)}")
        if token is None:
            # CBC without a MAC: answering forged ciphertexts with "bad padding"
            # or "bad length" is a padding oracle. Only decrypt what is signed.
            raise IntegrityError("OneNET secure-mode push needs a configured token to verify it")
        # The SDKs sign the Base64 text itself; Base64 has no JSON escapes, so
        # the decoded string is the text as sent.
        _check_signature(doc, _utf8(encrypted), token)
        value = _parse_decrypted(_decrypt(encrypted, aes_key))
    elif "msg" in doc:
        # A duplicate "msg" would let the signature cover one value while a
        # parser picks the other; the span scanner refuses duplicates.
        start, end = _member_spans(raw)["msg"]
        text = raw[start:end]
        if token is not None:
            _check_signature(doc, text, token)
        value = orjson.loads(text)
    else:
        if token is not None:
            raise IntegrityError("unsigned OneNET message, but a token is configured")
        value = doc
    messages = value if isinstance(value, list) else [value]
    if not messages:
        raise FramingError("OneNET msg is an empty array")
    return tuple(_onenet_event(message, raw) for message in messages)


def _check_signature(doc: JsonObject, signed: bytes, token: str) -> None:
    """Raise unless the push's ``msg_signature`` signs ``signed`` with ``token``."""
    nonce = doc.get("nonce")
    signature = doc.get("msg_signature")
    if not (isinstance(nonce, str) and isinstance(signature, str)):
        raise IntegrityError("OneNET push lacks a string nonce and msg_signature")
    if not _signature_matches(token, nonce, signed, signature):
        raise IntegrityError("OneNET msg_signature does not match the configured token")


def _signature_matches(token: str, nonce: str, signed: bytes, received: str) -> bool:
    """Compare Base64(MD5(token + nonce + signed)) with ``received``."""
    # MD5 is what the platform computes; we do not get to choose.
    digest = hashlib.md5(_utf8(token) + _utf8(nonce) + signed)  # noqa: S324
    expected = base64.b64encode(digest.digest()).rstrip(b"=")
    # Padding is dropped on both sides: the PHP SDK compares without it.
    return hmac.compare_digest(expected, _utf8(received).rstrip(b"="))


def _utf8(text: str) -> bytes:
    # "surrogatepass": a str from a lenient URL decoder may hold lone surrogates;
    # they must make the signature fail, not raise UnicodeEncodeError.
    return text.encode("utf-8", "surrogatepass")


def _decrypt(encrypted: str, aes_key: str | None) -> bytes:
    """Return the message inside a secure-mode ``enc_msg``."""
    if aes_key is None:
        raise DecryptionError("OneNET secure-mode push (enc_msg) but no EncodingAESKey configured")
    key = _aes_key(aes_key)
    try:
        ciphertext = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError("OneNET enc_msg is not valid Base64") from None
    if not ciphertext or len(ciphertext) % 16:
        raise DecryptionError(
            f"OneNET enc_msg is {len(ciphertext)} bytes, not a positive multiple of 16"
        )
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    return _unwrap(decryptor.update(ciphertext) + decryptor.finalize())


def _aes_key(configured: str) -> bytes:
    """Decode the console's 43-character EncodingAESKey (Base64 without its '=')."""
    # The console drops the Base64 padding; tolerate a key pasted with it.
    text = configured.strip().rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError("configured OneNET EncodingAESKey is not valid Base64") from None
    if len(key) != _AES_KEY_BYTES:
        raise DecryptionError(
            f"configured OneNET EncodingAESKey decodes to {len(key)} bytes, not 32 "
            "(it should be 43 Base64 characters)"
        )
    return key


def _unwrap(plain: bytes) -> bytes:
    """Strip PKCS#7 padding and the random/length header; return the message."""
    pad = plain[-1]
    if not 1 <= pad <= min(_MAX_PAD, len(plain)) or plain[-pad:] != bytes([pad]) * pad:
        raise DecryptionError("OneNET enc_msg has bad PKCS#7 padding: wrong key or corrupted")
    body = plain[:-pad]
    if len(body) < _HEADER:
        raise DecryptionError(
            f"decrypted OneNET message is {len(body)} bytes, shorter than its 20-byte header"
        )
    length = int.from_bytes(body[_RANDOM_PREFIX:_HEADER], "big")
    if length > len(body) - _HEADER:
        raise DecryptionError(
            f"decrypted OneNET message declares {length} bytes but only "
            f"{len(body) - _HEADER} follow the header"
        )
    # Bytes after the message are the WeChat-style trailer (an app id in the C#
    # SDK); no OneNET SDK uses them.
    return body[_HEADER : _HEADER + length]


def _parse_decrypted(message: bytes) -> object:
    try:
        return orjson.loads(message)
    except orjson.JSONDecodeError:
        raise DecryptionError(
            "decrypted OneNET message is not JSON: wrong key or corrupted ciphertext"
        ) from None


def _onenet_event(message: object, raw: bytes) -> AlarmEvent:
    if not isinstance(message, dict):
        raise FramingError(f"OneNET message must be a JSON object, got {_show(message)}")
    kind = _integer(message.get("type"))
    if kind is None:
        raise FramingError(
            f"OneNET message type must be an integer, got {_show(message.get('type'))}"
        )
    account = _identity(message.get("imei")) or _identity(message.get("dev_id"))
    if account is None:
        raise FramingError("OneNET message has neither a usable imei nor a dev_id")
    time = _ms_time(message, "at")
    xdata = _pick(message, _ONENET_XDATA)
    if kind == 1:
        # A present null is still something the device said: text "null".
        text = _dumps(message["value"]) if "value" in message else None
        return _event(account, Protocol.ONENET, _UNCLASSIFIED, text, time, xdata, raw)
    if kind == 2:
        meaning = _lookup(_ONENET_STATUS, message.get("status"))
        return _event(account, Protocol.ONENET, meaning, None, time, xdata, raw)
    if kind == 7:
        text = _json_text(message)
        return _event(account, Protocol.ONENET, _INFORMATIONAL, text, time, xdata, raw)
    raise UnsupportedError(
        f"OneNET message type {kind} is not processed (1 datapoint, 2 online/offline, "
        "7 command result are)"
    )


# --------------------------------------------------------------------------- exact JSON spans

_WHITESPACE = b" \t\r\n"  # the only whitespace JSON allows (RFC 8259 §2)
_SCALAR_END = b",}] \t\r\n"
_QUOTE, _BACKSLASH, _COLON, _COMMA = 0x22, 0x5C, 0x3A, 0x2C
_OPEN, _CLOSE = b"{[", b"}]"


def _member_spans(doc: bytes) -> dict[str, tuple[int, int]]:
    """Map each top-level member name of a JSON object to its value's byte span.

    Meant for documents a JSON parser has accepted; on anything else it raises
    ``FramingError`` rather than guess. Duplicate names are refused.
    """
    n = len(doc)
    i = _skip_whitespace(doc, 0)
    if i >= n or doc[i] != _OPEN[0]:
        raise FramingError("JSON body is not an object")
    spans: dict[str, tuple[int, int]] = {}
    i = _skip_whitespace(doc, i + 1)
    if i < n and doc[i] == _CLOSE[0]:
        return spans
    while True:
        if i >= n or doc[i] != _QUOTE:
            raise FramingError(f"member name expected at byte {i}")
        name_end = _string_end(doc, i)
        name = _member_name(doc[i:name_end])
        i = _skip_whitespace(doc, name_end)
        if i >= n or doc[i] != _COLON:
            raise FramingError(f"':' expected at byte {i}")
        start = _skip_whitespace(doc, i + 1)
        end = _value_end(doc, start)
        if name in spans:
            raise FramingError(f"duplicate member {name!r} in JSON object")
        spans[name] = (start, end)
        i = _skip_whitespace(doc, end)
        if i < n and doc[i] == _COMMA:
            i = _skip_whitespace(doc, i + 1)
        elif i < n and doc[i] == _CLOSE[0]:
            return spans
        else:
            raise FramingError(f"',' or '}}' expected at byte {i}")


def _skip_whitespace(doc: bytes, i: int) -> int:
    while i < len(doc) and doc[i] in _WHITESPACE:
        i += 1
    return i


def _string_end(doc: bytes, i: int) -> int:
    """Return the index just past the string literal opening at ``doc[i]``."""
    i += 1
    while i < len(doc):
        byte = doc[i]
        if byte == _BACKSLASH:
            i += 2  # the escaped byte may be a quote: never a terminator
        elif byte == _QUOTE:
            return i + 1
        else:
            i += 1
    raise FramingError("unterminated string in JSON body")


def _value_end(doc: bytes, i: int) -> int:
    """Return the index just past the JSON value starting at ``doc[i]``."""
    if i >= len(doc):
        raise FramingError("JSON value expected at end of body")
    if doc[i] == _QUOTE:
        return _string_end(doc, i)
    if doc[i] in _OPEN:
        # Iterative depth count (no recursion: nesting depth is the sender's
        # choice); strings are skipped whole so brackets inside them do not count.
        depth = 0
        while i < len(doc):
            byte = doc[i]
            if byte == _QUOTE:
                i = _string_end(doc, i)
                continue
            if byte in _OPEN:
                depth += 1
            elif byte in _CLOSE:
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        raise FramingError("unbalanced brackets in JSON body")
    end = i
    while end < len(doc) and doc[end] not in _SCALAR_END:
        end += 1
    if end == i:
        raise FramingError(f"JSON value expected at byte {i}")
    return end


def _member_name(literal: bytes) -> str:
    # Names may be written with escapes ("m\u0073g"); compare them decoded.
    try:
        name = orjson.loads(literal)
    except orjson.JSONDecodeError:
        raise FramingError(f"invalid member name {_show(literal)}") from None
    return cast(str, name)  # a JSON string literal always decodes to str


# --------------------------------------------------------------------------- shared helpers


def _load_object(body: bytes) -> JsonObject:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FramingError(f"push body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise FramingError(f"push body must be a JSON object, got {type(doc).__name__}")
    return doc


def _event(
    account: str,
    protocol: Protocol,
    meaning: _Meaning,
    text: str | None,
    time: datetime | None,
    xdata: tuple[tuple[str, str], ...],
    raw: bytes,
) -> AlarmEvent:
    return AlarmEvent(
        account=account,
        protocol=protocol,
        qualifier=meaning.qualifier,
        code=meaning.code,
        event_class=meaning.event_class,
        text=text,
        device_time=time,
        xdata=xdata,
        raw=raw,
    )


def _integer(value: object) -> int | None:
    # JSON true/false parse to bool, a subclass of int: true is not eventType 1.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _lookup(table: Mapping[int, _Meaning], value: object) -> _Meaning:
    number = _integer(value)
    return table.get(number, _UNCLASSIFIED) if number is not None else _UNCLASSIFIED


def _identity(value: object) -> str | None:
    """Return a device identity, or None for a missing value or a placeholder."""
    if isinstance(value, str):
        value = value.strip()
        return None if value.lower() in _PLACEHOLDERS else value
    number = _integer(value)
    return str(number) if number is not None and number >= 0 else None


def _ms_time(doc: JsonObject, name: str) -> datetime | None:
    """Read a millisecond UTC epoch timestamp; absent gives None."""
    value = doc.get(name)
    if value is None:
        return None
    number = _integer(value)
    if number is None:
        raise FramingError(f"{name} must be integer milliseconds since 1970, got {_show(value)}")
    if not 0 <= number <= _MAX_MS:
        raise FramingError(f"{name} {number} is outside years 1970-9999")
    return _EPOCH + timedelta(milliseconds=number)


def _pick(doc: JsonObject, names: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Return ``(name, value as text)`` for the names present with a value."""
    pairs = []
    for name in names:
        value = doc.get(name)
        # Only the platforms' exact "no value" markers are dropped: anything else,
        # even " ", may be what a device or product was configured to send.
        if value is None or value in _NO_VALUE:
            continue
        pairs.append((name, value if isinstance(value, str) else _dumps(value)))
    return tuple(pairs)


def _json_text(value: object) -> str | None:
    return None if value is None else _dumps(value)


def _dumps(value: object) -> str:
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:
        # orjson parses 1024 levels of nesting but serialises only 254.
        raise FramingError("payload is nested too deeply to keep as text") from None


def _show(value: object) -> str:
    """Render a value for an error message, cut short: reasons end up in HTTP replies."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
