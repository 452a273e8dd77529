"""Passwords: argon2id hashes (argon2-cffi) and the password policy.

Production hashes with argon2-cffi's defaults (RFC 9106's second recommended
profile: t=3, 64 MiB, p=4); a hash records its own parameters, so a verifier
needs none, and ``needs_rehash`` tells when the defaults have moved on. Tests
pass a cheaper ``PasswordHasher`` explicitly (``hasher=``), so nothing global
weakens the production setting.

A password is NFKC-normalised before hashing and checking: the same password
typed on another keyboard or input method (full-width digits, composed
accents) is the same password.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

DEFAULT_HASHER = PasswordHasher()
"""argon2id with the library's defaults: what production uses."""

MIN_LENGTH = 10
# argon2 takes any length; the bound only stops a megabyte "password" from
# costing a request's worth of hashing time and memory.
MAX_LENGTH = 256
MIN_CLASSES = 2
MIN_DISTINCT = 5


class WeakPassword(ValueError):
    """A password the policy refuses; ``rule`` names the rule."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} (密码策略 password policy: {rule})")
        self.rule = rule


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One rule of the password policy, as the docs list it."""

    name: str
    text: str


POLICY = (
    PolicyRule("length", f"{MIN_LENGTH}-{MAX_LENGTH} characters"),
    PolicyRule("classes", f"at least {MIN_CLASSES} of: lower case, upper case, digits, others"),
    PolicyRule("distinct", f"at least {MIN_DISTINCT} different characters"),
    PolicyRule("username", "does not contain the username"),
)


def _normal(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def _classes(password: str) -> int:
    kinds = set()
    for char in password:
        if char.islower():
            kinds.add("lower")
        elif char.isupper():
            kinds.add("upper")
        elif char.isdigit():
            kinds.add("digit")
        else:
            kinds.add("other")  # punctuation, spaces, CJK characters
    return len(kinds)


def check_policy(password: str, *, username: str | None = None) -> None:
    """Raise ``WeakPassword`` naming the first rule ``password`` breaks."""
    text = _normal(password)
    if len(text) < MIN_LENGTH:
        raise WeakPassword(
            "length",
            f"密码至少 {MIN_LENGTH} 个字符 password needs at least {MIN_LENGTH} characters",
        )
    if len(text) > MAX_LENGTH:
        raise WeakPassword(
            "length", f"密码至多 {MAX_LENGTH} 个字符 password may have at most {MAX_LENGTH}"
        )
    if _classes(text) < MIN_CLASSES:
        raise WeakPassword(
            "classes",
            "密码须含至少两类字符 password needs at least two of: lower case, upper case, "
            "digits, other characters",
        )
    if len(set(text)) < MIN_DISTINCT:
        raise WeakPassword(
            "distinct",
            f"密码须含至少 {MIN_DISTINCT} 个不同字符 password needs at least "
            f"{MIN_DISTINCT} different characters",
        )
    if username and len(username) >= 3 and username.casefold() in text.casefold():
        raise WeakPassword("username", "密码不得包含用户名 password must not contain the username")


def hash_password(password: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    """Return the argon2id hash of ``password`` (the policy is the caller's: ``check_policy``)."""
    return hasher.hash(_normal(password))


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash (a malformed hash matches nothing)."""
    try:
        return DEFAULT_HASHER.verify(stored, _normal(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """Whether ``stored`` was made with other parameters than ``hasher``'s."""
    try:
        return hasher.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True
