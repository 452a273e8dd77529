"""The canonical row encoding and the chain hash (arc.chain)."""

from __future__ import annotations

import copy
import hashlib
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arc import chain

pytestmark = pytest.mark.timeout(60)

BEIJING = timezone(timedelta(hours=8))

text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
opt_text = st.none() | text
# PostgreSQL timestamps: microseconds, any zone.
instants = st.datetimes(
    min_value=datetime(1990, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, BEIJING, timezone(timedelta(hours=-5, minutes=-30))]),
)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)

signal_rows = st.fixed_dictionaries(
    {
        "shard": st.integers(min_value=0, max_value=2**31 - 1),
        "chain_seq": st.integers(min_value=1, max_value=2**63 - 1),
        "signal_id": st.uuids(),
        "received_at": instants,
        "account": text,
        "protocol": text,
        "transport": st.sampled_from(["tcp", "udp", "http"]),
        "peer": opt_text,
        "message_id": opt_text,
        "sequence": opt_text,
        "receiver_no": opt_text,
        "line_no": opt_text,
        "encrypted": st.booleans(),
        "qualifier": text,
        "code": opt_text,
        "cid_event": opt_text,
        "event_class": opt_text,
        "zone": opt_text,
        "user_no": opt_text,
        "partition_no": opt_text,
        "event_text": opt_text,
        "device_time": st.none() | instants,
        "drift_seconds": st.none() | st.floats(allow_nan=False),
        "drift_flagged": st.booleans(),
        "xdata": st.lists(st.tuples(text, text), max_size=3),
        "raw": st.binary(max_size=64),
        "dedup_key": st.none() | st.binary(min_size=32, max_size=32),
        "kafka_offset": st.integers(min_value=0, max_value=2**63 - 1),
    }
)


def changed(column: str, value: Any) -> st.SearchStrategy[Any]:
    """A value of ``column``'s kind that differs from ``value``."""
    kind = chain.KINDS[column]
    strategy: st.SearchStrategy[Any]
    if kind is chain.Kind.INT:
        strategy = int64
    elif kind is chain.Kind.FLOAT:
        strategy = st.floats(allow_nan=False)
    elif kind is chain.Kind.BOOL:
        strategy = st.booleans()
    elif kind is chain.Kind.TEXT:
        strategy = text
    elif kind is chain.Kind.UUID:
        strategy = st.uuids()
    elif kind is chain.Kind.TIMESTAMP:
        strategy = instants
    elif kind is chain.Kind.BYTES:
        strategy = st.binary(max_size=64)
    else:
        strategy = st.lists(st.tuples(text, text), max_size=3)
    if value is not None:
        strategy = st.none() | strategy
    return strategy.filter(lambda new: not same(kind, new, value))


def same(kind: chain.Kind, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if kind is chain.Kind.FLOAT:
        return struct.pack(">d", a) == struct.pack(">d", b)  # -0.0 is stored apart from 0.0
    if kind is chain.Kind.JSON:
        return bool(chain.json_text(a) == chain.json_text(b))
    return bool(a == b)


def as_read_back(row: dict[str, Any]) -> dict[str, Any]:
    """The row as asyncpg returns it: UTC datetimes, jsonb as text, doubles as float."""
    out = dict(row)
    for name, value in row.items():
        kind = chain.KINDS[name]
        if kind is chain.Kind.TIMESTAMP and value is not None:
            out[name] = value.astimezone(UTC)
        elif kind is chain.Kind.JSON:
            out[name] = chain.json_text(value)
        elif kind is chain.Kind.FLOAT and value is not None:
            out[name] = float(value)
    return out


@settings(max_examples=200, deadline=None)
@given(signal_rows)
def test_canonical_is_stable_for_equal_values(row: dict[str, Any]) -> None:
    first = chain.canonical(chain.SIGNAL_COLUMNS, row)
    assert chain.canonical(chain.SIGNAL_COLUMNS, copy.deepcopy(row)) == first
    assert chain.canonical(chain.SIGNAL_COLUMNS, as_read_back(row)) == first
    # Key order of the mapping does not matter, the column order does.
    assert chain.canonical(chain.SIGNAL_COLUMNS, dict(reversed(row.items()))) == first


@settings(max_examples=300, deadline=None)
@given(signal_rows, st.data())
def test_canonical_differs_when_any_column_changes(
    row: dict[str, Any], data: st.DataObject
) -> None:
    column = data.draw(st.sampled_from(chain.SIGNAL_COLUMNS))
    other = dict(row)
    other[column] = data.draw(changed(column, row[column]))
    assert chain.canonical(chain.SIGNAL_COLUMNS, other) != chain.canonical(
        chain.SIGNAL_COLUMNS, row
    )
    prev = bytes(range(32))
    assert chain.link(prev, chain.SIGNAL_COLUMNS, other) != chain.link(
        prev, chain.SIGNAL_COLUMNS, row
    )


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_json_survives_its_text(value: Any) -> None:
    """The writer's value and the jsonb text read back encode alike (jsonb: numbers as numeric)."""
    encoded = chain.canonical(("details",), {"details": {"v": value}})
    assert chain.canonical(("details",), {"details": chain.json_text({"v": value})}) == encoded


@given(st.text(max_size=10), st.text(max_size=10))
def test_null_empty_and_neighbours_are_distinct(a: str, b: str) -> None:
    def enc(peer: str | None, message_id: str | None) -> bytes:
        return chain.canonical(("peer", "message_id"), {"peer": peer, "message_id": message_id})

    assert enc(None, a) != enc("", a)
    # Length prefixes: moving characters from one column to its neighbour changes the bytes.
    if a + b:
        assert enc(a + b, "") != enc("", a + b)


def test_link_depends_on_prev_hash_and_is_sha256() -> None:
    row = {"shard": 0, "chain_seq": 1}
    columns = ("shard", "chain_seq")
    first = chain.link(chain.GENESIS, columns, row)
    assert len(first) == 32
    assert chain.link(first, columns, row) != first
    assert first == hashlib.sha256(chain.GENESIS + chain.canonical(columns, row)).digest()


def test_column_tuples_are_the_tables_without_the_hashes() -> None:
    assert chain.SIGNAL_COLUMNS[:4] == ("shard", "chain_seq", "signal_id", "received_at")
    assert len(chain.SIGNAL_COLUMNS) == 28
    assert chain.QUARANTINE_COLUMNS[-1] == "kafka_offset"
    assert chain.AUDIT_COLUMNS == (
        "shard",
        "chain_seq",
        "audit_id",
        "at",
        "actor",
        "action",
        "subject",
        "details",
    )
    for columns in chain.COLUMNS.values():
        assert "hash" not in columns and "prev_hash" not in columns
        assert all(name in chain.KINDS for name in columns)


def test_same_instant_in_any_zone_encodes_alike() -> None:
    utc = datetime(2026, 12, 1, 16, 0, 0, 123456, tzinfo=UTC)
    beijing = utc.astimezone(BEIJING)
    assert chain.canonical(("at",), {"at": utc}) == chain.canonical(("at",), {"at": beijing})
    later = utc + timedelta(microseconds=1)
    assert chain.canonical(("at",), {"at": later}) != chain.canonical(("at",), {"at": utc})


def test_equivalent_inputs_encode_alike() -> None:
    u = uuid.uuid4()
    assert chain.canonical(("audit_id",), {"audit_id": u}) == chain.canonical(
        ("audit_id",), {"audit_id": str(u)}
    )
    assert chain.canonical(("drift_seconds",), {"drift_seconds": 2}) == chain.canonical(
        ("drift_seconds",), {"drift_seconds": 2.0}
    )
    assert chain.canonical(("raw",), {"raw": bytearray(b"ab")}) == chain.canonical(
        ("raw",), {"raw": memoryview(b"ab")}
    )
    # What PostgreSQL's jsonb gives back for numbers the writer had as floats.
    for number, jsonb in ((1.0, "1.0"), (1e20, "100000000000000000000"), (0.1, "0.1"), (-0.0, "0")):
        a = chain.canonical(("details",), {"details": {"n": number}})
        assert a == chain.canonical(("details",), {"details": f'{{"n": {jsonb}}}'})


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("at", datetime(2026, 1, 1)),  # noqa: DTZ001 - the naive datetime is the point
        ("shard", True),
        ("shard", 2**63),
        ("encrypted", 1),
        ("account", b"1234"),
        ("signal_id", "not-a-uuid"),
        ("raw", "text"),
        ("details", {"n": float("nan")}),
        ("details", {1: "non-string key"}),
        ("details", "{not json"),
        ("details", {"big": 2**70}),
        ("details", {"obj": object()}),
    ],
)
def test_values_without_a_canonical_form_are_refused(column: str, value: object) -> None:
    with pytest.raises(chain.EncodingError, match=column):
        chain.canonical((column,), {column: value})


def test_unknown_column_is_refused() -> None:
    with pytest.raises(chain.EncodingError, match="KINDS"):
        chain.canonical(("mystery",), {"mystery": 1})
    with pytest.raises(chain.EncodingError, match="32 bytes"):
        chain.link(b"short", ("shard",), {"shard": 1})
