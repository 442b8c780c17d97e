"""Care work in a real browser on a phone-sized screen: a task assigned by an admin reaches
the carer's open dashboard live, the carer logs it, and the admin's feed shows it; a carer
takes an assessment, an assessor marks it, and the training matrix changes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from caretrack.care import service as care
from caretrack.care.models import TaskCompletion
from caretrack.care.schemas import PackageIn, TaskIn
from caretrack.core.roles import Role
from tests.browser.helpers import live_ready
from tests.browser.helpers import sign_in_page as sign_in
from tests.care.helpers import admin_user, template
from tests.conftest import PINNED_INSTANTS
from tests.helpers import make_user

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


async def phone(browser):
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    return await context.new_page()


async def test_an_assigned_task_reaches_the_carer_live_and_the_log_reaches_the_feed(live_server, browser):
    # "today" is the server's: pinned a minute before midnight, a log cannot land on another day
    live_server.app.state.clock = lambda: PINNED_INSTANTS["2359Z-new-york-spring-forward"]
    boss, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    package = await care.do_create_package(boss, PackageIn.model_validate({
        "client_name": "Mr Ted Client", "starts_on": "2020-01-01", "visit_times": "08:00, 18:00"}), None)
    await care.do_assign_carer(boss, package.id, cara.id, None)

    carer = await phone(browser)
    await sign_in(carer, live_server.url, "cara@example.org")
    await carer.wait_for_url("**/carer")
    await carer.get_by_text("No tasks for you today.").wait_for()
    await live_ready(carer)

    admin = await phone(browser)
    await sign_in(admin, live_server.url, "boss@example.org", secret)
    await admin.wait_for_url("**/admin")
    await admin.goto(f"{live_server.url}/admin/care/packages/{package.id}")
    await admin.get_by_role("heading", name="Mr Ted Client").wait_for()
    await admin.get_by_label("Task", exact=True).fill("Fluid chart")
    await admin.get_by_label("Carer", exact=True).select_option(label="Cara Carer")
    await admin.get_by_label("Target", exact=True).fill("1")
    await admin.get_by_label("Per", exact=True).select_option("visit")
    await admin.get_by_role("button", name="Add task").click()
    await admin.locator("#package-tasks").get_by_text("Fluid chart").wait_for()

    # the carer's open dashboard shows it without a reload
    task = carer.locator("#tasks li", has_text="Fluid chart")
    await task.wait_for(timeout=10000)
    assert await task.locator(".progress").inner_text() == "0 of 2 today"
    assert await carer.evaluate("performance.getEntriesByType('navigation').length") == 1
    await task.get_by_role("button", name="Done: Fluid chart").click()
    await carer.locator("#tasks li", has_text="Fluid chart").locator(".progress", has_text="1 of 2 today").wait_for()
    # not done, with a reason: open the panel, tap the reason
    task = carer.locator("#tasks li", has_text="Fluid chart")
    await task.get_by_text("Not done, or add a note").click()
    await task.get_by_role("button", name="Client declined").click()
    await carer.locator("#tasks li", has_text="Fluid chart").get_by_text("last: not done").wait_for()
    assert await carer.evaluate("performance.getEntriesByType('navigation').length") == 1
    first_task = (await care.get_package(boss, package.id, None)).tasks[0]
    assert len([r for r in await care.list_completions(cara, first_task.id, None)]) == 2

    await admin.goto(f"{live_server.url}/admin/activity")
    feed = admin.locator("#activity-feed")
    await feed.get_by_text("Cara Carer completed the task “Fluid chart”").wait_for()
    # (the feed's wording belongs to realtime/feed.py; assert on the facts it must carry)
    await feed.locator("li", has_text="Cara Carer").filter(has_text="“Fluid chart”").filter(
        has_text="not done").filter(has_text="Client declined").first.wait_for()
    # and a further completion arrives in the open feed live
    await carer.locator("#tasks li", has_text="Fluid chart").get_by_role("button", name="Done: Fluid chart").click()
    await feed.locator("li", has_text="completed the task “Fluid chart”").nth(1).wait_for(timeout=10000)
    await carer.context.close()
    await admin.context.close()


async def test_a_time_entered_just_after_midnight_logs_last_nights_visit(live_server, browser):
    """The dashboard's time field: 23:50 entered at 00:10 UTC is 20 minutes ago. The server and
    the browser both run at that pinned instant."""
    just_after_midnight = datetime(2026, 10, 25, 0, 10, tzinfo=UTC)
    live_server.app.state.clock = lambda: just_after_midnight
    boss, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    package = await care.do_create_package(boss, PackageIn.model_validate({
        "client_name": "Mr Ted Client", "starts_on": "2020-01-01", "visit_times": "08:00, 18:00"}), None)
    await care.do_assign_carer(boss, package.id, cara.id, None)
    task = await care.do_create_task(boss, package.id, TaskIn.model_validate({
        "carer_id": cara.id, "title": "Evening medication", "target": 1, "period": "day"}), None,
        at=just_after_midnight - timedelta(days=2))
    carer = await phone(browser)
    await carer.clock.set_fixed_time(just_after_midnight)
    await sign_in(carer, live_server.url, "cara@example.org")
    await carer.wait_for_url("**/carer")
    item = carer.locator("#tasks li", has_text="Evening medication")
    await item.get_by_text("Not done, or add a note").click()
    await item.get_by_label(re.compile("Time")).fill("23:50")
    await item.get_by_role("button", name="Client declined").click()
    await carer.locator("#tasks li", has_text="Evening medication").get_by_text("last: not done").wait_for()
    [logged] = await TaskCompletion.filter(task_id=task.id)
    assert logged.occurred_at == datetime(2026, 10, 24, 23, 50, tzinfo=UTC)
    await carer.context.close()


async def test_a_tap_made_offline_is_sent_when_back_online_with_the_time_it_was_made(live_server, browser):
    """On the package's clock (London, the morning the clocks went forward): the carer taps Done
    with no signal at 08:00 BST; twenty minutes later the phone is back online, and the tap is
    recorded as made at 08:00, once."""
    tapped = datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    live_server.app.state.clock = lambda: tapped
    boss, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    package = await care.do_create_package(boss, PackageIn.model_validate({
        "client_name": "Mr Ted Client", "starts_on": "2020-01-01", "time_zone": "Europe/London"}), None)
    await care.do_assign_carer(boss, package.id, cara.id, None)
    task = await care.do_create_task(boss, package.id, TaskIn.model_validate({
        "carer_id": cara.id, "title": "Medication prompt", "target": 1, "period": "day",
        "window_start": "07:30", "window_end": "10:00"}), None, at=tapped - timedelta(days=1))
    carer = await phone(browser)
    await carer.clock.set_fixed_time(tapped)
    await sign_in(carer, live_server.url, "cara@example.org")
    await carer.wait_for_url("**/carer")
    await live_ready(carer)
    item = carer.locator("#tasks li", has_text="Medication prompt")
    assert "Time (Europe/London)" in await item.locator(f'label[for="time-{task.id}"]').text_content()

    await carer.context.set_offline(True)
    await item.get_by_role("button", name="Done: Medication prompt").click()
    await item.get_by_role("status").filter(has_text="your tap at 08:00 kept on this phone").wait_for()
    assert await TaskCompletion.filter(task_id=task.id).count() == 0

    later = tapped + timedelta(minutes=20)
    live_server.app.state.clock = lambda: later
    await carer.clock.set_fixed_time(later)
    await carer.context.set_offline(False)
    await carer.locator("#tasks li", has_text="Medication prompt").locator(
        ".progress", has_text="1 of 1 today").wait_for(timeout=15000)
    [logged] = await TaskCompletion.filter(task_id=task.id)
    assert logged.occurred_at == tapped
    assert await carer.locator("[data-pending-note]").count() == 0
    await carer.context.close()


async def test_a_carer_takes_an_assessment_an_assessor_marks_it_and_the_matrix_changes(live_server, browser):
    boss, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    t, (q1, q2, text, practical) = await template(boss, skill="Medication")
    from caretrack.assessments import service as assessments

    attempt = await assessments.do_assign(boss, t.id, cara.id)

    admin = await phone(browser)
    await sign_in(admin, live_server.url, "boss@example.org", secret)
    await admin.wait_for_url("**/admin")
    await admin.goto(f"{live_server.url}/admin/training")
    cell = admin.locator(f'#training-matrix tr[data-carer="{cara.id}"] td[data-skill="{t.skill_id}"]')
    assert await cell.get_attribute("data-status") == "not_assessed"

    carer = await phone(browser)
    await sign_in(carer, live_server.url, "cara@example.org")
    await carer.wait_for_url("**/carer")
    await carer.get_by_role("link", name="Medication check").click()
    await carer.get_by_label("When needed").check()
    await carer.get_by_text("Saved at").wait_for()  # progress is saved as they go
    await carer.reload()  # interrupted: the answer is still there
    assert await carer.get_by_label("When needed").is_checked()
    await carer.get_by_label("Right person").check()
    await carer.get_by_label("Right dose").check()
    await carer.get_by_label("Describe how you record a refusal.").fill("On the MAR chart with code R")
    await carer.get_by_label(re.compile("Observed: administering")).fill("Done with the assessor present")
    await carer.get_by_role("button", name="Hand in").click()
    await carer.get_by_text("Handed in.").wait_for()

    await admin.goto(f"{live_server.url}/admin/assessments")
    await admin.get_by_role("link", name="Medication check — Cara Carer").click()
    await admin.get_by_label(re.compile("Marks for “Describe how")).fill("3")
    await admin.get_by_label(re.compile("Marks for “Observed")).fill("2")
    await admin.get_by_label("I observed this and sign it off").check()
    await admin.get_by_role("button", name="Save marks").click()
    await admin.locator("#attempt-status").get_by_text("Score 90%").wait_for()

    await admin.goto(f"{live_server.url}/admin/training")
    assert await cell.get_attribute("data-status") == "competent"
    assert "90%" in await cell.inner_text()
    await admin.get_by_label("Showing carers with").select_option("not_assessed")
    await admin.get_by_role("button", name="Filter").click()
    await admin.get_by_text("No carers match.").wait_for()

    await carer.goto(f"{live_server.url}/carer/assessments/{attempt.id}")
    await carer.locator("#result").get_by_text("90%").wait_for()
    await carer.context.close()
    await admin.context.close()
