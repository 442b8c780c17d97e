"""The visit summary: only the appointment's doctor and patient see it, it is sealed at rest,
every read and write is audited, and the patient's notice carries a link and no PHI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from tortoise import connections

from caretrack.booking.models import AppointmentStatus
from caretrack.consultations import guests, service, summary
from caretrack.consultations.schemas import GuestInviteCreate, GuestJoin
from caretrack.consultations.summary_schemas import SummaryWrite
from caretrack.core.audit.models import AuditEntry
from caretrack.core.errors import Forbidden, NotFound, ValidationError
from caretrack.core.outbox.models import Event
from caretrack.core.queue import Runner
from caretrack.core.queue.registry import HANDLERS
from caretrack.core.roles import Role
from caretrack.mail import jobs as mail_jobs  # noqa: F401  (registers mail.deliver)
from caretrack.mail import service as mail
from caretrack.mail.models import OutboundEmail
from caretrack.notifications.models import NotificationPreference
from tests.consultations.conftest import make_appointment
from tests.helpers import csrf_token, login, make_user

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
PHI = "Meniscus tear, left knee. Ibuprofen 400 mg"


async def test_only_the_doctor_and_the_patient_see_it_and_every_read_and_write_is_audited(database, people):
    settings = database
    doctor, patient = people["doctor"], people["patient"]
    appointment = await make_appointment(doctor, patient, starts_in=timedelta(minutes=-40), at=T0)
    admin = await make_user(Role.ADMIN, "admin@example.org", name="Ada Admin")
    _, link = await guests.do_create_guest_invite(settings, doctor, appointment.id,
                                                  GuestInviteCreate(role="interpreter", label="Interpreter"), at=T0)
    await guests.do_redeem_guest_invite(GuestJoin(token=link.split("#", 1)[1], name="Ana"), user=people["carer"],
                                        at=T0)

    draft = await summary.do_save_summary(settings, doctor, appointment.id, SummaryWrite(text=PHI), at=T0)
    assert (draft.draft, draft.text, draft.published_at, draft.unpublished_changes) == (PHI, None, None, True)
    unpublished = await summary.read_summary(patient, appointment.id)
    assert (unpublished.text, unpublished.draft) == (None, None), "the patient never sees the draft"

    published = await summary.do_save_summary(settings, doctor, appointment.id, SummaryWrite(text=PHI, publish=True),
                                              at=T0 + timedelta(minutes=5))
    assert (published.text, published.version, published.unpublished_changes) == (PHI, 1, False)
    seen = await summary.read_summary(patient, appointment.id)
    assert (seen.text, seen.published_at, seen.updated_at, seen.draft) == (PHI, T0 + timedelta(minutes=5), None, None)

    for outsider in (people["stranger"], people["carer"], admin):  # another patient, the call's guest, an admin
        with pytest.raises(NotFound):
            await summary.read_summary(outsider, appointment.id)
        with pytest.raises(NotFound):
            await summary.do_save_summary(settings, outsider, appointment.id, SummaryWrite(text="x"), at=T0)
    other_doctor = await make_user(Role.DOCTOR, "doc2@example.org", name="Dr Other")
    with pytest.raises(NotFound):
        await summary.read_summary(other_doctor, appointment.id)
    with pytest.raises(Forbidden):
        await summary.do_save_summary(settings, patient, appointment.id, SummaryWrite(text="mine"), at=T0)
    with pytest.raises(ValidationError, match="Write the summary before publishing"):
        await summary.do_save_summary(settings, doctor, appointment.id, SummaryWrite(text="  ", publish=True), at=T0)

    writes = await AuditEntry.filter(action="phi.write", subject_type="consultation_summary").order_by("id")
    assert [(w.actor_id, json.loads(w.detail)["published"]) for w in writes] == [(doctor.id, False), (doctor.id, True)]
    reads = await AuditEntry.filter(action="phi.read", subject_type="consultation_summary").order_by("id")
    assert [(r.actor_id, json.loads(r.detail)["role"]) for r in reads] == [(patient.id, "patient"),
                                                                          (patient.id, "patient")]
    assert await summary.read_summary(doctor, appointment.id)
    assert await AuditEntry.filter(action="phi.read", subject_type="consultation_summary").count() == 3

    conn = connections.get("default")
    _, rows = await conn.execute_query(
        f"SELECT draft, text FROM consultation_summaries WHERE appointment_id = {appointment.id}")
    assert rows and all("Meniscus" not in rows[0][column] and rows[0][column].startswith("v1.")
                        for column in ("draft", "text")), "sealed at rest"

    # The private notes are a separate thing: the summary does not touch them.
    assert await service.read_notes(settings, doctor, appointment.id) == ""


async def test_an_edit_after_publishing_stays_readable_and_says_updated(database, people):
    doctor, patient = people["doctor"], people["patient"]
    appointment = await make_appointment(doctor, patient, starts_in=timedelta(minutes=-40))
    write = summary.do_save_summary
    await write(database, doctor, appointment.id, SummaryWrite(text="First version", publish=True), at=T0)
    await write(database, doctor, appointment.id, SummaryWrite(text="Second, not yet published"),
                at=T0 + timedelta(hours=1))
    seen = await summary.read_summary(patient, appointment.id)
    assert (seen.text, seen.updated_at) == ("First version", None)
    doctors = await summary.read_summary(doctor, appointment.id)
    assert (doctors.draft, doctors.unpublished_changes) == ("Second, not yet published", True)
    await write(database, doctor, appointment.id, SummaryWrite(text="Second version", publish=True),
                at=T0 + timedelta(hours=2))
    seen = await summary.read_summary(patient, appointment.id)
    assert (seen.text, seen.published_at, seen.updated_at, seen.version) == (
        "Second version", T0, T0 + timedelta(hours=2), 2)
    events = await Event.filter(type="consultation.summary_published").order_by("id")
    assert [json.loads(e.data) if isinstance(e.data, str) else e.data for e in events] == [
        {"appointment_id": appointment.id, "version": 1}, {"appointment_id": appointment.id, "version": 2}]


async def test_a_cancelled_appointment_has_no_summary(database, people):
    cancelled = await make_appointment(people["doctor"], people["patient"], status=AppointmentStatus.CANCELLED)
    with pytest.raises(NotFound):
        await summary.do_save_summary(database, people["doctor"], cancelled.id, SummaryWrite(text="x"), at=T0)


async def test_the_patients_email_links_to_the_page_and_carries_no_phi(database, people, smtp_server):
    doctor, patient = people["doctor"], people["patient"]
    appointment = await make_appointment(doctor, patient, starts_in=timedelta(minutes=-40))
    await summary.do_save_summary(database, doctor, appointment.id, SummaryWrite(text=PHI, publish=True), at=T0)
    smtp = database.replace(smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    await Runner("test", smtp, handlers={mail.DELIVER: HANDLERS[mail.DELIVER]}).run_due(at=T0)
    [message] = smtp_server.messages
    assert message["To"] == patient.email
    assert message["Subject"] == "Your visit summary is ready"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert f"{database.base_url}/appointments/{appointment.id}#visit-summary" in text
    for body in (text, html, message["Subject"]):
        for secret in ("Meniscus", "knee", "Ibuprofen", doctor.full_name):
            assert secret not in body
    assert await OutboundEmail.filter(to_address=doctor.email).count() == 0


async def test_a_patient_who_opted_out_gets_no_email_but_still_reads_it(database, people):
    doctor, patient = people["doctor"], people["patient"]
    await NotificationPreference.create(user=patient, kind="visit_follow_up", channel="none", updated_at=T0)
    appointment = await make_appointment(doctor, patient, starts_in=timedelta(minutes=-40))
    await summary.do_save_summary(database, doctor, appointment.id, SummaryWrite(text=PHI, publish=True), at=T0)
    assert await OutboundEmail.filter(to_address=patient.email).count() == 0
    assert (await summary.read_summary(patient, appointment.id)).text == PHI


async def test_the_api_and_the_pages(client, people):
    doctor, patient = people["doctor"], people["patient"]
    appointment = await make_appointment(doctor, patient, starts_in=timedelta(minutes=-40))
    url = f"/api/v1/consultations/{appointment.id}/summary"
    await login(client, patient.email)
    assert (await client.get(url)).json()["text"] is None
    headers = {"x-csrf-token": await csrf_token(client)}
    refused = await client.put(url, json={"text": "I write my own"}, headers=headers)
    assert refused.status_code == 403
    page = await client.get(f"/appointments/{appointment.id}")
    assert "has not published a summary" in page.text

    await login(client, doctor.email, totp_secret=people["doctor_secret"])
    headers = {"x-csrf-token": await csrf_token(client)}
    too_long = await client.put(url, json={"text": "x" * 20001}, headers=headers)
    assert too_long.status_code == 422
    saved = await client.put(url, json={"text": "Rest the knee.", "publish": True}, headers=headers)
    assert saved.status_code == 200 and saved.json()["version"] == 1
    page = await client.get(f"/appointments/{appointment.id}")
    assert "Rest the knee.</textarea>" in page.text and "Published " in page.text
    empty = await client.post(f"/appointments/{appointment.id}/summary", data={
        "text": " ", "action": "publish", "csrf_token": await csrf_token(client)})
    assert empty.status_code == 422 and "Write the summary before publishing it." in empty.text
    posted = await client.post(f"/appointments/{appointment.id}/summary", data={
        "text": "Rest the knee; ice twice a day.", "action": "publish", "csrf_token": await csrf_token(client)})
    assert posted.status_code == 303

    await login(client, patient.email)
    page = await client.get(f"/appointments/{appointment.id}")
    assert "Rest the knee; ice twice a day." in page.text and "; updated " in page.text
    assert "<textarea" not in page.text.split('id="visit-summary"', 1)[1].split("</section>", 1)[0]
    await login(client, people["stranger"].email)
    assert (await client.get(url)).status_code == 404
    admin_secret = pyotp.random_base32()
    await make_user(Role.ADMIN, "admin@example.org", name="Ada Admin", totp_secret=admin_secret)
    await login(client, "admin@example.org", totp_secret=admin_secret)
    assert (await client.get(url)).status_code == 404
    page = await client.get(f"/appointments/{appointment.id}")
    assert page.status_code == 200 and "Rest the knee" not in page.text and "Visit summary" not in page.text
