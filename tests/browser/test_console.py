"""The console in a real headless Chromium, as a duty operator and a patrol guard use it.

``arc up --demo`` runs as a user starts it (a process tree with the embedded
PostgreSQL and broker); a simulated panel sends a burglary over DC-09 TCP; the
operator logs in with the login ``arc up`` printed, sees the alarm arrive in
the live queue, takes it, works the plan, dispatches the proposed guard; the
guard on a phone-sized page accepts, arrives, reports with a photo and clears
the site; the operator closes it. Each page's screenshot is kept under
``test-artifacts/screenshots/`` (CI keeps them with the run).

Chromium is Debian's (``make test`` installs it); without it this fails.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.integration.up_helpers import (
    HOST,
    LINES,
    ROOT,
    ArcUp,
    Endpoints,
    arc_env,
    check_ack,
    new_data_dir,
    plain_frame,
    tcp_exchange,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.asyncio,
    pytest.mark.timeout(240),
]

CHROMIUM = Path(os.environ.get("ARC_TEST_CHROMIUM", "/usr/bin/chromium"))
SHOTS = ROOT / "test-artifacts" / "screenshots"
APPEARS_WITHIN_S = 1.0  # the issue: the alarm is in the queue within a second
ACCOUNT = "1234"


@pytest_asyncio.fixture
async def centre(scratch_dir: Path) -> AsyncIterator[tuple[ArcUp, Endpoints]]:
    data_dir = new_data_dir(scratch_dir)
    up = ArcUp(data_dir, "--demo", "--dc09-port", "0", "--http-port", "0", env=arc_env())
    await up.start()
    try:
        yield up, await up.ready(within=90)
    finally:
        await up.terminate(within=30)
        await up.close()


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser` (make test does)")
    async with async_playwright() as playwright:
        # Chromium's sandbox needs an unprivileged user; CI runs as root.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield launched
        finally:
            await launched.close()


async def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def _login(
    browser: Browser, url: str, username: str, password: str, *, phone: bool = False
) -> Page:
    context = await browser.new_context(
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 390, "height": 844} if phone else {"width": 1440, "height": 900},
        # The guard's phone shares its position (the page reports it for the proposal).
        geolocation={"latitude": 39.9087, "longitude": 116.4605} if phone else None,
        permissions=["geolocation"] if phone else [],
    )
    page = await context.new_page()
    await page.goto(url + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    return page


async def test_an_operator_and_a_guard_work_an_alarm_to_its_close(
    centre: tuple[ArcUp, Endpoints], browser: Browser
) -> None:
    up, endpoints = centre
    logins: dict[str, str] = {}
    for line in endpoints.lines:
        if (found := LINES["demo_login"].fullmatch(line)) is not None:
            logins[found[1]] = found[2]
    assert {"operator", "supervisor", "guard", "guard2"} <= set(logins), endpoints.lines
    url, port = f"http://{HOST}:{endpoints.http_port}", endpoints.tcp_port

    operator = await _login(browser, url, "operator", logins["operator"])
    await expect(operator).to_have_url(re.compile(r"/queue$"))
    await expect(operator.locator("#live-state")).to_have_attribute("data-state", "live")
    await _shot(operator, "1-queue-empty")

    # A panel's burglary: from its ACK to the row in the operator's queue.
    zone = f"{uuid.uuid4().int % 900 + 100}"
    reply = await tcp_exchange(port, plain_frame(1, ACCOUNT, f"NBA{zone}", datetime.now(UTC)))
    acked = time.monotonic()
    check_ack(reply, 1, ACCOUNT)
    row = operator.locator("#queue-rows tr", has_text=ACCOUNT)
    await expect(row).to_be_visible(timeout=APPEARS_WITHIN_S * 1000)
    appeared = time.monotonic() - acked
    assert appeared <= APPEARS_WITHIN_S, appeared
    await expect(row).to_have_class(re.compile("grade-[12].*alert"))
    await _shot(operator, "2-queue-alarm")

    await row.locator("a").click()
    await expect(operator.locator("#incident")).to_be_visible()
    await operator.click("#take")
    await expect(operator.locator("#incident-status")).to_have_attribute(
        "data-status", "acknowledged"
    )
    await expect(operator.locator(".keyholders li").first).to_contain_text("1")
    await _shot(operator, "3-incident-taken")

    # The plan's steps as a checklist: call the keyholders, then send the guard.
    call = operator.locator("li.step[data-kind=call_keyholders] form.step-done")
    await call.locator("input").fill("王芳: 接通，店内无人")
    await call.locator("button").click()
    await expect(operator.locator("li.step[data-kind=call_keyholders]")).to_have_class(
        re.compile("done")
    )
    await expect(operator.locator("#guard-choice option").first).not_to_have_text("…")
    await operator.click("#dispatch")
    await expect(operator.locator("#incident-status")).to_have_attribute(
        "data-status", "dispatched"
    )
    await _shot(operator, "4-guard-dispatched")

    # The demo has a day and a night guard on this beat: the one sent is on shift.
    guard = None
    for name in ("guard", "guard2"):
        guard = await _login(browser, url, name, logins[name], phone=True)
        await expect(guard).to_have_url(re.compile(r"/guard$"))
        if await guard.locator("article.assignment", has_text=ACCOUNT).count():
            break
    assert guard is not None
    card = guard.locator("article.assignment", has_text=ACCOUNT)
    # Each step reloads the guard's page once it is recorded: wait for that.
    async with guard.expect_navigation():
        await card.locator("button[data-action=accept]").click()
    async with guard.expect_navigation():
        await card.locator("button[data-action=arrive]").click()
    await expect(card).to_have_attribute("data-status", "on_site")
    # The guard's clocks: accepting and arriving stopped theirs, clearing runs on.
    await expect(card.locator(".clock[data-leg=accept]")).not_to_have_class(re.compile("running"))
    await expect(card.locator(".clock[data-leg=clear]")).to_have_class(re.compile("running"))
    # The operator's page follows by itself (the live stream), no reload.
    status = operator.locator("#incident-status")
    await expect(status).to_have_attribute("data-status", "on_site", timeout=5000)
    await card.locator("textarea[name=text]").fill("后门被撬，现场无人，已拍照")
    await card.locator("input[type=file]").set_input_files(
        {"name": "door.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff" + os.urandom(512)}
    )
    async with guard.expect_navigation():
        await card.locator("form.report button").click()
    await _shot(guard, "5-guard-on-site")
    async with guard.expect_navigation():
        await card.locator("button[data-action=clear]").click()
    await expect(guard.locator(".empty")).to_be_visible()

    await expect(status).to_have_attribute("data-status", "resolved", timeout=5000)
    await expect(operator.locator(".log")).to_contain_text("guard_report")
    await operator.select_option("#resolution", "real_alarm")
    await operator.click("#close")
    await expect(operator.locator("#incident-status")).to_have_attribute("data-status", "closed")
    await _shot(operator, "6-incident-closed")

    await operator.goto(url + "/queue")
    await expect(operator.locator("#queue-rows tr", has_text=ACCOUNT)).to_have_count(0)

    # English on request; the account page with its history.
    await operator.goto(url + f"/lang/en?next=/accounts/{ACCOUNT}")
    await expect(operator.locator("h1")).to_contain_text("Account")
    await expect(operator.locator("#signal-rows tr").first).to_contain_text("BA")
    await _shot(operator, "7-account-en")
