r"""The hash chains of the append-only logs: one canonical encoding, one hash.

Theory of operation. Every append-only log (``signal_log``, ``quarantine``,
``audit_log``, ``incident_log``, ``access_audit``) is a hash chain per writer shard::

    hash(row) = SHA-256(prev_hash || canonical(columns, row))

where ``prev_hash`` is the previous row's ``hash`` in the same shard (``GENESIS``
for the first row) and ``columns`` are all the table's columns except
``prev_hash`` and ``hash``, in table order. ``shard`` and ``chain_seq`` are
hashed too, so a row can neither be removed (a ``chain_seq`` gap, a broken
link) nor moved to another place or shard. The writer computes the hash from
the Python values it inserts; ``arc verify`` recomputes it from what asyncpg
reads back. Both must give the same bytes, so the encoding depends on each
column's declared kind (``KINDS``), never on the incidental Python type:

- ``canonical`` = ``b"arc-chain/1\n"``, the JSON array of the column names,
  ``b"\n"``, the JSON array of the values. JSON as orjson writes it: compact,
  UTF-8, object keys sorted, strings escaped minimally (``\"``, ``\\``, and
  control characters only, as RFC 8785 does). Per kind, a value is:
- NULL: ``null`` (distinct from every value below, the empty string included);
- int: a JSON integer (PostgreSQL integer/bigint; a ``bool`` is refused);
- float: a string, ``float.hex()`` of the double (``"0x1.8000000000000p+0"``,
  ``"nan"``, ``"inf"``): exact, and free of any decimal formatting; an int
  given for a float column is converted, as the database would store it;
- bool: ``true`` / ``false``;
- text: a JSON string; uuid: its lowercase hyphenated form (a ``str`` is parsed);
- timestamp: microseconds since 1970-01-01 UTC, an integer (PostgreSQL keeps
  microseconds; the zone is normalised away; a naive datetime is refused);
- bytes: lowercase hex, a string;
- json: the value itself after normalisation: tuples become lists, integral
  floats become ints (``jsonb`` stores numbers as numeric and gives ``1.0``
  back as ``1.0`` but ``1e20`` as ``100000000000000000000``). A ``str`` in a
  json column is JSON *text* (what asyncpg returns for ``jsonb`` without a
  codec) and is parsed first, so the writer may pass either the value or its
  JSON text and the verifier needs no codec. The top-level values of the json
  columns (xdata: an array, details: an object) are never JSON strings, so
  this is unambiguous. Floats inside JSON (rare: xdata holds strings) are the
  one place where orjson's number formatting is part of the format.

One orjson call per row, not a Python step per byte string: ``arc verify``
hashes every row of the log.

Changing any of this changes every hash: a new encoding gets a new version
prefix and the verifier must learn to tell them apart.
"""

from __future__ import annotations

import functools
import hashlib
import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Protocol

import orjson

GENESIS = bytes(32)
"""``prev_hash`` of the first row of a chain."""

HASH_SIZE = 32
_VERSION = b"arc-chain/1\n"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# orjson reads integers in this range as int, others as float, and writes no others.
_JSON_INT_MIN = -(2**63)
_JSON_INT_MAX = 2**64 - 1


class Kind(Enum):
    """How a column's value is encoded (its PostgreSQL type, roughly)."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    TEXT = "text"
    UUID = "uuid"
    TIMESTAMP = "timestamp"
    BYTES = "bytes"
    JSON = "json"


SIGNAL_COLUMNS: tuple[str, ...] = (
    "shard",
    "chain_seq",
    "signal_id",
    "received_at",
    "account",
    "protocol",
    "transport",
    "peer",
    "message_id",
    "sequence",
    "receiver_no",
    "line_no",
    "encrypted",
    "qualifier",
    "code",
    "cid_event",
    "event_class",
    "zone",
    "user_no",
    "partition_no",
    "event_text",
    "device_time",
    "drift_seconds",
    "drift_flagged",
    "xdata",
    "raw",
    "dedup_key",
    "kafka_offset",
)
"""The hashed columns of ``signal_log``, in table order."""

QUARANTINE_COLUMNS: tuple[str, ...] = (
    "shard",
    "chain_seq",
    "quarantine_id",
    "received_at",
    "transport",
    "peer",
    "protocol",
    "account",
    "response",
    "reason",
    "raw",
    "kafka_offset",
)
"""The hashed columns of ``quarantine``, in table order."""

AUDIT_COLUMNS: tuple[str, ...] = (
    "shard",
    "chain_seq",
    "audit_id",
    "at",
    "actor",
    "action",
    "subject",
    "details",
)
"""The hashed columns of ``audit_log``, in table order."""

INCIDENT_COLUMNS: tuple[str, ...] = (
    "shard",
    "chain_seq",
    "entry_id",
    "incident_id",
    "at",
    "account",
    "kind",
    "actor",
    "role",
    "signal_id",
    "command_id",
    "details",
)
"""The hashed columns of ``incident_log``, in table order."""

ACCESS_COLUMNS: tuple[str, ...] = (
    "shard",
    "chain_seq",
    "access_id",
    "at",
    "actor",
    "role",
    "action",
    "subject",
    "details",
    "peer",
)
"""The hashed columns of ``access_audit`` (arc.auth.access), in table order."""

COLUMNS: Mapping[str, tuple[str, ...]] = {
    "signal_log": SIGNAL_COLUMNS,
    "quarantine": QUARANTINE_COLUMNS,
    "audit_log": AUDIT_COLUMNS,
    "incident_log": INCIDENT_COLUMNS,
    "access_audit": ACCESS_COLUMNS,
}
"""The hashed columns of each chained table."""

KINDS: Mapping[str, Kind] = {
    "shard": Kind.INT,
    "chain_seq": Kind.INT,
    "kafka_offset": Kind.INT,
    "signal_id": Kind.UUID,
    "quarantine_id": Kind.UUID,
    "audit_id": Kind.UUID,
    "entry_id": Kind.UUID,
    "incident_id": Kind.UUID,
    "command_id": Kind.UUID,
    "access_id": Kind.UUID,
    "received_at": Kind.TIMESTAMP,
    "device_time": Kind.TIMESTAMP,
    "at": Kind.TIMESTAMP,
    "encrypted": Kind.BOOL,
    "drift_flagged": Kind.BOOL,
    "drift_seconds": Kind.FLOAT,
    "xdata": Kind.JSON,
    "details": Kind.JSON,
    "raw": Kind.BYTES,
    "dedup_key": Kind.BYTES,
    **dict.fromkeys(
        (
            "account",
            "protocol",
            "transport",
            "peer",
            "message_id",
            "sequence",
            "receiver_no",
            "line_no",
            "qualifier",
            "code",
            "cid_event",
            "event_class",
            "zone",
            "user_no",
            "partition_no",
            "event_text",
            "response",
            "reason",
            "actor",
            "action",
            "subject",
            "kind",
            "role",
        ),
        Kind.TEXT,
    ),
}
"""The encoding of every hashed column."""


class Row(Protocol):
    """A row by column name: a ``Mapping`` or an ``asyncpg.Record``."""

    def __getitem__(self, key: str, /) -> Any: ...


class EncodingError(ValueError):
    """A value cannot be encoded canonically (wrong type, naive datetime, ...)."""


def canonical(columns: tuple[str, ...], row: Mapping[str, object] | Row) -> bytes:
    """Encode ``row``'s values of ``columns``, in that order, deterministically."""
    header, plan = _plan(columns)
    try:
        values = [None if (v := row[name]) is None else convert(v) for name, convert in plan]
        return header + orjson.dumps(values, option=orjson.OPT_SORT_KEYS)
    except (EncodingError, TypeError, ValueError, AttributeError):
        # Again, one column at a time, to say which one.
        for name, convert in plan:
            value = row[name]
            try:
                if value is not None:
                    orjson.dumps(convert(value), option=orjson.OPT_SORT_KEYS)
            except EncodingError as error:
                raise EncodingError(f"column {name}: {error}") from None
            except (TypeError, ValueError, AttributeError) as error:
                raise EncodingError(f"column {name}: {error}") from None
        raise


def link(prev_hash: bytes, columns: tuple[str, ...], row: Mapping[str, object] | Row) -> bytes:
    """Return the row's hash: SHA-256(prev_hash || canonical(columns, row))."""
    if len(prev_hash) != HASH_SIZE:
        raise EncodingError(f"prev_hash must be {HASH_SIZE} bytes, not {len(prev_hash)}")
    digest = hashlib.sha256(bytes(prev_hash))
    digest.update(canonical(columns, row))
    return digest.digest()


def json_text(value: object) -> str:
    """Return ``value`` as the JSON text to insert into a ``jsonb`` column (no codec needed)."""
    return orjson.dumps(_normalise_json(value), option=orjson.OPT_SORT_KEYS).decode()


_Converter = Callable[[Any], object]


@functools.cache
def _plan(columns: tuple[str, ...]) -> tuple[bytes, tuple[tuple[str, _Converter], ...]]:
    """The encoded header and each column's converter, worked out once per tuple."""
    plan = []
    for name in columns:
        kind = KINDS.get(name)
        if kind is None:
            raise EncodingError(f"column {name!r} has no canonical encoding (add it to KINDS)")
        plan.append((name, _CONVERTERS[kind]))
    return _VERSION + orjson.dumps(list(columns)) + b"\n", tuple(plan)


# Converters: a non-NULL value of a kind to what stands for it in the JSON array.
# The common type first and cheaply: they run for every column of every row.


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    raise EncodingError(f"expected str, got {type(value).__name__}")


def _int(value: object) -> int:
    # bool is an int in Python, but not in PostgreSQL.
    if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
        raise EncodingError(f"{value} does not fit in a bigint")
    raise EncodingError(f"expected int, got {type(value).__name__}")


def _bool(value: object) -> bool:
    if value is True or value is False:
        return value
    raise EncodingError(f"expected bool, got {type(value).__name__}")


def _float(value: object) -> str:
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, int) and not isinstance(value, bool):
        # The database stores an int given for a double precision column as that double.
        return float(value).hex()
    raise EncodingError(f"expected float, got {type(value).__name__}")


def _uuid(value: object) -> str:
    if isinstance(value, uuid.UUID):  # asyncpg's UUID is a subclass
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise EncodingError(f"{value!r} is not a UUID") from None
    raise EncodingError(f"expected UUID, got {type(value).__name__}")


def _timestamp(value: object) -> int:
    if not isinstance(value, datetime):
        raise EncodingError(f"expected datetime, got {type(value).__name__}")
    if value.utcoffset() is None:
        raise EncodingError("a naive datetime is no instant: give it a time zone")
    return (value - _EPOCH) // _MICROSECOND


def _bytes(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return value.hex()
    raise EncodingError(f"expected bytes, got {type(value).__name__}")


def _json(value: object) -> object:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise EncodingError("a str in a json column must be JSON text") from None
    return _normalise_json(value)


_CONVERTERS: Mapping[Kind, _Converter] = {
    Kind.INT: _int,
    Kind.FLOAT: _float,
    Kind.BOOL: _bool,
    Kind.TEXT: _text,
    Kind.UUID: _uuid,
    Kind.TIMESTAMP: _timestamp,
    Kind.BYTES: _bytes,
    Kind.JSON: _json,
}


_AS_THEY_ARE = frozenset({str, bool, type(None)})  # JSON values no round trip changes


def _normalise_json(value: object) -> object:
    """Make a JSON value read the same before and after a ``jsonb`` round trip."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if type(value) is dict and all(
        type(key) is str and type(item) in _AS_THEY_ARE for key, item in value.items()
    ):
        return value  # most details: flat text and flags, nothing to normalise or copy
    if isinstance(value, int):
        if not _JSON_INT_MIN <= value <= _JSON_INT_MAX:
            raise EncodingError(f"JSON integer {value} is outside the range read back exactly")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EncodingError("JSON has no NaN or infinity")
        # jsonb keeps numbers as numeric, so 1.0 may come back as 1 and 1e20 as
        # 100000000000000000000, which orjson reads as an int or a float by size.
        if value.is_integer() and _JSON_INT_MIN <= value <= _JSON_INT_MAX:
            return int(value)
        return value
    if isinstance(value, list | tuple):
        return [_normalise_json(item) for item in value]
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(f"JSON object keys are strings, not {type(key).__name__}")
            out[key] = _normalise_json(item)
        return out
    raise EncodingError(f"{type(value).__name__} is not a JSON value")
