"""Visits in a real browser on a phone-sized screen: the carer checks in (with the phone's
location), opens the client's record, logs a task with a note for the office and checks out;
the office's package page shows the check-in, the note and the figures live; a visit left
unchecked raises the late alert on the admin's feed, live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from caretrack.care import service as care
from caretrack.care.models import Visit
from caretrack.care.schemas import PackageIn, TaskIn
from caretrack.care.service import rota, visit_alerts
from caretrack.care.visit_schemas import RotaEntryIn
from caretrack.core.queue import Runner
from caretrack.core.queue.registry import HANDLERS
from caretrack.core.roles import Role
from tests.browser.helpers import live_ready
from tests.browser.helpers import sign_in_page as sign_in
from tests.care.helpers import admin_user
from tests.helpers import make_user

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
# Sunday 29 March 2026, just after London's clocks went forward: 07:55 UTC is 08:55 BST.
START = datetime(2026, 3, 29, 7, 55, tzinfo=UTC)


async def phone(browser, **options):
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, **options)
    return await context.new_page()


async def test_a_carer_checks_in_and_out_the_office_sees_it_and_a_late_visit_is_flagged(live_server, browser):
    clock = {"now": START}
    live_server.app.state.clock = lambda: clock["now"]
    boss, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    uma = await make_user(Role.CARER, "uma@example.org", name="Uma Carer")
    home = await care.do_create_package(boss, PackageIn.model_validate({
        "client_name": "Mr Ted Client", "starts_on": "2020-01-01", "time_zone": "Europe/London",
        "allergies": "Penicillin", "access_notes": "Key safe 4321"}), None)
    other = await care.do_create_package(boss, PackageIn.model_validate({
        "client_name": "Mrs Nora Other", "starts_on": "2020-01-01", "time_zone": "Europe/London"}), None)
    await care.do_assign_carer(boss, home.id, cara.id, None)
    await care.do_assign_carer(boss, other.id, uma.id, None)
    for package_id, carer_id in ((home.id, cara.id), (other.id, uma.id)):
        await rota.do_add_visit(boss, package_id, RotaEntryIn.model_validate({
            "carer_id": carer_id, "weekdays": "1234567", "start": "09:00", "length": 30}), None, at=START)
    await care.do_create_task(boss, home.id, TaskIn.model_validate({
        "carer_id": cara.id, "title": "Medication prompt", "target": 1, "period": "day"}), None,
        at=START - timedelta(days=1))

    carer = await phone(browser, geolocation={"latitude": 51.5072, "longitude": -0.1276, "accuracy": 15},
                        permissions=["geolocation"])
    await sign_in(carer, live_server.url, "cara@example.org")
    await carer.wait_for_url("**/carer")
    visit = carer.locator("#visits li", has_text="Mr Ted Client")
    await visit.get_by_text("upcoming").wait_for()
    assert await visit.get_by_role("link", name="Mr Ted Client").get_attribute("href") == f"/carer/packages/{home.id}"
    await live_ready(carer)

    admin = await phone(browser)
    await sign_in(admin, live_server.url, "boss@example.org", secret)
    await admin.wait_for_url("**/admin")
    await admin.goto(f"{live_server.url}/admin/care/packages/{home.id}")
    office = admin.locator("#package-visits-live")
    await office.get_by_text("Cara Carer").wait_for()
    await office.get_by_text("upcoming").wait_for()
    progress = admin.locator("#package-progress-live")
    # the week to Sunday 29 March; the task has had its target of one a day since the 28th
    await progress.locator("#progress-total").get_by_text("0 of 2 expected completions (0%)").wait_for()
    await live_ready(admin)

    clock["now"] = START + timedelta(minutes=7)  # 09:02 BST
    await visit.get_by_role("button", name="Check in to the 09:00 visit").click()
    await carer.locator("#visits li", has_text="Mr Ted Client").get_by_text("checked in", exact=True).wait_for()
    # the office's open page shows it without a reload
    await office.get_by_text("checked in 09:02").wait_for(timeout=10000)
    await office.get_by_text("location recorded (±15 m)").wait_for()
    assert await admin.evaluate("performance.getEntriesByType('navigation').length") == 1
    [row] = await Visit.filter(entry__package_id=home.id)
    assert row.in_location is not None and row.in_accuracy == 15

    # the client's record, from the visit
    await carer.locator("#visits li", has_text="Mr Ted Client").get_by_role("link", name="Mr Ted Client").click()
    await carer.wait_for_url(f"**/carer/packages/{home.id}")
    await carer.locator("#client-allergies").get_by_text("Penicillin").wait_for()
    await carer.get_by_text("Key safe 4321").wait_for()
    await carer.go_back()
    await carer.wait_for_url("**/carer")
    await live_ready(carer)

    task = carer.locator("#tasks li", has_text="Medication prompt")
    await task.get_by_text("Not done, or add a note").click()
    await task.get_by_role("textbox", name="Note (optional)").fill("Done — slight nausea reported")
    await task.get_by_label("Note for the office").check()
    await task.get_by_role("button", name="Done: Medication prompt").click()
    await carer.locator("#tasks li", has_text="Medication prompt").get_by_text("target met").wait_for()
    # the office sees the note and the figures without a reload
    await admin.locator("#package-timeline-live").get_by_text("Done — slight nausea reported").wait_for(
        timeout=10000)
    await progress.locator("#progress-total").get_by_text("1 of 2 expected completions (50%)").wait_for(
        timeout=10000)
    assert await admin.evaluate("performance.getEntriesByType('navigation').length") == 1
    clock["now"] = START + timedelta(minutes=33)  # 09:28 BST
    await carer.locator("#visits li", has_text="Mr Ted Client").get_by_role(
        "button", name="Check out of the 09:00 visit").click()
    await carer.locator("#visits li", has_text="Mr Ted Client").get_by_text("done", exact=True).wait_for()
    await office.get_by_text("out 09:28").wait_for(timeout=10000)

    # Uma never checked in to her 09:00 visit: at 09:15 BST the office's feed says so, live.
    await admin.goto(f"{live_server.url}/admin/activity")
    feed = admin.locator("#activity-feed")
    await feed.get_by_text("Cara Carer checked in to the 09:00 visit to T. C.").wait_for()
    await live_ready(admin)
    # (The server's own runner started on the wall clock, so its planning schedule lies ahead of
    # the pinned day: plan here; this runner, or the server's on the pinned clock, raises it.)
    clock["now"] = START + timedelta(minutes=21)  # 09:16 BST
    assert await visit_alerts.plan_visit_alerts(clock["now"], timedelta(minutes=15)) == 2  # Uma's late and missed
    runner = Runner("test", live_server.settings, handlers={kind: HANDLERS[kind] for kind in (
        visit_alerts.LATE, visit_alerts.MISSED)})
    await runner.run_due(at=clock["now"])
    await feed.get_by_text("Late visit: Uma Carer has not checked in to the 09:00 visit to N. O.").wait_for(
        timeout=10000)
    await carer.context.close()
    await admin.context.close()
