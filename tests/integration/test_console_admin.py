"""Supervisors' and administrators' changes through the console, written as ``arc_config``.

The centre of ``test_console`` (receiver, log writer, dispatcher and console
in this process, a config pool logged in as ``arc_config``); what the API
answers is checked against the database, the audit log in particular. Then
what ``arc_config`` may not do, and a console without it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest
from pydantic import SecretStr

from arc import db
from arc.auth.models import Role
from arc.auth.totp import totp_box
from arc.config import Settings
from arc.console.app import create_app
from arc.console.deps import Console
from arc.runtime import with_credentials
from tests.integration.test_console import (
    ACCOUNT,
    APP_PASSWORD,
    CONFIG_PASSWORD,
    PASSWORD,
    Centre,
    _incident,
    _seed,
    centre,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio, pytest.mark.timeout(120)]
__all__ = ["centre"]  # the fixture, shared with test_console

KEY = "00112233445566778899AABBCCDDEEFF"  # an AES-128 key, as a panel's installer types it
GOOD_PASSWORD = "Night-Shift-2026-Desk"  # noqa: S105 - a test user's


async def _audit(centre: Centre, action: str) -> list[asyncpg.Record]:
    return await centre.admin.fetch(
        "SELECT actor, action, subject, details::text AS details FROM audit_log"
        " WHERE action = $1 ORDER BY chain_seq",
        action,
    )


async def test_a_supervisor_changes_storms_rules_staff(centre: Centre) -> None:
    supervisor = await centre.login(Role.SUPERVISOR)
    post = supervisor.client.post
    started = await post(
        "/api/admin/storms",
        json={"event_class": "trouble", "mode": "log", "minutes": 30, "reason": "朝阳区停电"},
    )
    assert started.status_code == 200, started.text
    assert started.json()["started_by"] == "supervisor"
    twice = await post(
        "/api/admin/storms",
        json={"event_class": "trouble", "mode": "log", "minutes": 30, "reason": "again"},
    )
    assert twice.status_code == 409 and "风暴模式" in twice.json()["rule"]
    stopped = await post(
        "/api/admin/storms/stop", json={"event_class": "trouble", "reason": "恢复"}
    )
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["stopped_by"] == "supervisor"
    for action in ("storm.start", "storm.stop"):
        rows = await _audit(centre, action)
        assert [(r["actor"], r["subject"]) for r in rows] == [("supervisor", "storm:trouble")]

    # Classification and plans (R4): set, refused by a rule, removed; each audited.
    override = await post(
        "/api/admin/overrides",
        json={"match": "SIA:BA", "grade": 1, "account": ACCOUNT, "reason": "银行网点"},
    )
    assert override.status_code == 200, override.text
    holdup = await post(
        "/api/admin/plans",
        json={"event_class": "holdup", "steps": ["call_keyholders:60"], "reason": "x"},
    )
    assert holdup.status_code == 409 and "R4" in holdup.json()["rule"]
    plan = await post(
        "/api/admin/plans",
        json={
            "event_class": "burglary",
            "account": ACCOUNT,
            "steps": ["dispatch_guard:300", "call_keyholders:600:optional"],
            "reason": "先派保安",
        },
    )
    assert plan.status_code == 200, plan.text
    assert [s["kind"] for s in plan.json()["steps"]] == ["dispatch_guard", "call_keyholders"]
    page = await supervisor.client.get("/supervisor/rules")
    assert "先派保安" in page.text and "银行网点" in page.text
    assert 'data-post="/api/admin/plans/remove"' in page.text  # the forms, for admin.js
    removed = await post(
        "/api/admin/plans/remove",
        json={"event_class": "burglary", "account": ACCOUNT, "reason": "试行结束"},
    )
    assert removed.status_code == 200, removed.text
    unset = await post(
        "/api/admin/overrides/remove",
        json={"match": "SIA:BA", "account": ACCOUNT, "reason": "试行结束"},
    )
    assert unset.status_code == 200, unset.text
    assert await centre.admin.fetchval("SELECT count(*) FROM response_plans") == 0
    for action in ("rules.classify", "rules.unclassify", "rules.plan", "rules.unplan"):
        assert [r["actor"] for r in await _audit(centre, action)] == ["supervisor"], action

    # Staff (R2): a guard whose certificate has expired does not qualify until renewed.
    added = await post(
        "/api/admin/staff",
        json={
            "name": "李强",
            "category": "patrol_response",
            "date_of_birth": "1990-01-01",
            "certificate_no": "京B20190001",
            "certificate_expires": "2020-01-01",
            "exam_passed_on": "2019-01-01",
            "trained_on": "2019-02-01",
        },
    )
    assert added.status_code == 200, added.text
    member = added.json()
    assert not member["eligible"] and member["ineligible_reasons"]
    renewed = await post(
        f"/api/admin/staff/{member['staff_id']}/qualification",
        json={"certificate_expires": "2099-12-31"},
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["eligible"] and renewed.json()["name"] == "李强"
    taken = await post(
        "/api/admin/staff",
        json={
            "name": "王五",
            "category": "patrol_response",
            "date_of_birth": "1991-01-01",
            "certificate_no": "京b20190001",
            "certificate_expires": "2099-01-01",
        },
    )
    assert taken.status_code == 409 and "R2" in taken.json()["rule"]
    unknown = await post(f"/api/admin/staff/{uuid.uuid4()}/qualification", json={})
    assert unknown.status_code == 404
    assert [r["action"] for r in await _audit(centre, "staff.replace")] == ["staff.replace"]
    page = await supervisor.client.get("/supervisor/staff")
    assert page.status_code == 200 and f"/api/admin/staff/{member['staff_id']}/" in page.text


async def test_an_account_and_its_site_from_the_console(centre: Centre) -> None:
    supervisor = await centre.login(Role.SUPERVISOR)
    post = supervisor.client.post
    account = {
        "account": "ABCD",
        "name": "国贸银行",
        "key": f"hex:{KEY}",
        "link_test_seconds": 3600,
    }
    short = await post("/api/admin/accounts", json=account)
    # One qualified guard serves no second customer (联网报警运营规范 表1).
    assert short.status_code == 409 and "表1" in short.json()["rule"], short.text
    bad_key = await post("/api/admin/accounts", json={**account, "key": "hex:" + KEY[:-2] + "ZZ"})
    assert bad_key.status_code == 422 and "hex" in bad_key.text
    added = await post(
        "/api/admin/accounts", json={**account, "staffing_override": "新增保安本周到岗"}
    )
    assert added.status_code == 200, added.text
    assert added.json()["has_key"] and added.json()["key_format"] == "hex"
    again = await post("/api/admin/accounts", json={**account, "staffing_override": "x"})
    assert again.status_code == 409

    interval = await post("/api/admin/accounts/abcd/link-test", json={"link_test_seconds": 600})
    assert interval.status_code == 200, interval.text
    missing = await post("/api/admin/accounts/FFFF/link-test", json={"link_test_seconds": 600})
    assert missing.status_code == 404
    site = await post(
        "/api/admin/accounts/ABCD/site",
        json={"address": "北京市朝阳区建国门外大街1号", "latitude": 39.9, "longitude": 116.45},
    )
    assert site.status_code == 200, site.text
    zone = await post(
        "/api/admin/accounts/ABCD/zones",
        json={"zone": "003", "name": "金库门", "technology": "door_contact"},
    )
    assert zone.status_code == 200, zone.text
    other = await post(
        "/api/admin/accounts/ABCD/zones", json={"zone": "4", "name": "大厅", "technology": "pir"}
    )
    assert other.status_code == 200, other.text
    gone = await post("/api/admin/accounts/ABCD/zones/4/remove", json={})
    assert gone.json() == {"zone": "4", "removed": True}
    keyholders = await post(
        "/api/admin/accounts/ABCD/keyholders",
        json={"keyholders": [{"name": "赵敏", "phone": "13700137000", "relation": "行长"}]},
    )
    assert keyholders.status_code == 200, keyholders.text
    unreadable = await post("/api/admin/accounts/ABCD/schedule", json={"lines": ["mon 9-5"]})
    assert unreadable.status_code == 422 and "营业时间" in unreadable.json()["rule"]
    schedule = await post(
        "/api/admin/accounts/ABCD/schedule", json={"lines": ["mon-fri 09:00-17:00"]}
    )
    assert schedule.json() == {"schedule": ["mon-fri 09:00-17:00", "sat,sun closed"]}, schedule.text

    row = await centre.admin.fetchrow(
        "SELECT a.link_test_seconds, a.key_ciphertext, s.address,"
        " (SELECT array_agg(zone) FROM account_zones z WHERE z.account = a.account) AS zones,"
        " (SELECT count(*) FROM account_keyholders k WHERE k.account = a.account) AS keyholders,"
        " (SELECT count(*) FROM account_schedules c WHERE c.account = a.account) AS days"
        " FROM accounts a JOIN account_sites s USING (account) WHERE a.account = 'ABCD'"
    )
    assert row is not None
    assert row["link_test_seconds"] == 600 and row["key_ciphertext"] is not None  # key kept
    assert row["zones"] == ["003"] and row["keyholders"] == 1 and row["days"] == 7
    page = await supervisor.client.get("/accounts/ABCD")
    assert page.status_code == 200 and "金库门" in page.text and "赵敏,13700137000" in page.text
    assert "mon-fri 09:00-17:00" in page.text  # the schedule's form holds it
    listing = await supervisor.client.get("/supervisor/accounts")
    assert 'data-post="/api/admin/accounts/ABCD/link-test"' in listing.text
    assert KEY.lower() not in (page.text + listing.text).lower()

    # The key: in no answer, no audit row (only whether there is one, and its format).
    details = await centre.admin.fetch(
        "SELECT action, details::text AS details FROM audit_log WHERE subject = 'account:ABCD'"
        " OR action = 'account.import' ORDER BY chain_seq"
    )
    assert [r["action"] for r in details][:2] == ["account.staffing_override", "account.add"]
    answers = [short, bad_key, added, again, interval, site]
    for text in [r["details"] for r in details] + [a.text for a in answers]:
        assert KEY.lower() not in text.lower()
    assert orjson.loads(details[1]["details"])["has_key"] is True


async def test_the_grants_workflow_through_the_console(centre: Centre) -> None:
    await centre.alarm("NBA05")
    await _incident(centre)
    supervisor = await centre.login(Role.SUPERVISOR)
    admin = await centre.login(Role.ADMIN)
    auditor = await centre.login(Role.AUDITOR)
    export = f"/api/accounts/{ACCOUNT}/signals.csv"
    assert (await auditor.client.get(export)).status_code == 403

    applied = await supervisor.client.post(
        "/api/admin/grants",
        json={
            "username": "auditor",
            "permission": "records.export",
            "reason": "公安机关调取函 2026-118",
            "days": 1,
        },
    )
    assert applied.status_code == 200, applied.text
    grant = applied.json()["grant_id"]
    # A supervisor applies; only an administrator decides (graded authorisation).
    assert (
        await supervisor.client.post(f"/api/admin/grants/{grant}/approve", json={"reason": "ok"})
    ).status_code == 403
    approved = await admin.client.post(
        f"/api/admin/grants/{grant}/approve", json={"reason": "调取函已核验"}
    )
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    issued = await admin.client.post(f"/api/admin/grants/{grant}/issue", json={})
    assert issued.status_code == 200 and issued.json()["state"] == "issued", issued.text
    exported = await auditor.client.get(export)
    assert exported.status_code == 200 and exported.text.startswith("signal_id,"), exported.text
    changed = await admin.client.post(
        f"/api/admin/grants/{grant}/change", json={"reason": "调取延期", "days": 2}
    )
    assert changed.status_code == 200 and changed.json()["changes"] == 1, changed.text
    assert (await auditor.client.get(export)).status_code == 200
    revoked = await admin.client.post(
        f"/api/admin/grants/{grant}/revoke", json={"reason": "调取完毕"}
    )
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert (await auditor.client.get(export)).status_code == 403
    steps = await centre.admin.fetch(
        "SELECT action, actor FROM audit_log WHERE subject = $1 ORDER BY chain_seq",
        f"grant:{grant}",
    )
    assert [(r["action"], r["actor"]) for r in steps] == [
        ("grant.apply", "supervisor"),
        ("grant.approve", "admin"),
        ("grant.issue", "admin"),
        ("grant.change", "admin"),
        ("grant.revoke", "admin"),
    ]

    # Nobody approves their own application: the refusal names the rule.
    own = await admin.client.post(
        "/api/admin/grants",
        json={
            "username": "auditor",
            "permission": "records.export",
            "scope": "account:1234",
            "reason": "抽查",
            "days": 1,
        },
    )
    assert own.status_code == 200, own.text
    refused = await admin.client.post(
        f"/api/admin/grants/{own.json()['grant_id']}/approve", json={"reason": "自批"}
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["rule"] == "separation" and "R5" in refused.json()["error"]
    never = await admin.client.post(
        "/api/admin/grants",
        json={"username": "auditor", "permission": "users.manage", "reason": "x", "days": 1},
    )
    assert never.status_code == 409 and never.json()["rule"] == "permission"
    page = await admin.client.get("/admin/users")
    assert (
        page.status_code == 200
        and f"/api/admin/grants/{own.json()['grant_id']}/approve" in page.text
    )


async def test_an_administrator_manages_users(centre: Centre) -> None:
    admin = await centre.login(Role.ADMIN)
    post = admin.client.post
    weak = await post(
        "/api/admin/users",
        json={"username": "wang", "role": "operator", "password": "short1"},
    )
    assert weak.status_code == 422 and weak.json()["rule"] == "密码策略 password policy: length"
    added = await post(
        "/api/admin/users",
        json={
            "username": "wang",
            "display_name": "王值守",
            "role": "operator",
            "password": GOOD_PASSWORD,
        },
    )
    assert added.status_code == 200, added.text
    assert added.json()["role"] == "operator"
    taken = await post(
        "/api/admin/users",
        json={"username": "wang", "role": "operator", "password": GOOD_PASSWORD},
    )
    assert taken.status_code == 409
    wang = centre.client()
    login = {"username": "wang", "password": GOOD_PASSWORD}
    assert (await wang.post("/login", data=login)).status_code == 303
    assert (await wang.get("/api/me")).status_code == 200

    disabled = await post("/api/admin/users/wang/disable", json={})
    assert disabled.status_code == 200 and disabled.json()["disabled"]
    assert (await wang.get("/api/me")).status_code == 401  # the session ended with it
    assert (await post("/api/admin/users/wang/enable", json={})).json()["disabled"] is False
    new_password = GOOD_PASSWORD + "-2"
    changed = await post("/api/admin/users/wang/password", json={"password": new_password})
    assert changed.status_code == 200, changed.text
    assert (await post("/api/admin/users/nobody/disable", json={})).status_code == 404
    again = centre.client()
    assert (
        await again.post("/login", data={"username": "wang", "password": new_password})
    ).status_code == 303

    rows = await centre.admin.fetch(
        "SELECT action, actor, details::text AS details FROM audit_log"
        " WHERE subject = 'user:wang' ORDER BY chain_seq"
    )
    assert [(r["action"], r["actor"]) for r in rows] == [
        ("user.add", "admin"),
        ("user.disable", "admin"),
        ("user.enable", "admin"),
        ("user.password", "admin"),
    ]
    for text in [r["details"] for r in rows] + [weak.text, added.text, changed.text]:
        assert GOOD_PASSWORD not in text and "short1" not in text


async def test_arc_config_cannot_touch_the_records(database_url: str) -> None:
    owner = await db.connect(database_url)
    await db.migrate(conn=owner)
    await owner.execute(f"ALTER ROLE arc_config LOGIN PASSWORD '{CONFIG_PASSWORD}'")
    await owner.close()
    dsn = with_credentials(SecretStr(database_url), "arc_config", CONFIG_PASSWORD)
    conn = await db.connect(dsn)
    try:
        refused = [
            "UPDATE signal_log SET account = 'x'",
            "DELETE FROM signal_log",
            "UPDATE incident_log SET actor = 'x'",
            "DELETE FROM incident_log",
            "UPDATE access_audit SET actor = 'x'",
            "DELETE FROM access_audit",
            "INSERT INTO access_audit (chain_seq) VALUES (1)",
            "SELECT count(*) FROM signal_log",
            "SELECT details FROM audit_log",  # the head only, for the chain
            "DELETE FROM audit_log",
            "SELECT password_hash FROM users",
            "UPDATE users SET role = 'admin'",
            "SELECT token_hash FROM sessions",
            "DELETE FROM accounts",
            "DELETE FROM staff",
        ]
        for sql in refused:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        # What it is for: reading the audit chain's head, writing configuration.
        await conn.fetch("SELECT shard, chain_seq, hash FROM audit_log")
        await conn.execute("UPDATE storm_modes SET stop_reason = stop_reason WHERE false")
    finally:
        await conn.close()


async def test_without_the_config_role_the_console_changes_nothing(database_url: str) -> None:
    owner = await db.connect(database_url)
    await db.migrate(conn=owner)
    await owner.execute(f"ALTER ROLE arc_app LOGIN PASSWORD '{APP_PASSWORD}'")
    await _seed(owner)
    await owner.close()
    app_dsn = with_credentials(SecretStr(database_url), "arc_app", APP_PASSWORD)
    settings = Settings(database_url=app_dsn, master_key=SecretStr("m" * 40))
    pool = await db.create_pool(app_dsn, max_size=2)
    state = Console(
        settings=settings,
        pool=pool,
        commands=None,
        clock=lambda: datetime.now(UTC),
        session_ttl=timedelta(hours=1),
        totp_box=totp_box(settings.master_key),
        live=None,
    )
    transport = httpx.ASGITransport(app=create_app(state))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            login = {"username": "supervisor", "password": PASSWORD}
            assert (await client.post("/login", data=login)).status_code == 303
            client.headers["X-CSRF-Token"] = (await client.get("/api/me")).json()["csrf"]
            reply = await client.post(
                "/api/admin/storms",
                json={"event_class": "trouble", "mode": "log", "minutes": 5, "reason": "停电"},
            )
            assert reply.status_code == 503
            assert "ARC_CONFIG_DATABASE_URL" in reply.json()["error"]
            # Permissions first: the same refusal with or without the role.
            assert (await client.post("/api/admin/users", json={})).status_code == 403
    finally:
        await pool.close()
