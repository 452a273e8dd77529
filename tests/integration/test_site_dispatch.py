"""The site's rules in the running dispatcher: two-technology confirmation and open hours.

The receiver, log writer and dispatcher of ``test_dispatch.centre`` run
against the embedded PostgreSQL and broker; frames go over loopback. The
open/close grace is 1 s here (``ARC_SCHEDULE_GRACE``), so deadlines come
within the test's time bounds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from arc.accounts import sites
from arc.accounts.models import Technology, ZoneIn
from arc.accounts.schedule import WEEKDAYS, parse_schedule
from arc.dispatch.open_close import DISARMED_TITLE, NOT_ARMED_TITLE
from arc.model import BEIJING
from tests.integration.test_dispatch import OPEN_INCIDENTS, Centre, centre  # noqa: F401

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(90),
    pytest.mark.usefixtures("short_schedule_grace"),
]

ACTOR = "test:admin"
SCHEDULE_GRACE = 1.0


@pytest.fixture
def short_schedule_grace(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Read by the centre fixture's Settings (usefixtures runs this one first).
    monkeypatch.setenv("ARC_SCHEDULE_GRACE", str(SCHEDULE_GRACE))
    yield


async def restart(centre: Centre) -> float:  # noqa: F811 - the fixture's name
    """Restart the dispatcher (it reads the rules and the shards afresh); return when it began."""
    await centre.stop_dispatcher()
    began = time.time()
    await centre.start_dispatcher()
    return began


def log_of(rows: list) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    return [(r["kind"], orjson.loads(r["details"])) for r in rows]


INCIDENT_LOG = "SELECT kind, details FROM incident_log WHERE incident_id = $1 ORDER BY chain_seq"


@pytest.mark.asyncio
async def test_two_technologies_confirm_and_a_disarm_outside_the_hours_opens_an_incident(
    centre: Centre,  # noqa: F811
) -> None:
    # One centre for both rules: starting one takes seconds, the rules are independent.
    for zone, technology in (("003", Technology.PIR), ("005", Technology.DOOR_CONTACT)):
        await sites.set_zone(
            conn=centre.admin,
            account="1234",
            zone=ZoneIn(zone=zone, technology=technology),
            actor=ACTOR,
        )
    await sites.set_schedule(
        conn=centre.admin, account="5678", schedule=parse_schedule(["daily closed"]), actor=ACTOR
    )
    await restart(centre)

    # A PIR and a door contact: a two-technology confirmation, and it says so.
    await centre.send("1234", "Nri1/BA003")
    await centre.wait_for(OPEN_INCIDENTS, "1234", "burglary")
    await centre.send("1234", "Nri1/BA005")
    (row,) = await centre.wait_for(OPEN_INCIDENTS + " AND confirmed", "1234", "burglary")
    assert row["grade"] == 1
    assert orjson.loads(row["state"])["confirmation"] == "two_technology"
    log = log_of(await centre.admin.fetch(INCIDENT_LOG, row["incident_id"]))
    kind, details = log[2]
    assert kind == "raise_grade" and details["confirmation"] == "two_technology"
    assert details["reason"] == (
        "双技术确认 two-technology confirmation: zones 003 (pir), 005 (door_contact)"
    )

    # User 2 disarms a site closed all day; arming again joins the incident.
    await centre.send("5678", "Nri1/OP002")
    (row,) = await centre.wait_for(OPEN_INCIDENTS, "5678", "open_close")
    assert (row["title"], row["grade"], row["status"]) == (DISARMED_TITLE, 3, "new")
    await centre.send("5678", "Nri1/CL002")
    (row,) = await centre.wait_for(OPEN_INCIDENTS + " AND restored", "5678", "open_close")
    ((_, opening), (join, joined)) = log_of(
        await centre.admin.fetch(INCIDENT_LOG, row["incident_id"])
    )
    assert opening["schedule"] == "disarmed_outside" and opening["user"] == "002"
    assert "closed 全天不营业" in opening["hours"]
    assert (join, joined["restore"], joined["code"]) == ("join", True, "SIA:CL")


@pytest.mark.asyncio
async def test_a_site_left_disarmed_past_closing_opens_not_armed_after_a_restart(
    centre: Centre,  # noqa: F811
) -> None:
    # Open all today, so that the disarm below is within the hours.
    today = datetime.now(UTC).astimezone(BEIJING)
    name = WEEKDAYS[today.weekday()]
    await sites.set_schedule(
        conn=centre.admin,
        account="1234",
        schedule=parse_schedule([f"{name} 00:00-24:00"]),
        actor=ACTOR,
    )
    await restart(centre)
    await centre.send("1234", "Nri1/OP001")
    await centre.wait_for(
        "SELECT 1 FROM site_state WHERE account = '1234'"
        " AND (state->'partitions'->'1'->>'armed')::boolean = false"
    )
    # The centre stops; meanwhile the premises closed (at the last full minute) with
    # the site disarmed since before: as if disarmed this morning and the day had passed.
    await centre.stop_dispatcher()
    closing = datetime.now(UTC).astimezone(BEIJING).replace(second=0, microsecond=0)
    day = (closing - timedelta(minutes=1)).replace(hour=0, minute=0)
    minutes = int((closing - day).total_seconds() // 60)
    await sites.set_schedule(
        conn=centre.admin,
        account="1234",
        schedule=parse_schedule(
            [f"{WEEKDAYS[day.weekday()]} 00:00-{minutes // 60:02d}:{minutes % 60:02d}"]
        ),
        actor=ACTOR,
    )
    morning = (closing - timedelta(hours=1)).isoformat()
    await centre.admin.execute(
        "UPDATE site_state SET state = jsonb_set(state, '{partitions,1,armed_changed_at}',"
        " to_jsonb($1::text)) WHERE account = '1234'",
        morning,
    )
    began = time.time()
    await centre.start_dispatcher()
    started = time.time()
    (row,) = await centre.wait_for(OPEN_INCIDENTS, "1234", "open_close", within=10)
    assert (row["title"], row["grade"]) == (NOT_ARMED_TITLE, 3)
    # Not before start + grace (panels get the grace to report), and soon after it.
    opened = row["opened_at"].timestamp()
    assert began + SCHEDULE_GRACE <= opened <= started + SCHEDULE_GRACE + 1.5
    ((_, opening),) = log_of(await centre.admin.fetch(INCIDENT_LOG, row["incident_id"]))
    assert opening["partitions"] == ["1"] and opening["closing"] == closing.isoformat()
    # Restarted again, the closing was handled: the same incident, not a second one.
    await restart(centre)
    await asyncio.sleep(SCHEDULE_GRACE + 1.5)  # past the deadline a restart would give it
    assert len(await centre.admin.fetch(OPEN_INCIDENTS, "1234", "open_close")) == 1
    await centre.send("1234", "Nri1/CL001")  # armed at last: shown on the incident
    (row,) = await centre.wait_for(OPEN_INCIDENTS + " AND restored", "1234", "open_close")
    assert len(await centre.admin.fetch(OPEN_INCIDENTS, "1234", "open_close")) == 1
