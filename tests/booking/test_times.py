"""Times as people read them, at pinned instants: a Berlin doctor's 09:05 booking reads 09:05
(Europe/Berlin) on their dashboard, the appointment and call pages and in their email, on a
daylight-saving change day too; the appointment's .ics (access, zone, join link, cancellation);
an admin downloads an email's attachment; an expired hold explains itself."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pyotp
from icalendar import Calendar

from caretrack.accounts.models import User
from caretrack.booking import service
from caretrack.booking.models import ApplicationStatus, Availability, DoctorProfile
from caretrack.booking.schemas import BookSlot, CancelRequest, HoldSlot, RescheduleRequest
from caretrack.booking.zones import working_zone
from caretrack.core import timetext
from caretrack.core.outbox.models import Event
from caretrack.core.roles import Role
from caretrack.mail.models import OutboundEmail
from tests.booking.conftest import give
from tests.helpers import csrf_token, login, make_user

# Tuesday 1 December 2026, 08:00 UTC (09:00 in Berlin); the slot is Wednesday 2 December 09:05 Berlin.
AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SLOT = datetime(2026, 12, 2, 8, 5, tzinfo=UTC)
# Sunday 29 March 2026: Berlin moves from +01:00 to +02:00 at 01:00 UTC; 09:05 is 07:05 UTC that day.
DST_AT = datetime(2026, 3, 28, 6, 0, tzinfo=UTC)
DST_SLOTS = (datetime(2026, 3, 28, 8, 5, tzinfo=UTC), datetime(2026, 3, 29, 7, 5, tzinfo=UTC))
MORNINGS = [{"weekday": d, "start": "09:05", "end": "10:05"} for d in range(7)]


async def berlin_doctor(email: str = "berlin@example.org", *, profile_zone: str = "UTC") -> tuple[User, str]:
    """An approved doctor whose hours are published in Berlin; the profile keeps its default zone."""
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, email, name="Dr Berlin", totp_secret=secret, time_zone=profile_zone)
    await DoctorProfile.create(user=doctor, status=ApplicationStatus.APPROVED, licence_number="GMC12345",
                               licence_body="General Medical Council", licence_expires_on=date(2030, 1, 1),
                               specialty="General practice", languages="english",
                               biography="A doctor who exists for the tests.", fee_credits=10, submitted_at=AT)
    await Availability.create(doctor=doctor, time_zone="Europe/Berlin", weekly=MORNINGS, consultation_minutes=30,
                              min_notice_minutes=0, horizon_days=365, cancel_cutoff_hours=1)
    return doctor, secret


async def london_patient(email: str = "pat@example.org") -> User:
    patient = await make_user(Role.PATIENT, email, name="Pat Patient", time_zone="Europe/London")
    await give(patient, 100)
    return patient


async def as_doctor(client, doctor: User, secret: str) -> None:
    client.headers.pop("x-csrf-token", None)  # the previous session's
    await login(client, doctor.email, totp_secret=secret)


async def test_a_berlin_doctor_reads_0905_on_dashboard_pages_and_email(app, client, settings):
    app.state.clock = lambda: AT
    doctor, secret = await berlin_doctor()
    patient = await london_patient()
    assert await working_zone(doctor) == "Europe/Berlin" and await working_zone(patient) == "Europe/London"
    booked = await service.do_book(settings, patient, BookSlot(doctor_id=doctor.id, starts_at=SLOT), at=AT)

    await as_doctor(client, doctor, secret)
    dashboard = (await client.get("/doctor")).text
    assert "Wed 2 Dec, 09:05 (Europe/Berlin) — Pat Patient" in dashboard and "08:05" not in dashboard
    page = (await client.get(f"/appointments/{booked.id}")).text
    assert "Wednesday, 2 December 2026, 09:05–09:35 (Europe/Berlin)" in page
    call = (await client.get(f"/consultations/{booked.id}")).text
    opens = SLOT - timedelta(minutes=settings.call_window_minutes)
    assert f"this consultation opens at {opens.astimezone(ZoneInfo('Europe/Berlin')):%H:%M} " \
           "(Europe/Berlin), Wed 2 Dec" in call
    assert "+00:00" not in call

    to_doctor = await OutboundEmail.get(to_address=doctor.email)
    to_patient = await OutboundEmail.get(to_address=patient.email)
    said = "Wednesday, 2 December 2026, 09:05 (Europe/Berlin)"
    assert said in to_doctor.subject and said in to_doctor.text_body and said in to_doctor.html_body
    assert "(UTC" not in to_doctor.text_body
    assert "Wednesday, 2 December 2026, 08:05 (Europe/London)" in to_patient.text_body

    # the profile says otherwise: a zone the doctor chose wins over the hours' zone
    await User.filter(id=doctor.id).update(time_zone="America/New_York")
    assert "Wed 2 Dec, 03:05 (America/New_York)" in (await client.get("/doctor")).text


async def test_a_move_tells_each_person_the_old_and_new_times_on_their_own_clock(database):
    doctor, _ = await berlin_doctor()
    patient = await london_patient()
    booked = await service.do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=SLOT), at=AT)
    later = SLOT + timedelta(minutes=30)
    await service.do_reschedule(database, patient, booked.id, RescheduleRequest(starts_at=later), at=AT)
    to_doctor = await OutboundEmail.get(to_address=doctor.email, subject__startswith="Consultation moved")
    to_patient = await OutboundEmail.get(to_address=patient.email, subject__startswith="Consultation moved")
    assert "moved to Wednesday, 2 December 2026, 09:35 (Europe/Berlin)" in to_doctor.text_body
    assert "It was at Wednesday, 2 December 2026, 09:05 (Europe/Berlin)." in to_doctor.text_body
    assert "It was at Wednesday, 2 December 2026, 08:05 (Europe/London)." in to_patient.text_body
    event = await Event.get(type="booking.rescheduled")
    data = json.loads(event.data)
    assert data["previous_starts_at"] == SLOT.isoformat() and data["starts_at"] == later.isoformat()


async def test_a_daylight_saving_day_keeps_the_wall_clock_on_pages_and_in_the_ics(app, client, settings):
    app.state.clock = lambda: DST_AT
    doctor, secret = await berlin_doctor()
    patient = await london_patient()
    slots = {s.starts_at for s in await service.list_slots(doctor.id, days=3, at=DST_AT)}
    assert set(DST_SLOTS) <= slots  # 09:05 Berlin either side of the change, an hour apart in UTC
    await as_doctor(client, doctor, secret)
    for start, day, local_day in ((DST_SLOTS[0], "Saturday, 28 March 2026", "20260328"),
                                  (DST_SLOTS[1], "Sunday, 29 March 2026", "20260329")):
        booked = await service.do_book(settings, patient, BookSlot(doctor_id=doctor.id, starts_at=start), at=DST_AT)
        page = (await client.get(f"/appointments/{booked.id}")).text
        assert f"{day}, 09:05–09:35 (Europe/Berlin)" in page
        ics = await client.get(f"/appointments/{booked.id}/calendar.ics")
        assert f"DTSTART;TZID=Europe/Berlin:{local_day}T090500" in ics.text
        event = Calendar.from_ical(ics.content).walk("VEVENT")[0]
        assert event.decoded("dtstart") == start
    assert timetext.show(DST_SLOTS[1], "Europe/London", "time") == "08:05 (Europe/London)"  # BST began too


async def test_the_ics_link_is_only_for_the_patient_and_the_doctor_and_says_a_cancellation(app, client, settings):
    app.state.clock = lambda: AT
    doctor, secret = await berlin_doctor()
    patient = await london_patient()
    other = await london_patient("other@example.org")
    admin_secret = pyotp.random_base32()
    await make_user(Role.ADMIN, "admin@example.org", name="Ada Admin", totp_secret=admin_secret)
    booked = await service.do_book(settings, patient, BookSlot(doctor_id=doctor.id, starts_at=SLOT), at=AT)
    url = f"/appointments/{booked.id}/calendar.ics"

    await login(client, patient.email)
    page = (await client.get(f"/appointments/{booked.id}")).text
    assert f'href="{url}" id="add-to-calendar"' in page
    ics = await client.get(url)
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    assert ics.headers["content-disposition"] == f'attachment; filename="appointment-{booked.id}.ics"'
    calendar = Calendar.from_ical(ics.content)
    [event] = calendar.walk("VEVENT")
    assert str(calendar["method"]) == "PUBLISH" and str(event["status"]) == "CONFIRMED"
    assert [str(z["tzid"]) for z in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert "DTSTART;TZID=Europe/Berlin:20261202T090500" in ics.text
    assert str(event["summary"]) == "Video consultation with Dr Berlin"
    assert f"http://testserver/consultations/{booked.id}" in str(event["description"])

    for who, password_secret in ((other, None), ("admin@example.org", admin_secret)):
        email = who if isinstance(who, str) else who.email
        await login(client, email, totp_secret=password_secret)
        assert (await client.get(url)).status_code == 404
    client.cookies.clear()
    assert (await client.get(url)).headers.get("location", "").startswith("/login")

    await service.do_cancel(settings, patient, booked.id, CancelRequest(reason="moving"), at=AT)
    await as_doctor(client, doctor, secret)
    cancelled = Calendar.from_ical((await client.get(url)).content)
    [event] = cancelled.walk("VEVENT")
    assert str(cancelled["method"]) == "CANCEL" and str(event["status"]) == "CANCELLED"
    assert str(event["summary"]) == "Video consultation with Pat Patient"


async def test_an_admin_downloads_an_emails_ics_attachment(app, client, settings):
    app.state.clock = lambda: AT
    doctor, _ = await berlin_doctor()
    patient = await london_patient()
    await service.do_book(settings, patient, BookSlot(doctor_id=doctor.id, starts_at=SLOT), at=AT)
    admin_secret = pyotp.random_base32()
    await make_user(Role.ADMIN, "admin@example.org", name="Ada Admin", totp_secret=admin_secret)
    email = await OutboundEmail.get(to_address=patient.email)
    [stored] = json.loads(email.attachments)

    await login(client, "admin@example.org", totp_secret=admin_secret)
    page = (await client.get(f"/admin/emails/{email.id}")).text
    link = f"/admin/emails/{email.id}/attachments/0"
    assert f'href="{link}"' in page and stored["filename"] in page
    download = await client.get(link)
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/calendar")
    assert f'filename="{stored["filename"]}"' in download.headers["content-disposition"]
    assert "BEGIN:VCALENDAR" in download.text and "Europe/Berlin" in download.text
    assert (await client.get(f"/admin/emails/{email.id}/attachments/1")).status_code == 404
    await login(client, patient.email)
    assert (await client.get(link)).status_code == 403


async def test_an_expired_hold_explains_itself_to_its_patient_only(app, client, settings):
    app.state.clock = lambda: AT
    doctor, secret = await berlin_doctor()
    patient = await london_patient()
    other = await london_patient("other@example.org")
    hold = await service.do_hold(patient, HoldSlot(doctor_id=doctor.id, starts_at=SLOT), at=AT)
    await login(client, patient.email)
    held = (await client.get(f"/appointments/{hold.id}")).text
    assert "This time is held for you until 08:05 (Europe/London)" in held

    app.state.clock = lambda: AT + timedelta(minutes=6)  # past the 5-minute hold
    page = await client.get(f"/appointments/{hold.id}")
    assert page.status_code == 200
    said = "This hold expired at 08:05 (Europe/London), Tue 1 Dec"
    assert said in page.text and f'href="/doctors/{doctor.id}" id="choose-again"' in page.text
    assert "Pay 10 credits and book" not in page.text
    client.headers["x-csrf-token"] = await csrf_token(client, "/patient")
    api = (await client.get(f"/api/v1/appointments/{hold.id}")).json()
    assert api["status"] == "expired" and api["notice"].startswith(said)
    assert api["slots_url"] == f"/api/v1/doctors/{doctor.id}/slots"
    refused = await client.post(f"/appointments/{hold.id}/book", data={"csrf_token": client.headers["x-csrf-token"]})
    assert refused.status_code == 409 and said in refused.text
    assert await service.list_appointments(patient) == []  # nothing was booked

    # a new hold marks the lapsed one expired; it still explains itself to its patient
    await service.do_hold(patient, HoldSlot(doctor_id=doctor.id, starts_at=SLOT + timedelta(minutes=30)),
                          at=AT + timedelta(minutes=6))
    assert said in (await client.get(f"/appointments/{hold.id}")).text
    await login(client, other.email)
    assert (await client.get(f"/appointments/{hold.id}")).status_code == 404
    assert (await client.get(f"/api/v1/appointments/{hold.id}")).status_code == 404
    await as_doctor(client, doctor, secret)
    assert (await client.get(f"/appointments/{hold.id}")).status_code == 404  # never the doctor's appointment


def test_show_names_the_zone_in_every_style_and_follows_the_locale():
    moment = datetime(2026, 12, 2, 8, 50, tzinfo=UTC)
    assert timetext.show(moment, "Europe/Berlin") == "Wednesday, 2 December 2026, 09:50 (Europe/Berlin)"
    assert timetext.show(moment, "Europe/Berlin", "short") == "Wed 2 Dec, 09:50 (Europe/Berlin)"
    assert timetext.show(moment, "Europe/Berlin", "at") == "09:50 (Europe/Berlin), Wed 2 Dec"
    assert timetext.show(moment, "Europe/Berlin", "clock") == "09:50"
    assert timetext.show(moment, "Not/AZone", "time") == "08:50 (UTC)"
    assert timetext.show(moment, "America/New_York", "at", locale="en_US") == \
        "3:50\u202fAM (America/New_York), Wed, Dec 2"
    assert timetext.show_span(moment, moment + timedelta(hours=16), "Europe/Berlin") == \
        "Wednesday, 2 December 2026, 09:50–Thu 3 Dec, 01:50 (Europe/Berlin)"
    assert timetext.show_day(date(2026, 12, 2)) == "Wednesday 2 December"
