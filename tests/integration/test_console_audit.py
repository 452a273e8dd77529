"""What auditors and operators read about the centre's use of records and rules, in the console.

The centre of ``test_console``: the access audit page (REGULATION R5) as an
auditor reads it after an operator's reads, with its filters and pages, each
view itself recorded; and an account's page showing the overrides, plans and
open hours that apply to it.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from arc.auth import access
from arc.auth.models import Role
from arc.dispatch import rules_store
from arc.dispatch.plans import PlanStep, StepKind
from arc.model import BEIJING
from tests.integration.test_console import ACCOUNT, Centre, _incident, centre

pytestmark = [pytest.mark.integration, pytest.mark.asyncio, pytest.mark.timeout(120)]
__all__ = ["centre"]  # the fixture, shared with test_console

# One row of the page's table: chain_seq, at, actor, role, action, subject, peer, details.
_ROW = re.compile(
    r"<tr><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>"
    r"<td>([^<]*)</td><td>([^<]*)</td><td class=\"details\">([^<]*)</td></tr>"
)


def _rows(text: str) -> list[dict[str, str]]:
    names = ("seq", "at", "actor", "role", "action", "subject", "peer", "details")
    return [
        dict(zip(names, (html.unescape(v) for v in m.groups()), strict=True))
        for m in _ROW.finditer(text)
    ]


async def _own_reads(centre: Centre) -> int:
    count: int = await centre.admin.fetchval(
        "SELECT count(*) FROM access_audit WHERE actor = 'auditor' AND subject = '/audit/access'"
    )
    return count


async def test_an_auditor_reads_the_access_audit(centre: Centre) -> None:
    await centre.alarm("NBA01")
    incident_id = await _incident(centre)
    operator = await centre.login(Role.OPERATOR)
    assert (await operator.client.get(f"/incidents/{incident_id}")).status_code == 200
    auditor = await centre.login(Role.AUDITOR)
    assert 'href="/audit/access"' in (await auditor.client.get("/queue")).text  # the nav link
    assert 'href="/audit/access"' not in (await operator.client.get("/queue")).text

    page = await auditor.client.get("/audit/access")
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    rows = _rows(page.text)
    # Newest first, and the newest is this very read: it was recorded before the listing.
    assert [int(r["seq"]) for r in rows] == sorted((int(r["seq"]) for r in rows), reverse=True)
    assert (rows[0]["actor"], rows[0]["subject"], rows[0]["action"]) == (
        "auditor",
        "/audit/access",
        "查看",
    )
    assert await _own_reads(centre) == 1
    read = [r for r in rows if r["subject"] == "/incidents/{incident_id}"]
    assert [(r["actor"], r["role"]) for r in read] == [("operator", "operator")]
    assert f"/incidents/{incident_id}" in read[0]["details"]
    assert read[0]["peer"] == "127.0.0.1"

    # By actor and action: only the operator's reads, and the auditor's own view still recorded.
    mine = _rows((await auditor.client.get("/audit/access?actor=operator&action=read")).text)
    assert mine and {r["actor"] for r in mine} == {"operator"}
    assert any(r["subject"] == "/incidents/{incident_id}" for r in mine)
    assert await _own_reads(centre) == 2
    stream = await auditor.client.get(
        "/audit/access", params={"actor": "operator", "action": "stream"}
    )
    assert stream.status_code == 200 and _rows(stream.text) == []
    # A time range typed as the form sends it: Beijing time, no zone; empty fields are no filter.
    now = datetime.now(BEIJING)
    hour_ago = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    later = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    recent = await auditor.client.get(
        "/audit/access", params={"since": hour_ago, "until": "", "actor": "operator", "action": ""}
    )
    assert recent.status_code == 200, recent.text
    assert [r["seq"] for r in _rows(recent.text)] == [r["seq"] for r in mine]
    assert f'value="{hour_ago}"' in recent.text  # the filter is shown back as typed
    none = await auditor.client.get("/audit/access", params={"since": later})
    assert none.status_code == 200 and _rows(none.text) == [] and "没有符合条件的记录" in none.text
    # A refused filter reads nothing, so it leaves no row either.
    before = await _own_reads(centre)
    assert (await auditor.client.get("/audit/access?action=delete")).status_code == 422
    assert (await auditor.client.get("/audit/access?since=yesterday")).status_code == 422
    assert await _own_reads(centre) == before
    english = await auditor.client.get("/audit/access?lang=en")
    assert "Access audit" in english.text and ">read<" in english.text


async def test_the_access_audit_pages_back(centre: Centre) -> None:
    async with centre.admin.transaction():
        for n in range(130):
            await access.record_access(
                conn=centre.admin,
                actor="cli:root",
                role="cli",
                action="read",
                subject="signal_log",
                details={"n": n},
                peer=None,
            )
    auditor = await centre.login(Role.AUDITOR)
    first = await auditor.client.get("/audit/access", params={"actor": "cli:root"})
    rows = _rows(first.text)
    assert len(rows) == 100
    older = re.search(r'<a id="older" href="\?([^"]+)"', first.text)
    assert older is not None
    query = parse_qs(urlsplit("?" + html.unescape(older[1])).query)
    assert query["actor"] == ["cli:root"] and query["before"] == [rows[-1]["seq"]]
    second = await auditor.client.get("/audit/access", params={k: v[0] for k, v in query.items()})
    rest = _rows(second.text)
    assert len(rest) == 30 and 'id="older"' not in second.text and 'id="newest"' in second.text
    seqs = [int(r["seq"]) for r in rows + rest]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 130
    assert [r["details"] for r in (rows + rest)[::129]] == ['{"n":129}', '{"n":0}']


async def test_the_account_page_shows_the_rules_and_hours_that_apply(centre: Centre) -> None:
    operator = await centre.login(Role.OPERATOR)
    bare = await operator.client.get(f"/accounts/{ACCOUNT}")
    assert bare.status_code == 200, bare.text
    assert "无本中心覆盖" in bare.text and "未设置营业时间" in bare.text

    await rules_store.set_override(
        conn=centre.admin,
        match="SIA:BA",
        grade=1,
        account=ACCOUNT,
        reason="银行网点",
        actor="supervisor",
    )
    await rules_store.set_override(
        conn=centre.admin, match="SIA:BA", grade=2, reason="全局盗警二级", actor="supervisor"
    )
    await rules_store.set_override(
        conn=centre.admin, match="SIA:FA", grade=1, reason="火警一律一级", actor="supervisor"
    )
    await rules_store.set_plan(
        conn=centre.admin,
        event_class="burglary",
        account=ACCOUNT,
        steps=[PlanStep(StepKind.DISPATCH_GUARD, timedelta(seconds=300))],
        reason="先派保安",
        actor="supervisor",
    )
    supervisor = await centre.login(Role.SUPERVISOR)
    hours = await supervisor.client.post(
        f"/api/admin/accounts/{ACCOUNT}/schedule", json={"lines": ["mon-fri 08:00-18:00"]}
    )
    assert hours.status_code == 200, hours.text

    page = await operator.client.get(f"/accounts/{ACCOUNT}")
    assert page.status_code == 200, page.text
    section = page.text[page.text.index('id="account-overrides"') :]
    section = section[: section.index("</table>")]
    rows = [html.unescape(re.sub(r"<[^>]+>", " ", r)) for r in section.split("<tr")[2:]]
    # This account's own first; the global one it replaces is marked so; the other applies.
    assert "本用户" in rows[0] and "SIA:BA" in rows[0] and "银行网点" in rows[0]
    assert "全局" in rows[1] and "全局盗警二级" in rows[1]
    assert "superseded" in section and "不适用：本用户另有规则" in rows[2]
    assert "全局" in rows[3] and "SIA:FA" in rows[3] and "火警一律一级" in rows[3]
    assert "先派保安" in page.text and "派遣巡逻保安" in page.text
    assert "周一" in page.text and "08:00-18:00" in page.text and "全天不营业" in page.text
    english = await operator.client.get(f"/accounts/{ACCOUNT}?lang=en")
    assert "Monday" in english.text and "Does not apply: this account has its own" in english.text
