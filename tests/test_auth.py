"""arc.auth without a database: passwords, the permission matrix, CSRF, the grants state machine."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from arc.auth import grants, passwords, sessions, totp
from arc.auth.grants import Grant, GrantRefused, GrantStatus
from arc.auth.models import (
    GRANTABLE,
    ROLE_PERMISSIONS,
    Permission,
    PermissionDenied,
    Role,
    User,
    require,
)
from arc.auth.service import locked_until

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
T0 = datetime(2026, 12, 2, tzinfo=UTC)


# --- passwords -------------------------------------------------------------------


def test_hash_and_verify_round_trip() -> None:
    stored = passwords.hash_password("Correct horse 42", hasher=FAST)
    assert stored.startswith("$argon2id$")
    assert passwords.verify_password(stored, "Correct horse 42")
    assert not passwords.verify_password(stored, "correct horse 42")
    assert not passwords.verify_password("not a hash", "Correct horse 42")


def test_nfkc_normalisation_makes_full_width_digits_the_same_password() -> None:
    stored = passwords.hash_password("Password１２３", hasher=FAST)  # full-width digits
    assert passwords.verify_password(stored, "Password123")


def test_needs_rehash_when_parameters_move() -> None:
    cheap = passwords.hash_password("Correct horse 42", hasher=FAST)
    assert passwords.needs_rehash(cheap)  # against the production defaults
    assert not passwords.needs_rehash(cheap, hasher=FAST)
    assert passwords.needs_rehash("garbage")


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Short1", "length"),
        ("x" * 300 + "A1", "length"),
        ("alllowercaseletters", "classes"),
        ("1234567890123", "classes"),
        ("aaaaAAAAaaaa", "distinct"),
        ("Mr.Operator-2026", "username"),
    ],
)
def test_policy_names_the_rule(password: str, rule: str) -> None:
    with pytest.raises(passwords.WeakPassword) as weak:
        passwords.check_policy(password, username="operator")
    assert weak.value.rule == rule
    assert any("\u4e00" <= ch <= "\u9fff" for ch in str(weak.value))  # Chinese first


@pytest.mark.parametrize("password", ["Correct horse 42", "值守中心 duty 2026", "p4ssw0rd-long"])
def test_policy_accepts(password: str) -> None:
    passwords.check_policy(password, username="operator")


# --- the matrix --------------------------------------------------------------------


def test_every_role_has_permissions_and_only_known_ones() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)
    for role, held in ROLE_PERMISSIONS.items():
        assert held, role
        assert held <= set(Permission)


def test_least_privilege_facts() -> None:
    p = ROLE_PERMISSIONS
    assert all(Permission.RECORDS_EXPORT not in held for held in p.values())
    assert p[Role.OPERATOR] < p[Role.SUPERVISOR]
    # The administrator runs the system, not the alarm queue.
    assert not {Permission.QUEUE_READ, Permission.ACCOUNT_READ} & p[Role.ADMIN]
    # The regulator reads and changes nothing.
    assert all(perm.value.endswith(".read") for perm in p[Role.AUDITOR])
    assert p[Role.GUARD] == {Permission.GUARD_ACT}
    assert p[Role.API_CLIENT] == {Permission.EVENTS_POST}
    assert [r for r, held in p.items() if Permission.GRANTS_APPROVE in held] == [Role.ADMIN]
    # Grants never give the power over users or grants.
    assert not {Permission.USERS_MANAGE, Permission.GRANTS_APPROVE, Permission.GRANTS_APPLY} & (
        GRANTABLE
    )


def test_the_docs_table_matches_the_matrix() -> None:
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "access-control.md").read_text()
    for permission in Permission:
        line = next(line for line in doc.splitlines() if line.startswith(f"| `{permission}`"))
        cells = [c.strip() for c in line.strip("|").split("|")][1 : 1 + len(Role)]
        expected = ["✓" if permission in ROLE_PERMISSIONS[r] else "" for r in Role]
        assert cells == expected, permission


def user(role: Role, name: str | None = None, *, disabled: bool = False) -> User:
    return User(uuid.uuid4(), name or role.value, name or role.value, role, None, False, disabled)


def test_require() -> None:
    op = user(Role.OPERATOR)
    require(op, Permission.QUEUE_READ, ROLE_PERMISSIONS[op.role])
    with pytest.raises(PermissionDenied, match="R5"):
        require(op, Permission.RECORDS_EXPORT, ROLE_PERMISSIONS[op.role])
    off = user(Role.OPERATOR, disabled=True)
    with pytest.raises(PermissionDenied):
        require(off, Permission.QUEUE_READ, ROLE_PERMISSIONS[off.role])


# --- CSRF, TOTP, rate limit ----------------------------------------------------------


def test_csrf_token_belongs_to_its_cookie() -> None:
    token = "a" * 43
    session = sessions.Session(
        uuid.uuid4(), user(Role.OPERATOR), sessions.csrf_token_for(token), T0, T0
    )
    assert sessions.csrf_ok(session, sessions.csrf_token_for(token))
    assert not sessions.csrf_ok(session, sessions.csrf_token_for("b" * 43))
    assert not sessions.csrf_ok(session, None)
    assert not sessions.csrf_ok(session, "")
    assert sessions.csrf_token_for(token) != sessions.token_hash(token).hex()


def test_totp_steps_drift_and_reuse() -> None:
    secret = totp.new_secret()
    code = totp.code_at(secret, T0)
    step = totp.matching_step(secret, code, now=T0, after=0)
    assert step is not None
    assert totp.matching_step(secret, code, now=T0 + timedelta(seconds=30), after=0) == step
    assert totp.matching_step(secret, code, now=T0 + timedelta(seconds=95), after=0) is None
    assert totp.matching_step(secret, code, now=T0, after=step) is None
    assert totp.matching_step(secret, "12ab56", now=T0, after=0) is None
    assert totp.matching_step(secret, code[:3] + " " + code[3:], now=T0, after=0) == step


def test_locked_until() -> None:
    window = timedelta(minutes=15)
    fails = [T0 + timedelta(minutes=i) for i in range(5)]
    assert locked_until(fails[:4], T0, limit=5, window=window, lockout=window) is None
    end = locked_until(fails, T0 + timedelta(minutes=5), limit=5, window=window, lockout=window)
    assert end == fails[-1] + window
    assert locked_until(fails, end, limit=5, window=window, lockout=window) is None
    spread = [T0 + timedelta(minutes=4 * i) for i in range(5)]  # 16 minutes apart end to end
    assert locked_until(spread, spread[-1], limit=5, window=window, lockout=window) is None


# --- the grants state machine ------------------------------------------------------------


def test_an_expired_grant_stops_without_any_step() -> None:
    op, boss, admin, admin2 = (
        user(Role.OPERATOR),
        user(Role.SUPERVISOR),
        user(Role.ADMIN),
        user(Role.ADMIN, "admin2"),
    )
    g = grants.apply(
        grant_id=uuid.uuid4(),
        grantee=op,
        permission=Permission.RECORDS_EXPORT,
        scope="*",
        reason="r",
        valid_days=1,
        actor=boss,
        at=T0,
    )
    g = grants.issue(grants.approve(g, actor=admin, reason="ok", at=T0), actor=admin2, at=T0)
    assert g.active(T0) and g.active(T0 + timedelta(hours=23))
    assert not g.active(T0 + timedelta(days=1)) and g.state(T0 + timedelta(days=1)) == "expired"
    assert not g.active(T0 - timedelta(seconds=1))


ACTORS = ("grantee", "applicant", "admin", "admin2", "operator2", "auditor")


class GrantMachine(RuleBasedStateMachine):
    """Random steps by random people on one grant, against a model of the rules."""

    def __init__(self) -> None:
        super().__init__()
        self.people = {
            "grantee": user(Role.OPERATOR, "grantee"),
            "applicant": user(Role.SUPERVISOR, "applicant"),
            "admin": user(Role.ADMIN, "admin"),
            "admin2": user(Role.ADMIN, "admin2"),
            "operator2": user(Role.OPERATOR, "operator2"),
            "auditor": user(Role.AUDITOR, "auditor"),
        }
        self.now = T0
        self.grant: Grant = grants.apply(
            grant_id=uuid.uuid4(),
            grantee=self.people["grantee"],
            permission=Permission.RECORDS_EXPORT,
            scope="*",
            reason="调取",
            valid_days=3,
            actor=self.people["applicant"],
            at=self.now,
        )
        self.history: list[GrantStatus] = [self.grant.status]

    def _try(self, step: str, who: str, **options: object) -> None:
        actor = self.people[who]
        before = self.grant
        approver = who in ("admin", "admin2")
        expected_status = {
            "approve": {GrantStatus.APPLIED},
            "reject": {GrantStatus.APPLIED, GrantStatus.APPROVED},
            "issue": {GrantStatus.APPROVED},
            "change": {GrantStatus.ISSUED},
            "revoke": {GrantStatus.APPLIED, GrantStatus.APPROVED, GrantStatus.ISSUED},
        }[step]
        ok = before.status in expected_status and (
            approver or (step == "revoke" and who in ("grantee", "applicant"))
        )
        if step == "change" and ok:
            ok = not before.expired(self.now)
            days = options.get("valid_days")
            new_until = self.now + timedelta(days=days) if isinstance(days, int) else None
            ok = ok and new_until != before.valid_until
        try:
            if step == "approve":
                after = grants.approve(before, actor=actor, reason="ok", at=self.now)
            elif step == "reject":
                after = grants.reject(before, actor=actor, reason="no", at=self.now)
            elif step == "issue":
                after = grants.issue(before, actor=actor, at=self.now)
            elif step == "change":
                after = grants.change(
                    before,
                    actor=actor,
                    reason="change",
                    at=self.now,
                    valid_days=options.get("valid_days"),  # type: ignore[arg-type]
                )
            else:
                after = grants.revoke(before, actor=actor, reason="done", at=self.now)
        except GrantRefused as refused:
            assert not ok, (step, who, before.status, refused.rule)
            assert "R5" in str(refused)
            return
        assert ok, (step, who, before.status)
        self.grant = after
        self.history.append(after.status)

    @rule(who=st.sampled_from(ACTORS))
    def approve(self, who: str) -> None:
        self._try("approve", who)

    @rule(who=st.sampled_from(ACTORS))
    def reject(self, who: str) -> None:
        self._try("reject", who)

    @rule(who=st.sampled_from(ACTORS))
    def issue(self, who: str) -> None:
        self._try("issue", who)

    @rule(who=st.sampled_from(ACTORS), days=st.integers(1, 90))
    def change(self, who: str, days: int) -> None:
        self._try("change", who, valid_days=days)

    @rule(who=st.sampled_from(ACTORS))
    def revoke(self, who: str) -> None:
        self._try("revoke", who)

    @rule(hours=st.integers(0, 24 * 5))
    def wait(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @precondition(lambda self: self.grant.status is GrantStatus.ISSUED)
    @invariant()
    def issued_grant_has_its_period(self) -> None:
        g = self.grant
        assert g.valid_from is not None and g.valid_until is not None
        assert g.valid_until > g.valid_from
        assert g.active(self.now) == (g.valid_from <= self.now < g.valid_until)

    @invariant()
    def only_issued_grants_are_active(self) -> None:
        if self.grant.status is not GrantStatus.ISSUED:
            assert not self.grant.active(self.now)

    @invariant()
    def nobody_decides_their_own(self) -> None:
        g = self.grant
        for who in (g.decided_by, g.issued_by, g.changed_by):
            assert who not in ("grantee", "applicant")

    @invariant()
    def terminal_states_are_final(self) -> None:
        first_terminal = next((i for i, s in enumerate(self.history) if s in grants.TERMINAL), None)
        if first_terminal is not None:
            assert len(self.history) == first_terminal + 1


TestGrantMachine = GrantMachine.TestCase
TestGrantMachine.settings = settings(
    max_examples=150,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
