"""/admin/jobs: the jobs that need a person, by status, and retrying a dead one (audited)."""

from __future__ import annotations

import pyotp

from caretrack.core.audit.models import AuditEntry
from caretrack.core.queue.models import Job
from caretrack.core.roles import Role
from tests.helpers import csrf_token, login, make_user


async def dead_job(at, **changes) -> Job:
    # A kind no runner here handles: the app's own runner leaves it where the test puts it.
    values = dict(kind="test.unhandled", payload="{}", status="dead", attempts=15, max_attempts=15,
                  last_error="SMTPConnectError: refused", created_at=at, finished_at=at, due_at=at)
    return await Job.create(**{**values, **changes})


async def test_an_admin_sees_dead_jobs_and_retries_one(client, now):
    """At pinned instants: the app's own runner (pruning finished jobs) runs at that clock too."""
    secret = pyotp.random_base32()
    await make_user(Role.ADMIN, "jobs-admin@example.org", totp_secret=secret)
    await login(client, "jobs-admin@example.org", totp_secret=secret)
    dead = await dead_job(now)
    done = await dead_job(now, status="done", last_error=None, kind="test.other")
    page = await client.get("/admin/jobs")
    assert page.status_code == 200
    assert f"#{dead.id}" in page.text and "SMTPConnectError: refused" in page.text and "15 of 15" in page.text
    assert f"#{done.id}<" not in page.text  # only what needs attention
    assert "dead (1)" in page.text
    assert f"#{done.id}" in (await client.get("/admin/jobs?status=done")).text

    token = await csrf_token(client, "/admin/jobs")
    retried = await client.post(f"/admin/jobs/{dead.id}/retry", data={"csrf_token": token})
    assert retried.status_code == 303
    job = await Job.get(id=dead.id)
    assert (job.status, job.attempts, job.finished_at) == ("queued", 0, None)
    assert await AuditEntry.filter(action="job.retried", subject_id=str(dead.id)).count() == 1
    again = await client.post(f"/admin/jobs/{done.id}/retry", data={"csrf_token": token})
    assert again.status_code == 422 and "Only a dead job can be retried" in again.text
    missing = await client.post("/admin/jobs/999999/retry", data={"csrf_token": token})
    assert missing.status_code == 404
    for page in ("abc", "0", "²", "9" * 30):
        response = await client.get(f"/admin/jobs?page={page}")
        assert response.status_code == 422 and "The page number starts at 1" in response.text, page
    unknown = await client.get("/admin/jobs?status=exploded")
    assert unknown.status_code == 422 and "Unknown job status" in unknown.text


async def test_the_queue_is_for_admins_only_and_forms_need_their_token(client, now):
    dead = await dead_job(now)
    await make_user(Role.CARER, "jobs-carer@example.org")
    await login(client, "jobs-carer@example.org")
    assert (await client.get("/admin/jobs")).status_code in (403, 404)
    token = await csrf_token(client, "/account")
    assert (await client.post(f"/admin/jobs/{dead.id}/retry", data={"csrf_token": token})).status_code in (403, 404)
    assert (await Job.get(id=dead.id)).status == "dead"
