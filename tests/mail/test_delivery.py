"""Email delivery as a job: queued with the change that causes it, retried with backoff while
the SMTP server is away (for hours if need be), delivered once it is back, never twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from caretrack.core.queue import Runner
from caretrack.core.queue.models import Job
from caretrack.core.queue.registry import HANDLERS
from caretrack.core.transaction import atomic
from caretrack.mail import jobs as mail_jobs  # noqa: F401  (registers mail.deliver)
from caretrack.mail import service as mail
from caretrack.mail.models import OutboundEmail
from tests.conftest import free_port

T0 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def mail_runner(settings) -> Runner:
    """A runner of mail delivery alone (other kinds, recurring ones too, may be registered)."""
    return Runner("test", settings, handlers={mail.DELIVER: HANDLERS[mail.DELIVER]})


async def queue_one(to: str = "pat@example.test") -> OutboundEmail:
    async with atomic() as tx:
        return await mail.send(tx, to, "verify_email", {"name": "Pat", "link": "http://testserver/verify#x"})


async def test_an_email_waits_through_an_hour_of_smtp_outage_and_arrives_once(database, smtp_server):
    down = database.replace(smtp_host="127.0.0.1", smtp_port=free_port())  # nothing listens there
    email = await queue_one()
    runner = mail_runner(down)
    at, failures = T0, 0
    while at < T0 + timedelta(hours=1):
        failures += await runner.run_due(at=at)
        at += timedelta(minutes=1)
    row = await OutboundEmail.get(id=email.id)
    assert row.status == "queued" and row.attempts == failures >= 6
    assert "ConnectionRefusedError" in row.last_error or "SMTPConnectError" in row.last_error
    assert smtp_server.messages == []

    back = mail_runner(database.replace(smtp_host=smtp_server.host, smtp_port=smtp_server.port))
    job = await Job.get(key=f"mail:{email.id}")
    assert job.due_at <= at + timedelta(minutes=65)  # eight failures in: the pause is at most 64 min
    while (await OutboundEmail.get(id=email.id)).status != "sent":
        assert at < T0 + timedelta(hours=3), "not delivered within two hours of the server's return"
        await back.run_due(at=at)
        at += timedelta(minutes=1)
    for _ in range(3):
        await back.run_due(at=at + timedelta(days=2))
    assert [m["To"] for m in smtp_server.messages] == ["pat@example.test"]
    row = await OutboundEmail.get(id=email.id)
    assert (row.status, row.attempts, row.last_error) == ("sent", failures + 1, None)


async def test_without_smtp_an_email_is_stored_for_admins(database):
    email = await queue_one()
    assert await mail_runner(database).run_due(at=T0) == 1
    assert (await OutboundEmail.get(id=email.id)).status == "stored"
    assert (await Job.get(key=f"mail:{email.id}")).status == "done"


async def test_an_email_that_never_gets_through_is_failed_and_its_job_dead(database):
    down = database.replace(smtp_host="127.0.0.1", smtp_port=free_port())
    email = await queue_one()
    runner, at = mail_runner(down), T0
    for _ in range(mail.MAX_ATTEMPTS):
        assert await runner.run_due(at=at) == 1
        at = (await Job.get(key=f"mail:{email.id}")).due_at or at
    row, job = await OutboundEmail.get(id=email.id), await Job.get(key=f"mail:{email.id}")
    assert (row.status, row.attempts, job.status) == ("failed", mail.MAX_ATTEMPTS, "dead")
    assert timedelta(hours=16) <= at - T0 <= timedelta(hours=34)  # retried for most of a day and more


async def test_emails_queued_before_the_job_queue_get_their_delivery_job(database):
    """Migration 0008's data step: emails the old sender loop left queued (or mid-send) are
    delivered by the queue after the upgrade."""
    import importlib

    from tortoise import connections

    upgrade = importlib.import_module("caretrack.migrations.0008_jobs")
    waiting = await OutboundEmail.create(to_address="old@example.test", subject="s", text_body="t", html_body="h",
                                         status="queued")
    stuck = await OutboundEmail.create(to_address="stuck@example.test", subject="s", text_body="t", html_body="h",
                                       status="sending")
    sent = await OutboundEmail.create(to_address="done@example.test", subject="s", text_body="t", html_body="h",
                                      status="sent")
    conn = connections.get("default")
    now = "NOW()" if conn.capabilities.dialect == "postgres" else "strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')"
    await conn.execute_script(upgrade.QUEUED_EMAILS.format(now=now))
    assert sorted(await Job.filter(kind=mail.DELIVER).values_list("key", flat=True)) == sorted(
        [f"mail:{waiting.id}", f"mail:{stuck.id}"])
    assert await mail_runner(database).run_due(at=T0) == 2
    statuses = {e.to_address: e.status for e in await OutboundEmail.all()}
    assert statuses == {"old@example.test": "stored", "stuck@example.test": "stored", "done@example.test": "sent"}
    assert sent.id
