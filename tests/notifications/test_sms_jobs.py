"""Text messages as jobs: sms.send queues the message and its sms.deliver job in the
caller's transaction; on the embedded default the job stores it, with a provider it sends it
(a 5xx retried later, a 4xx ends the job skipped); notify() follows the user's choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from caretrack.accounts.models import User
from caretrack.core import crypto
from caretrack.core.audit.models import AuditEntry
from caretrack.core.queue import Runner
from caretrack.core.queue.models import Job
from caretrack.core.queue.registry import HANDLERS
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic
from caretrack.mail.models import OutboundEmail
from caretrack.notifications import jobs as sms_jobs  # noqa: F401  (registers sms.deliver)
from caretrack.notifications import sms
from caretrack.notifications.models import NotificationPreference, OutboundSms
from caretrack.notifications.service import notify
from caretrack.notifications.sms import number_of
from tests.helpers import make_user

T0 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
TEXT = "CareTrack: reminder of your appointment at 09:00. Details: https://caretrack.example/a/1"
EMAIL = ("verify_email", {"name": "Pat", "link": "http://testserver/verify#x"}, ())


def sms_runner(settings) -> Runner:
    return Runner("test", settings, handlers={sms.JOB: HANDLERS[sms.JOB]})


async def _send(number: str = "+447911123456") -> OutboundSms:
    async with atomic() as tx:
        return await sms.send(tx, number, TEXT, at=T0)


async def test_on_the_default_the_job_stores_the_text_for_admins(database):
    text = await _send()
    job = await Job.get(key=f"sms:{text.id}")
    assert (job.kind, job.status) == ("sms.deliver", "queued")
    assert await sms_runner(database).run_due(at=T0) == 1
    assert (await OutboundSms.get(id=text.id)).status == "stored"
    assert (await Job.get(id=job.id)).status == "done"
    assert await sms_runner(database).run_due(at=T0 + timedelta(days=1)) == 0


async def test_a_rolled_back_transaction_queues_neither_text_nor_job(database):
    with pytest.raises(RuntimeError):
        async with atomic() as tx:
            await sms.send(tx, "+447911123456", TEXT, at=T0)
            raise RuntimeError("the caller's change failed")
    assert await OutboundSms.all().count() == 0 and await Job.filter(kind="sms.deliver").count() == 0


@pytest.mark.parametrize(("number", "body", "words"), [
    ("07911 123456", TEXT, "not an E.164 phone number"),
    ("+447911123456", "", "1 to 1600 characters"),
    ("+447911123456", "x" * 1601, "1 to 1600 characters"),
])
async def test_send_refuses_what_cannot_be_sent(database, number, body, words):
    with pytest.raises(Exception, match=words):
        async with atomic() as tx:
            await sms.send(tx, number, body, at=T0)


async def test_the_job_sends_through_the_provider_retrying_a_5xx(database, twilio_settings, fake_twilio):
    text = await _send()
    runner = sms_runner(twilio_settings)
    fake_twilio.answers = [502]
    assert await runner.run_due(at=T0) == 1
    row, job = await OutboundSms.get(id=text.id), await Job.get(key=f"sms:{text.id}")
    assert (row.status, row.attempts) == ("queued", 1) and "HTTP 502" in row.last_error
    assert job.status == "queued" and job.due_at > T0
    assert await runner.run_due(at=T0) == 0  # not before its backoff
    assert await runner.run_due(at=job.due_at) == 1
    row = await OutboundSms.get(id=text.id)
    assert (row.status, row.attempts) == ("sent", 2) and [m["To"] for m in fake_twilio.received] == [number_of(row)]
    assert (await Job.get(id=job.id)).status == "done"


async def test_a_4xx_ends_the_job_skipped_with_the_providers_reason(database, twilio_settings, fake_twilio):
    text = await _send("+12025550143")
    fake_twilio.answers = [400]
    assert await sms_runner(twilio_settings).run_due(at=T0) == 1
    job = await Job.get(key=f"sms:{text.id}")
    assert job.status == "skipped" and "21211" in job.last_error
    assert (await OutboundSms.get(id=text.id)).status == "failed"


async def test_notify_sends_on_the_chosen_channels_only(database):
    phone = crypto.seal("+447911123456", "users.phone")
    both = await make_user(Role.PATIENT, "both@example.org", phone=phone)
    silent = await make_user(Role.PATIENT, "silent@example.org", phone=phone)
    default = await make_user(Role.PATIENT, "default@example.org", phone=phone)
    for user, channel in ((both, "both"), (silent, "none")):
        await NotificationPreference.create(user=user, kind="appointment_reminder", channel=channel, updated_at=T0)
    async with atomic() as tx:
        used = {u.email: await notify(tx, await User.get(id=u.id), "appointment_reminder", at=T0, email=EMAIL,
                                      sms_text=TEXT) for u in (both, silent, default)}
    assert used == {"both@example.org": {"email", "sms"}, "silent@example.org": set(),
                    "default@example.org": {"email"}}
    assert sorted(await OutboundEmail.all().values_list("to_address", flat=True)) == [
        "both@example.org", "default@example.org"]
    [text] = await OutboundSms.all()
    assert (number_of(text), text.body, text.user_id) == ("+447911123456", TEXT, both.id)
    assert "7911123456" not in text.to_number and text.to_hint == "+44 ••• 3456"  # sealed at rest
    read = await AuditEntry.get(action="phi.read", subject_id=str(both.id))
    assert "phone" in read.detail and "appointment_reminder" in read.detail
    assert await Job.filter(kind="sms.deliver", key=f"sms:{text.id}").count() == 1


async def test_a_phone_saved_before_numbers_were_normalised_falls_back_to_email(database):
    """A profile phone from before E.164 (`07911 123456`): no SMS is attempted (that would
    fail the whole transaction, every other recipient's notification with it) and the number
    appears in no error; the person is reached by email instead."""
    old = await make_user(Role.ADMIN, "old-phone@example.org", phone=crypto.seal("07911 123456", "users.phone"))
    other = await make_user(Role.ADMIN, "other@example.org", phone=crypto.seal("+447911123456", "users.phone"))
    for user in (old, other):
        await NotificationPreference.create(user=user, kind="message_nudge", channel="sms", updated_at=T0)
    async with atomic() as tx:
        used = [await notify(tx, await User.get(id=u.id), "message_nudge", at=T0, email=EMAIL, sms_text=TEXT)
                for u in (old, other)]
    assert used == [{"email"}, {"sms"}]
    assert await OutboundEmail.all().values_list("to_address", flat=True) == ["old-phone@example.org"]
    assert [number_of(t) for t in await OutboundSms.all()] == ["+447911123456"]
