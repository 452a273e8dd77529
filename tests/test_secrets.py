"""Secrets at rest: sealed under the master key, bound to their account."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from arc.secrets import MasterKeyMismatch, SecretBox, SecretCorrupted, SecretError

MASTER = SecretStr("a master key of the centre, long enough for production")
PURPOSE = b"test/purpose"
KEY = bytes(range(16))


def box(master: SecretStr | str = MASTER, purpose: bytes = PURPOSE) -> SecretBox:
    return SecretBox(master, purpose=purpose)


def test_round_trip() -> None:
    sealed = box().seal(KEY, context=b"1234")
    assert box().open(sealed, context=b"1234") == KEY
    assert KEY not in sealed
    # version, key id, nonce, ciphertext, tag
    assert len(sealed) == 1 + 4 + 12 + len(KEY) + 16 and sealed[0] == 1


def test_every_seal_is_different() -> None:
    # A random nonce: the same key sealed twice does not show that it is the same.
    assert box().seal(KEY, context=b"1234") != box().seal(KEY, context=b"1234")


def test_wrong_master_key_is_refused() -> None:
    sealed = box().seal(KEY, context=b"1234")
    with pytest.raises(MasterKeyMismatch, match="different master key"):
        box(SecretStr("another master key")).open(sealed, context=b"1234")


def test_other_purpose_is_refused() -> None:
    sealed = box().seal(KEY, context=b"1234")
    with pytest.raises(MasterKeyMismatch):
        box(purpose=b"another/purpose").open(sealed, context=b"1234")


def test_wrong_account_context_is_refused() -> None:
    sealed = box().seal(KEY, context=b"1234")
    with pytest.raises(SecretCorrupted, match="another account"):
        box().open(sealed, context=b"1235")


@pytest.mark.parametrize("position", [0, 1, 5, 17, 20, -1])
def test_tampered_ciphertext_is_refused(position: int) -> None:
    sealed = bytearray(box().seal(KEY, context=b"1234"))
    sealed[position] ^= 0x01
    with pytest.raises(SecretError):
        box().open(bytes(sealed), context=b"1234")


def test_truncated_ciphertext_is_refused() -> None:
    sealed = box().seal(KEY, context=b"1234")
    for length in (0, 5, 32):
        with pytest.raises(SecretCorrupted, match="too short"):
            box().open(sealed[:length], context=b"1234")


def test_the_box_shows_no_key() -> None:
    secret = box()
    assert MASTER.get_secret_value() not in repr(secret)
    assert repr(secret) == "SecretBox(purpose=b'test/purpose')"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_empty_master_key_or_purpose_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        SecretBox("", purpose=PURPOSE)
    with pytest.raises(ValueError, match="purpose"):
        SecretBox(MASTER, purpose=b"")


@given(
    key=st.binary(min_size=0, max_size=64),
    context=st.binary(max_size=16),
    master=st.text(min_size=1, max_size=40),
)
def test_round_trip_of_random_keys(key: bytes, context: bytes, master: str) -> None:
    secret = SecretBox(master, purpose=PURPOSE)
    assert secret.open(secret.seal(key, context=context), context=context) == key
