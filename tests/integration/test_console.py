"""The console over real HTTP: every route × every role, the operator's and the guard's work.

The receiver, log writer, dispatcher and console run in this process against
the embedded PostgreSQL and broker; people log in with real passwords and
cookies, panels send real DC-09 frames, and what the console answers is
checked against the database (``access_audit``, ``incident_log``,
``guard_photos``).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from pydantic import SecretStr

from arc import db
from arc.auth import grants
from arc.auth import service as users
from arc.auth.models import Permission, Role
from arc.config import Settings
from arc.console.app import create_app
from arc.console.service import run_console
from arc.dispatch.service import run_dispatcher
from arc.ingest.service import run_receiver
from arc.integrity.verify import verify
from arc.logwriter.service import run_logwriter
from arc.runtime import with_credentials
from tests.integration.up_helpers import check_ack, plain_frame, tcp_exchange

pytestmark = [pytest.mark.integration, pytest.mark.asyncio, pytest.mark.timeout(150)]

APP_PASSWORD = "app-test-password"  # noqa: S105 - a test database's role
CONFIG_PASSWORD = "config-test-password"  # noqa: S105 - the console's configuration role
PASSWORD = "Correct-Horse-7-Battery"  # noqa: S105 - the test users' password
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
GUARD_ID = uuid.uuid4()
ACCOUNT = "1234"
ROLES = tuple(Role)
NOBODY_ID = uuid.UUID(int=0)  # no grant, no member of staff


@dataclass
class Centre:
    url: str
    admin: asyncpg.Connection[asyncpg.Record]
    port: int
    sequence: list[int] = field(default_factory=lambda: [0])
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, **options: Any) -> httpx.AsyncClient:
        """An HTTP client of the console, closed when the test ends however it ends."""
        made = httpx.AsyncClient(base_url=self.url, timeout=20, **options)
        self.clients.append(made)
        return made

    async def alarm(self, data: str, account: str = ACCOUNT) -> None:
        self.sequence[0] += 1
        seq = self.sequence[0]
        now = datetime.now(UTC)
        check_ack(await tcp_exchange(self.port, plain_frame(seq, account, data, now)), seq, account)

    async def wait_for(self, sql: str, *args: object, within: float = 15) -> list[asyncpg.Record]:
        async with asyncio.timeout(within):
            while True:
                rows = await self.admin.fetch(sql, *args)
                if rows:
                    return rows
                await asyncio.sleep(0.05)

    async def login(self, role: Role) -> Person:
        client = self.client()
        reply = await client.post("/login", data={"username": role.value, "password": PASSWORD})
        assert reply.status_code == 303, reply.text
        me = (await client.get("/api/me")).json()
        client.headers["X-CSRF-Token"] = me["csrf"]
        return Person(role, client)


@dataclass
class Person:
    role: Role
    client: httpx.AsyncClient

    async def work(self, incident_id: str, kind: str, **details: Any) -> httpx.Response:
        return await self.client.post(
            f"/api/incidents/{incident_id}/work", json={"kind": kind, "details": details}
        )


async def _wait_line(lines: list[str], prefix: str, tasks: list[asyncio.Task[None]]) -> str:
    async with asyncio.timeout(60):
        while True:
            for line in lines:
                if line.startswith(prefix):
                    return line
            for task in tasks:
                if task.done():
                    task.result()
            await asyncio.sleep(0.05)


async def _seed(admin: asyncpg.Connection[asyncpg.Record]) -> None:
    await admin.execute("INSERT INTO accounts (account, name) VALUES ($1, '朝阳便利店')", ACCOUNT)
    await admin.execute(
        "INSERT INTO account_sites (account, address, latitude, longitude, beat)"
        " VALUES ($1, '北京市朝阳区建国路1号', 39.9087, 116.4605, '朝阳-国贸')",
        ACCOUNT,
    )
    await admin.execute(
        "INSERT INTO account_keyholders (account, position, name, phone, relation) VALUES"
        " ($1, 1, '王芳', '13800138000', '店长'), ($1, 2, '刘洋', '13900139000', '店员')",
        ACCOUNT,
    )
    await admin.execute(
        "INSERT INTO staff (staff_id, name, category, certificate_no, certificate_expires,"
        " exam_passed_on, trained_on, date_of_birth, beat, shift_start, shift_end,"
        " latitude, longitude, position_at) VALUES"
        " ($1, '张伟', 'patrol_response', '京A12345678', '2099-01-01', '2020-01-01',"
        "  '2020-02-01', '1990-05-01', '朝阳-国贸', '00:00', '00:00', 39.91, 116.46, now())",
        GUARD_ID,
    )
    for role in ROLES:
        await users.add_user(
            conn=admin,
            username=role.value,
            display_name=f"测试{role.value}",
            role=role,
            password=PASSWORD,
            actor="test",
            staff_id=GUARD_ID if role is Role.GUARD else None,
            hasher=FAST,
        )


@pytest_asyncio.fixture
async def centre(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Centre]:
    admin = await db.connect(database_url)
    await db.migrate(conn=admin)
    await admin.execute(f"ALTER ROLE arc_app LOGIN PASSWORD '{APP_PASSWORD}'")
    await admin.execute(f"ALTER ROLE arc_config LOGIN PASSWORD '{CONFIG_PASSWORD}'")
    await _seed(admin)
    settings = Settings(
        database_url=with_credentials(SecretStr(database_url), "arc_app", APP_PASSWORD),
        config_database_url=with_credentials(
            SecretStr(database_url), "arc_config", CONFIG_PASSWORD
        ),
        kafka_bootstrap=kafka_bootstrap,
        ack_policy="database",  # type: ignore[arg-type]  # validated by pydantic
        dc09_port=0,
        http_port=0,
        master_key=SecretStr("m" * 40),
        ack_timeout=10,
    )
    prefix = f"test.{uuid.uuid4().hex[:10]}."
    lines: list[str] = []
    stop = asyncio.Event()
    services: list[Callable[..., Coroutine[Any, Any, None]]] = [run_logwriter, run_receiver]
    tasks: list[asyncio.Task[None]] = [
        asyncio.create_task(run(settings, stop, announce=lines.append, topic_prefix=prefix))
        for run in services
    ]
    tasks.append(
        asyncio.create_task(
            run_dispatcher(
                settings, stop, announce=lines.append, topic_prefix=prefix, all_partitions=True
            )
        )
    )
    tasks.append(
        asyncio.create_task(run_console(settings, stop, announce=lines.append, topic_prefix=prefix))
    )
    try:
        for prefix_line in ("logwriter:", "dispatcher:"):
            await _wait_line(lines, prefix_line, tasks)
        dc09 = re.search(r"tcp://[\d.]+:(\d+)", await _wait_line(lines, "dc09:", tasks))
        http = re.search(r"http://[\d.]+:\d+", await _wait_line(lines, "http:", tasks))
        assert dc09 is not None and http is not None
        made = Centre(http[0], admin, int(dc09[1]))
        try:
            yield made
        finally:
            for client in made.clients:
                await client.aclose()
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await asyncio.gather(*tasks, return_exceptions=True)
        await admin.close()


async def _incident(centre: Centre, event_class: str = "burglary") -> str:
    rows = await centre.wait_for(
        "SELECT incident_id FROM incidents WHERE account = $1 AND event_class = $2",
        ACCOUNT,
        event_class,
    )
    return str(rows[0]["incident_id"])


async def _audit_rows(centre: Centre, actor: str) -> int:
    count: int = await centre.admin.fetchval(
        "SELECT count(*) FROM access_audit WHERE actor = $1", actor
    )
    return count


# -- every route × every role ------------------------------------------------------------

R = Role
WORKERS = {R.OPERATOR, R.SUPERVISOR}
READERS = {R.OPERATOR, R.SUPERVISOR, R.AUDITOR}
SUPERVISORS = {R.SUPERVISOR, R.ADMIN, R.AUDITOR}  # staffing.read
EVERYONE = set(ROLES)

# (method, route) → who may; "audited": an allowed call writes one access_audit row.
MATRIX: dict[tuple[str, str], tuple[set[Role], bool]] = {
    ("GET", "/login"): (EVERYONE, False),
    ("POST", "/login"): (EVERYONE, False),
    ("POST", "/logout"): (EVERYONE, False),
    ("GET", "/lang/{choice}"): (EVERYONE, False),
    ("GET", "/"): (EVERYONE, False),
    ("GET", "/queue"): (READERS, False),
    ("GET", "/incidents/{incident_id}"): (READERS, True),
    ("GET", "/accounts/{account}"): (READERS, True),
    ("GET", "/staffing"): (SUPERVISORS, False),
    ("GET", "/guard"): ({R.GUARD}, True),
    ("GET", "/supervisor/accounts"): ({R.SUPERVISOR}, False),
    ("GET", "/supervisor/staff"): ({R.OPERATOR, R.SUPERVISOR, R.ADMIN}, False),
    ("GET", "/supervisor/rules"): ({R.SUPERVISOR}, False),
    ("GET", "/admin/users"): ({R.ADMIN}, False),
    ("GET", "/audit/access"): ({R.AUDITOR}, True),  # audit.read; reading the audit is audited
    ("GET", "/api/queue"): (READERS, True),
    ("GET", "/api/queue/load"): (SUPERVISORS, True),
    ("GET", "/api/queue/stream"): (READERS, True),
    ("GET", "/api/incidents/{incident_id}"): (READERS, True),
    ("GET", "/api/incidents/{incident_id}/proposal"): (WORKERS, True),
    ("POST", "/api/incidents/{incident_id}/work"): (WORKERS, False),
    ("POST", "/api/incidents/{incident_id}/waive"): ({R.SUPERVISOR}, False),
    ("GET", "/api/accounts/{account}"): (READERS, True),
    ("GET", "/api/accounts/{account}/signals"): (READERS, True),
    ("GET", "/api/accounts/{account}/incidents"): (READERS, True),
    ("GET", "/api/accounts/{account}/signals.csv"): (set(), True),  # by grant only
    ("GET", "/api/staffing"): (SUPERVISORS, False),
    ("GET", "/api/me"): (EVERYONE, False),
    ("POST", "/api/guard/incidents/{incident_id}/{action}"): ({R.GUARD}, False),
    ("POST", "/api/guard/incidents/{incident_id}/report"): ({R.GUARD}, False),
    ("POST", "/api/guard/position"): ({R.GUARD}, False),
    # Configuration changes (arc_config): bodies are {} (422), or ids nobody has (404).
    ("POST", "/api/admin/storms"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/storms/stop"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/overrides"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/overrides/remove"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/plans"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/plans/remove"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/grants"): ({R.SUPERVISOR, R.ADMIN}, False),
    ("POST", "/api/admin/grants/{grant_id}/approve"): ({R.ADMIN}, False),
    ("POST", "/api/admin/grants/{grant_id}/reject"): ({R.ADMIN}, False),
    ("POST", "/api/admin/grants/{grant_id}/issue"): ({R.ADMIN}, False),
    ("POST", "/api/admin/grants/{grant_id}/change"): ({R.ADMIN}, False),
    ("POST", "/api/admin/grants/{grant_id}/revoke"): ({R.ADMIN}, False),
    ("POST", "/api/admin/users"): ({R.ADMIN}, False),
    ("POST", "/api/admin/users/{username}/disable"): ({R.ADMIN}, False),
    ("POST", "/api/admin/users/{username}/enable"): ({R.ADMIN}, False),
    ("POST", "/api/admin/users/{username}/password"): ({R.ADMIN}, False),
    ("POST", "/api/admin/accounts"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/accounts/{account}/link-test"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/accounts/{account}/site"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/accounts/{account}/zones"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/accounts/{account}/zones/{zone}/remove"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/accounts/{account}/keyholders"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/accounts/{account}/schedule"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/staff"): ({R.SUPERVISOR}, False),
    ("POST", "/api/admin/staff/{staff_id}/qualification"): ({R.SUPERVISOR}, False),
}
# Reachable without a session: the login page itself and the language switch.
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/lang/{choice}")}


async def test_the_matrix_names_every_route() -> None:
    app = create_app(None)  # type: ignore[arg-type]  # routes only: nothing is served
    paths = app.openapi()["paths"]
    routes = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert routes == set(MATRIX)


def _call(method: str, route: str, incident_id: str) -> tuple[str, str, dict[str, Any]]:
    path = route.format(
        incident_id=incident_id,
        account=ACCOUNT,
        choice="en",
        action="note",
        grant_id=NOBODY_ID,
        username="nobody",
        zone="99",
        staff_id=NOBODY_ID,
    )
    body: dict[str, Any] = {}
    if route.startswith("/api/admin/"):
        # Harmless either way: {} is incomplete for most (422); the rest name nothing (404)
        # or zone 99, which account 1234 does not have (200, nothing changed).
        body = {"json": {}}
    elif route.endswith("/work"):
        body = {"json": {"kind": "note", "details": {"text": "matrix"}}}
    elif route.endswith("/waive"):
        body = {"json": {"step": 99, "reason": "matrix"}}
    elif route.endswith("/position"):
        body = {"json": {"latitude": 39.9, "longitude": 116.4}}
    elif route.endswith("/report"):
        body = {"data": {"text": "matrix"}}
    elif route == "/login":
        body = {"data": {"username": "nobody", "password": "wrong-password-1"}}
    if route.endswith("/{action}"):
        path = route.format(incident_id=incident_id, action="accept")
    return method, path, body


async def _request(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]
) -> tuple[int, str]:
    """The status and text of one call (of a live stream: its head only, it never ends)."""
    if path.endswith("/stream"):
        async with client.stream(method, path) as reply:
            if reply.status_code == 200:
                return 200, ""
            return reply.status_code, (await reply.aread()).decode()
    reply = await client.request(method, path, **body)
    return reply.status_code, reply.text


async def test_every_route_for_every_role(centre: Centre) -> None:
    await centre.alarm("NBA01")
    incident_id = await _incident(centre)
    anonymous = centre.client()
    for method, route in MATRIX:
        if (method, route) in PUBLIC or route == "/logout":
            continue
        status, _ = await _request(anonymous, *_call(method, route, incident_id))
        expected = 401 if route.startswith("/api/") else 303
        assert status == expected, (method, route, status)
    for role in ROLES:
        person = await centre.login(role)
        for (method, route), (allowed, audited) in MATRIX.items():
            if route in ("/logout", "/login"):
                continue
            before = await _audit_rows(centre, role.value)
            status, text = await _request(person.client, *_call(method, route, incident_id))
            after = await _audit_rows(centre, role.value)
            where = (role.value, method, route, status, text[:200])
            if role in allowed:
                assert status not in (401, 403), where
                assert status < 500, where  # allowed, and served (a page that fails is no page)
                assert after - before == (1 if audited else 0), where
            else:
                assert status == 403, where
                assert "R5" in text, where  # the refusal names the rule
                assert after == before, where


# -- the operator's and the guard's work --------------------------------------------------


async def test_an_alarm_worked_from_queue_to_close(centre: Centre) -> None:
    operator = await centre.login(Role.OPERATOR)
    supervisor = await centre.login(Role.SUPERVISOR)
    guard = await centre.login(Role.GUARD)
    await centre.alarm("NBA01")
    incident_id = await _incident(centre)
    queue = (await operator.client.get("/api/queue")).json()
    assert [i["incident_id"] for i in queue["incidents"]] == [incident_id]
    assert queue["oldest_waiting_at"] is not None

    assert (await operator.work(incident_id, "acknowledge")).status_code == 200
    load = (await supervisor.client.get("/api/queue/load")).json()
    assert load["classes"] == [{"event_class": "burglary", "incidents": 1, "flood": False}]
    assert load["load"] == [{"actor": "operator", "taken": 1, "closed": 0}]
    taken = await supervisor.work(incident_id, "acknowledge")
    assert taken.status_code == 409 and "incident lifecycle" in taken.json()["rule"]

    detail = (await operator.client.get(f"/api/incidents/{incident_id}")).json()
    assert [k["name"] for k in detail["keyholders"]] == ["王芳", "刘洋"]
    # A call's outcome is a note; the step "call the keyholders" stays open (nobody answered).
    called = await operator.work(
        incident_id, "note", text="王芳 13800138000: 无人接听", call={"outcome": "no answer"}
    )
    assert called.status_code == 200

    proposal = (await operator.client.get(f"/api/incidents/{incident_id}/proposal")).json()
    assert proposal["proposals"][0]["staff_id"] == str(GUARD_ID)
    sent = await operator.work(incident_id, "dispatch", guard=str(GUARD_ID))
    assert sent.status_code == 200, sent.text

    # The guard's phone: accept, arrive, report with a photo, clear the site.
    assert (
        await guard.client.post(f"/api/guard/incidents/{incident_id}/arrive")
    ).status_code == 409
    assert (
        await guard.client.post(f"/api/guard/incidents/{incident_id}/accept")
    ).status_code == 200
    assert (
        await guard.client.post(f"/api/guard/incidents/{incident_id}/arrive")
    ).status_code == 200
    photo = b"\xff\xd8\xff\xe0" + uuid.uuid4().bytes * 64  # a JPEG's start, unique bytes
    reported = await guard.client.post(
        f"/api/guard/incidents/{incident_id}/report",
        data={"text": "后门被撬，无人在场"},
        files={"photos": ("door.jpg", photo, "image/jpeg")},
    )
    assert reported.status_code == 200, reported.text
    digest = hashlib.sha256(photo).hexdigest()
    logged = await centre.admin.fetchval(
        "SELECT details FROM incident_log WHERE incident_id = $1 AND kind = 'guard_report'",
        uuid.UUID(incident_id),
    )
    assert orjson.loads(logged)["photos"] == [digest]
    stored = await centre.admin.fetchval(
        "SELECT content FROM guard_photos WHERE sha256 = $1", digest
    )
    assert stored == photo
    assert (await guard.client.post(f"/api/guard/incidents/{incident_id}/clear")).status_code == 200

    # Closing waits for the plan's required steps; a supervisor waives one with a reason.
    refused = await operator.work(incident_id, "close", resolution="real_alarm")
    assert refused.status_code == 409 and "报警处置预案" in refused.json()["rule"]
    state = (await operator.client.get(f"/api/incidents/{incident_id}")).json()["incident"]
    pending = [
        i for i, s in enumerate(state["steps"]) if s["required"] and s["status"] == "pending"
    ]
    assert state["guard_dispatched_at"] <= state["guard_accepted_at"] <= state["guard_cleared_at"]
    # Dispatching was the plan's "dispatch a guard" step: only the calls are open.
    assert [state["steps"][i]["kind"] for i in pending] == ["call_keyholders"]
    for index in pending:
        waived = await supervisor.client.post(
            f"/api/incidents/{incident_id}/waive", json={"step": index, "reason": "警方已到场"}
        )
        assert waived.status_code == 200, waived.text
    closed = await operator.work(incident_id, "close", resolution="real_alarm")
    assert closed.status_code == 200, closed.text
    queue = (await operator.client.get("/api/queue")).json()
    assert queue["incidents"] == []
    kinds = [
        r["kind"]
        for r in await centre.admin.fetch(
            "SELECT kind FROM incident_log WHERE incident_id = $1 ORDER BY at, chain_seq",
            uuid.UUID(incident_id),
        )
    ]
    for kind in ("acknowledge", "dispatch", "guard_accept", "guard_arrive", "guard_report"):
        assert kind in kinds
    assert kinds[-1] == "close"
    report = await verify(conn=centre.admin, tables=["incident_log", "access_audit"])
    assert report.intact, report


async def test_the_live_stream_brings_a_new_alarm(centre: Centre) -> None:
    operator = await centre.login(Role.OPERATOR)
    events: list[dict[str, Any]] = []
    async with operator.client.stream("GET", "/api/queue/stream") as stream:
        assert stream.status_code == 200, await stream.aread()
        lines = stream.aiter_lines()
        async with asyncio.timeout(10):
            while (await anext(lines)) != "event: hello":
                pass
        await centre.alarm("NFA02")
        async with asyncio.timeout(10):
            async for line in lines:
                if line.startswith("data: ") and "fire" in line:
                    events.append(orjson.loads(line[6:]))
                    break
    assert events[0]["event_class"] == "fire" and events[0]["grade"] == 1


async def test_logout_ends_the_session_for_good(centre: Centre) -> None:
    operator = await centre.login(Role.OPERATOR)
    token = operator.client.cookies["arc_session"]
    assert (await operator.client.post("/logout")).status_code == 303
    replay = centre.client(cookies={"arc_session": token})
    assert (await replay.get("/api/me")).status_code == 401


async def test_a_change_without_the_csrf_token_is_refused(centre: Centre) -> None:
    await centre.alarm("NBA03")
    incident_id = await _incident(centre)
    operator = await centre.login(Role.OPERATOR)
    del operator.client.headers["X-CSRF-Token"]
    reply = await operator.work(incident_id, "acknowledge")
    assert reply.status_code == 403 and "CSRF" in reply.json()["rule"]


async def test_failed_logins_are_limited(centre: Centre) -> None:
    client = centre.client()
    async with asyncio.timeout(30):
        for _ in range(5):
            wrong = await client.post("/login", data={"username": "operator", "password": "nope"})
            assert wrong.status_code == 401
        right = await client.post("/login", data={"username": "operator", "password": PASSWORD})
    assert right.status_code == 401  # locked, even with the right password
    assert "arc_session" not in client.cookies


async def test_an_export_needs_an_issued_grant_and_is_audited_as_one(centre: Centre) -> None:
    await centre.alarm("NBA04")
    await _incident(centre)
    auditor = await centre.login(Role.AUDITOR)
    path = f"/api/accounts/{ACCOUNT}/signals.csv"
    refused = await auditor.client.get(path)
    assert refused.status_code == 403 and "records.export" in refused.text

    by = {u.username: u for u in await users.list_users(conn=centre.admin)}
    grant = await grants.apply_grant(
        conn=centre.admin,
        user_id=by["auditor"].user_id,
        permission=Permission.RECORDS_EXPORT,
        scope="*",
        reason="公安机关调取函 2026-118",
        valid_days=1,
        actor=by["supervisor"],
    )
    await grants.approve_grant(
        conn=centre.admin, grant_id=grant.grant_id, actor=by["admin"], reason="核验调取函"
    )
    assert (await auditor.client.get(path)).status_code == 403  # approved, not yet issued
    await grants.issue_grant(conn=centre.admin, grant_id=grant.grant_id, actor=by["admin"])

    exported = await auditor.client.get(path)
    assert exported.status_code == 200, exported.text
    header, *rows = exported.text.splitlines()
    assert header.startswith("signal_id,received_at,")
    assert any(",BA," in row for row in rows)
    audited = await centre.admin.fetch(
        "SELECT action, subject FROM access_audit WHERE actor = 'auditor' AND action = 'export'"
    )
    assert [(r["action"], r["subject"]) for r in audited] == [
        ("export", "/api/accounts/{account}/signals.csv")
    ]

    await grants.revoke_grant(
        conn=centre.admin, grant_id=grant.grant_id, actor=by["admin"], reason="调取完毕"
    )
    assert (await auditor.client.get(path)).status_code == 403


async def test_a_guards_phone_reports_where_the_guard_is(centre: Centre) -> None:
    await centre.alarm("NBA05")
    incident_id = await _incident(centre)
    guard = await centre.login(Role.GUARD)
    operator = await centre.login(Role.OPERATOR)
    far = {"latitude": 39.9537, "longitude": 116.4605}  # 5 km north of the site
    assert (await guard.client.post("/api/guard/position", json=far)).status_code == 200
    row = await centre.admin.fetchrow(
        "SELECT latitude, longitude, position_at FROM staff WHERE staff_id = $1", GUARD_ID
    )
    assert row is not None and (row["latitude"], row["longitude"]) == (39.9537, 116.4605)
    proposal = (await operator.client.get(f"/api/incidents/{incident_id}/proposal")).json()
    assert 4_900 <= proposal["proposals"][0]["distance_m"] <= 5_100
    nowhere = await guard.client.post("/api/guard/position", json={"latitude": 91, "longitude": 0})
    assert nowhere.status_code == 422


async def test_the_account_page_filters_with_the_empty_fields_a_browser_sends(
    centre: Centre,
) -> None:
    await centre.alarm("NBA06")
    await _incident(centre)
    operator = await centre.login(Role.OPERATOR)
    page = await operator.client.get(
        f"/accounts/{ACCOUNT}", params={"since": "", "until": "", "class": "burglary", "zone": ""}
    )
    assert page.status_code == 200 and "BA" in page.text
    bad = await operator.client.get(f"/accounts/{ACCOUNT}", params={"since": "yesterday"})
    assert bad.status_code == 422 and "since" in bad.text
