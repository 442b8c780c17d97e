"""The admins' outbound page: every email and text message, newest first, filtered by
channel and state, paged, with Resend (CSRF and Origin checked, audited) for the failed,
dead and stored ones. Other roles get 403."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp

from caretrack.core.audit.models import AuditEntry
from caretrack.core.roles import Role
from caretrack.mail.models import OutboundEmail
from caretrack.notifications.models import OutboundSms
from caretrack.notifications.sms import number_of
from tests.helpers import csrf_token, login, make_user
from tests.notifications.conftest import sealed_number

AT = datetime(2026, 3, 8, 23, 59, tzinfo=UTC)


async def _admin(client) -> None:
    secret = pyotp.random_base32()
    await make_user(Role.ADMIN, "office@example.org", totp_secret=secret)
    await login(client, "office@example.org", totp_secret=secret)


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in body.split("<tr>")[1:]]


async def test_other_roles_cannot_see_or_resend(client):
    text = await OutboundSms.create(**sealed_number("+447911123456"), body="x", status="stored", created_at=AT)
    await make_user(Role.PATIENT, "nosy@example.org")
    await login(client, "nosy@example.org")
    assert (await client.get("/admin/outbound")).status_code == 403
    resend = await client.post(f"/admin/outbound/sms/{text.id}/resend", data={"csrf_token": await csrf_token(client)})
    assert resend.status_code == 403
    assert await OutboundSms.all().count() == 1
    client.cookies.clear()
    assert (await client.get("/admin/outbound")).headers["location"].startswith("/login")


async def test_lists_both_channels_newest_first_with_state_attempts_error_and_filters(client):
    await _admin(client)
    for minutes, number, status, error in ((1, "+447911000001", "stored", None),
                                           (2, "+447911000002", "failed", "The SMS provider refused it (HTTP 400)"),
                                           (3, "+447911000003", "delivered", None)):
        await OutboundSms.create(**sealed_number(number), body=f"CareTrack: text {minutes}", status=status,
                                 attempts=0 if status == "stored" else 2, last_error=error,
                                 created_at=AT + timedelta(minutes=minutes))
    await OutboundEmail.create(to_address="someone@example.org", subject="Your appointment", text_body="t",
                               html_body="<p>t</p>", status="failed", attempts=5, last_error="SMTP down")
    page = await client.get("/admin/outbound?channel=sms")
    assert page.status_code == 200
    assert _rows(page.text) == [
        "SMS +44 ••• 0003 CareTrack: text 3 delivered 2 2026-03-09 00:02",
        "SMS +44 ••• 0002 CareTrack: text 2 failed 2 The SMS provider refused it (HTTP 400) 2026-03-09 00:01 Resend",
        "SMS +44 ••• 0001 CareTrack: text 1 stored 0 2026-03-09 00:00 Resend",
    ]
    emails = _rows((await client.get("/admin/outbound?channel=email")).text)
    assert len(emails) == 1 and emails[0].startswith("Email someone@example.org Your appointment failed 5 SMTP down")
    everything = _rows((await client.get("/admin/outbound")).text)
    assert len(everything) == 4
    failed = _rows((await client.get("/admin/outbound?state=failed")).text)
    assert sorted(r.split(" ")[0] for r in failed) == ["Email", "SMS"] and all(" failed " in r for r in failed)
    bad = await client.get("/admin/outbound?state=lost")
    assert bad.status_code == 422 and "Choose a state among" in bad.text
    assert (await client.get("/admin/emails")).headers["location"] == "/admin/outbound?channel=email"
    assert 'href="/admin/outbound"' in (await client.get("/admin")).text


async def test_pages_hold_fifty_newest_first(client):
    await _admin(client)
    for i in range(51):
        await OutboundSms.create(**sealed_number("+447911123456"), body=f"text {i:02d}", status="stored",
                                 created_at=AT + timedelta(minutes=i))
    first = await client.get("/admin/outbound?channel=sms")
    rows = _rows(first.text)
    assert len(rows) == 50 and "text 50" in rows[0] and "text 01" in rows[-1]
    assert 'page=2">Older</a>' in first.text
    second = _rows((await client.get("/admin/outbound?channel=sms&page=2")).text)
    assert len(second) == 1 and "text 00" in second[0]


async def test_resend_of_a_failed_email_queues_a_fresh_copy_and_is_audited(client):
    await _admin(client)
    original = await OutboundEmail.create(to_address="again@example.org", subject="Your receipt", text_body="t",
                                          html_body="<p>t</p>", status="failed", attempts=5, last_error="SMTP down")
    sent = await OutboundEmail.create(to_address="done@example.org", subject="Done", text_body="t",
                                      html_body="<p>t</p>", status="sent", attempts=1)
    token = await csrf_token(client, "/admin/outbound")
    forged = await client.post(f"/admin/outbound/email/{original.id}/resend", data={})
    assert forged.status_code == 403
    foreign = await client.post(f"/admin/outbound/email/{original.id}/resend", data={"csrf_token": token},
                                headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert await OutboundEmail.filter(to_address="again@example.org").count() == 1
    resent = await client.post(f"/admin/outbound/email/{original.id}/resend", data={"csrf_token": token})
    assert resent.status_code == 200 and "Email to again@example.org queued again" in resent.text
    copies = await OutboundEmail.filter(to_address="again@example.org").order_by("id")
    assert [(c.status, c.subject) for c in copies][0] == ("failed", "Your receipt")
    assert len(copies) == 2 and copies[1].subject == "Your receipt" and copies[1].status in ("queued", "sending",
                                                                                              "stored")
    entry = await AuditEntry.get(action="outbound.resend")
    assert (entry.subject_type, entry.subject_id) == ("email", str(original.id)) and str(copies[1].id) in entry.detail
    refused = await client.post(f"/admin/outbound/email/{sent.id}/resend", data={"csrf_token": token})
    assert refused.status_code == 409 and "this one is sent" in refused.text
    missing = await client.post("/admin/outbound/email/999999/resend", data={"csrf_token": token})
    assert missing.status_code == 404
    nowhere = await client.post(f"/admin/outbound/fax/{original.id}/resend", data={"csrf_token": token})
    assert nowhere.status_code == 404


async def test_resend_of_a_stored_text_queues_a_fresh_one_with_its_job(client):
    from caretrack.core.queue.models import Job

    await _admin(client)
    original = await OutboundSms.create(**sealed_number("+447911123456"), body="CareTrack: a reminder", status="stored",
                                        created_at=AT)
    delivered = await OutboundSms.create(**sealed_number("+447911123456"), body="x", status="delivered", created_at=AT)
    token = await csrf_token(client, "/admin/outbound")
    resent = await client.post(f"/admin/outbound/sms/{original.id}/resend", data={"csrf_token": token})
    assert resent.status_code == 200 and "Text message to +44 ••• 3456 queued again" in resent.text
    copy = await OutboundSms.filter(id__gt=delivered.id).get()
    assert (number_of(copy), copy.body) == ("+447911123456", "CareTrack: a reminder")
    assert await Job.filter(kind="sms.deliver", key=f"sms:{copy.id}").count() == 1
    assert (await OutboundSms.get(id=original.id)).status == "stored"
    entry = await AuditEntry.get(action="outbound.resend")
    assert (entry.subject_type, entry.subject_id) == ("sms", str(original.id))
    refused = await client.post(f"/admin/outbound/sms/{delivered.id}/resend", data={"csrf_token": token})
    assert refused.status_code == 409 and "this one is delivered" in refused.text


async def test_a_resent_text_goes_to_the_persons_current_phone_or_not_at_all(client):
    """The admin page shows numbers masked; a resend reads the person's phone as it is now."""
    from caretrack.core import crypto
    from tests.helpers import make_user

    await _admin(client)
    person = await make_user(Role.PATIENT, "moved@example.org", phone=crypto.seal("+447911999999", "users.phone"))
    old = await OutboundSms.create(**sealed_number("+447911123456"), body="CareTrack: a reminder", status="failed",
                                   created_at=AT, user_id=person.id)
    page = await client.get("/admin/outbound")
    assert "+44 ••• 3456" in page.text and "+447911123456" not in page.text
    token = await csrf_token(client, "/admin/outbound")
    resent = await client.post(f"/admin/outbound/sms/{old.id}/resend", data={"csrf_token": token})
    assert resent.status_code == 200
    copy = await OutboundSms.filter(id__gt=old.id).get()
    assert number_of(copy) == "+447911999999"
    await person.__class__.filter(id=person.id).update(phone=None)
    await OutboundSms.filter(id=copy.id).update(status="failed")
    refused = await client.post(f"/admin/outbound/sms/{copy.id}/resend", data={"csrf_token": token})
    assert refused.status_code == 409 and "no valid phone number" in refused.text
