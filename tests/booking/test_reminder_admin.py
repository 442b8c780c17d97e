"""The admins' reminder policy through the page and the API: who may change it, what is
refused with which message, and that saving re-plans upcoming reminders."""

from __future__ import annotations

import pyotp

from caretrack.core.audit.models import AuditEntry
from caretrack.core.queue.models import Job
from caretrack.core.roles import Role
from tests.helpers import csrf_token, login, make_user


async def sign_in_admin(client) -> None:
    secret = pyotp.random_base32()
    await make_user(Role.ADMIN, "reminder-admin@example.org", totp_secret=secret)
    await login(client, "reminder-admin@example.org", totp_secret=secret)


async def test_an_admin_changes_the_reminder_times_on_the_page(client):
    await sign_in_admin(client)
    page = await client.get("/admin/reminders")
    assert page.status_code == 200 and 'value="1d, 1h"' in page.text
    token = await csrf_token(client, "/admin/reminders")
    saved = await client.post("/admin/reminders", data={"csrf_token": token, "offsets": "2d, 90m, 30 min",
                                                        "grace_minutes": "10"})
    assert saved.status_code == 200 and "Saved" in saved.text and 'value="2d, 90m, 30m"' in saved.text
    api = await client.get("/api/v1/admin/reminder-policy")
    assert api.json()["offsets"] == [2880, 90, 30] and api.json()["grace_minutes"] == 10
    assert await Job.filter(kind="booking.replan_reminders").count() == 1
    assert await AuditEntry.filter(action="reminders.policy_changed").count() == 1


async def test_bad_reminder_times_are_refused_naming_the_problem_and_kept_in_the_form(client):
    await sign_in_admin(client)
    token = await csrf_token(client, "/admin/reminders")
    for offsets, grace, message in (("1 fortnight", "10", "is not a duration"),
                                    ("1m", "10", "must be between 5 and 20160, not 1"),
                                    ("1h", "0", "grace in minutes must be between 1 and 240"),
                                    ("1h", "ten", "not a whole number")):
        response = await client.post("/admin/reminders", data={"csrf_token": token, "offsets": offsets,
                                                               "grace_minutes": grace})
        assert response.status_code in (400, 422) and message in response.text, (offsets, grace)
        assert f'value="{offsets}"' in response.text
    bad = await client.put("/api/v1/admin/reminder-policy", json={"offsets": [60, 60, 30, 20, 10]},
                           headers={"x-csrf-token": token})
    assert bad.status_code == 422 and "offsets" in bad.text


async def test_only_admins_see_or_change_the_policy(client):
    await make_user(Role.PATIENT, "curious@example.org")
    await login(client, "curious@example.org")
    assert (await client.get("/admin/reminders")).status_code in (403, 404)
    token = await csrf_token(client, "/account")
    response = await client.put("/api/v1/admin/reminder-policy", json={"offsets": [60]},
                                headers={"x-csrf-token": token})
    assert response.status_code == 403
    client.cookies.clear()
    assert (await client.get("/api/v1/admin/reminder-policy")).status_code == 401
