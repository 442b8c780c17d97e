"""The booking and credits API over HTTP, on SQLite and PostgreSQL: limits at save time,
ownership, idempotency, cancellation and rescheduling, outcomes and earnings, events."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pyotp
import pytest
from icalendar import Calendar

from caretrack.booking.models import Appointment, DoctorProfile
from caretrack.booking.schemas import BookSlot, HoldSlot, OutcomeRequest, RescheduleRequest
from caretrack.core.outbox.models import Event
from caretrack.core.roles import Role
from caretrack.mail.models import OutboundEmail
from caretrack.payments import ledger
from tests.booking.conftest import give, make_doctor, next_hour
from tests.helpers import csrf_token, login, make_user


async def signed_in_patient(client, credits=0, email="pat@example.org", tz="Europe/London"):
    patient = await make_user(Role.PATIENT, email, name="Pat Patient", time_zone=tz)
    if credits:
        await give(patient, credits)
    await login(client, email)
    client.headers["x-csrf-token"] = await csrf_token(client, "/patient")
    return patient


async def signed_in_doctor(client, doctor_email="dr@example.org"):
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, doctor_email, name="Dr Who", totp_secret=secret)
    await login(client, doctor_email, totp_secret=secret)
    client.headers["x-csrf-token"] = await csrf_token(client, "/doctor")
    return doctor, secret


async def test_book_pay_cancel_with_events_emails_and_ics(client):
    admin = await make_user(Role.ADMIN, "feed-admin@example.org", name="Feed Admin")
    doctor = await make_doctor("Dr Ada", fee=12)
    patient = await signed_in_patient(client, credits=30)
    search = (await client.get("/api/v1/doctors", params={"specialty": "general", "language": "english"})).json()
    assert [d["name"] for d in search["doctors"]] == ["Dr Ada"]
    slots = (await client.get(f"/api/v1/doctors/{doctor.id}/slots", params={"days": 3})).json()
    later = datetime.now(UTC) + timedelta(hours=30)  # before the 24-hour cutoff
    first = next(s for s in slots["slots"] if datetime.fromisoformat(s["starts_at"]) > later)
    # local_start is in the patient's zone
    assert datetime.fromisoformat(first["local_start"]) == datetime.fromisoformat(first["starts_at"])
    assert slots["time_zone"] == "Europe/London"

    body = {"doctor_id": doctor.id, "starts_at": first["starts_at"]}
    held = await client.post("/api/v1/holds", json=body)
    assert held.status_code == 201 and held.json()["status"] == "held"
    created = await client.post("/api/v1/bookings", json=body, headers={"idempotency-key": "abc"})
    assert created.status_code == 201, created.text
    appointment = created.json()
    assert appointment["status"] == "booked" and appointment["id"] == held.json()["id"]  # the hold was converted
    again = await client.post("/api/v1/bookings", json=body, headers={"idempotency-key": "abc"})
    assert again.json()["id"] == appointment["id"]
    assert (await client.get("/api/v1/credits")).json()["balance"] == 18

    types = [e.type for e in await Event.all().order_by("id")]
    assert "booking.created" in types
    from caretrack.core.outbox import store as outbox

    admin_feed = [d.event.type for d in await outbox.read_after(admin.id, 0)]
    assert "booking.created" in admin_feed  # the admins' live activity feed shows bookings
    event = await Event.filter(type="booking.created").first()
    data = json.loads(event.data)
    fresh = (await client.get(f"/api/v1/appointments/{appointment['id']}")).json()
    for key in ("id", "status", "doctor_id", "patient_id", "fee_credits", "doctor_name", "patient_name"):
        assert data[key] == fresh[key]
    assert datetime.fromisoformat(data["starts_at"]) == datetime.fromisoformat(fresh["starts_at"])

    emails = await OutboundEmail.filter(subject__startswith="Your consultation is booked").order_by("id")
    assert {e.to_address for e in emails} == {patient.email, doctor.email}
    attachment = json.loads(emails[0].attachments)[0]
    assert attachment["content_type"] == "text/calendar"
    import base64

    ics = Calendar.from_ical(base64.b64decode(attachment["content_b64"]))
    vevent = ics.walk("VEVENT")[0]
    assert vevent.decoded("dtstart") == datetime.fromisoformat(first["starts_at"])
    assert vevent.decoded("dtend") - vevent.decoded("dtstart") == timedelta(minutes=30)

    cancelled = await client.post(f"/api/v1/appointments/{appointment['id']}/cancel", json={"reason": "better"})
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["refunded_credits"] == 12
    assert (await client.get("/api/v1/credits")).json()["balance"] == 30
    # the slot is free again
    slots_after = (await client.get(f"/api/v1/doctors/{doctor.id}/slots", params={"days": 3})).json()
    assert first["starts_at"] in [s["starts_at"] for s in slots_after["slots"]]
    assert (await ledger.check_ledger()).ok


async def test_another_patients_appointment_is_404_and_openapi_lists_booking(client):
    doctor = await make_doctor()
    other = await make_user(Role.PATIENT, "other@example.org")
    await give(other, 20)
    from caretrack.booking import service
    from tests.conftest import base_settings

    theirs = await service.do_book(base_settings(), other, BookSlot(doctor_id=doctor.id, starts_at=next_hour()))
    await signed_in_patient(client, credits=20)
    for path in (f"/api/v1/appointments/{theirs.id}",):
        response = await client.get(path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert (await client.post(f"/api/v1/appointments/{theirs.id}/cancel", json={})).status_code == 404
    assert (await client.get(f"/appointments/{theirs.id}")).status_code == 404
    document = (await client.get("/api/v1/openapi.json")).json()
    for path in ("/api/v1/bookings", "/api/v1/holds", "/api/v1/doctors/{doctor_id}/slots",
                 "/api/v1/appointments/{appointment_id}/reschedule", "/api/v1/credits/purchases"):
        assert path in document["paths"], path
    assert "SlotRequest" in document["components"]["schemas"]


async def test_limits_are_enforced_when_saving(client):
    soon = await make_doctor(min_notice_minutes=24 * 60, horizon_days=5)
    expiring = await make_doctor(licence_days=2)
    pending = await make_doctor()
    await DoctorProfile.filter(user_id=pending.id).update(status="pending")
    await signed_in_patient(client, credits=100)

    async def book(doctor, start):
        return await client.post("/api/v1/bookings", json={"doctor_id": doctor.id, "starts_at": start.isoformat()})

    too_soon = await book(soon, next_hour(2))
    assert too_soon.status_code == 422 and "notice" in too_soon.json()["error"]["message"]
    too_far = await book(soon, next_hour(24 * 7))
    assert too_far.status_code == 422 and "days ahead" in too_far.json()["error"]["message"]
    not_a_slot = await book(soon, next_hour(48) + timedelta(minutes=10))
    assert not_a_slot.status_code == 422 and "not one of" in not_a_slot.json()["error"]["message"]
    past_licence = await book(expiring, next_hour(24 * 5))
    assert past_licence.status_code == 422 and "licence" in past_licence.json()["error"]["message"]
    assert (await book(pending, next_hour())).status_code == 404
    assert (await client.get(f"/api/v1/doctors/{pending.id}/slots")).status_code == 404
    assert (await book(soon, next_hour(48))).status_code == 201
    assert await Appointment.filter(status="booked").count() == 1


async def test_late_cancellation_follows_the_policy_fixed_at_booking(database):
    from caretrack.booking import service
    from caretrack.booking.models import Availability
    from tests.booking.conftest import make_patient

    doctor = await make_doctor(fee=10, cancel_cutoff_hours=24, late_cancel_refund_percent=50)
    patient = await make_patient(credits=30)
    start = next_hour(30)
    early = await service.do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=start))
    late = await service.do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=start + timedelta(hours=1)))
    # the doctor tightens the policy afterwards: the bookings keep theirs
    await Availability.filter(doctor_id=doctor.id).update(late_cancel_refund_percent=0, cancel_cutoff_hours=48)
    cancelled = await service.do_cancel(database, patient, early.id, at=start - timedelta(hours=25))
    assert cancelled.refunded_credits == 10
    cancelled = await service.do_cancel(database, patient, late.id, at=start - timedelta(hours=2))
    assert cancelled.refunded_credits == 5
    assert await ledger.balance(ledger.credits(patient.id)) == 25
    # the kept half is the doctor's, less the platform's 20%
    assert await ledger.balance(ledger.earnings(doctor.id)) == 4
    assert await ledger.balance(ledger.PLATFORM) == 1
    assert (await ledger.check_ledger()).ok


async def test_doctor_cancels_late_with_full_refund_and_reschedule_keeps_payment(database):
    from caretrack.booking import service
    from tests.booking.conftest import make_patient

    doctor = await make_doctor(fee=10, late_cancel_refund_percent=0)
    patient = await make_patient(credits=20)
    start = next_hour(3)
    a = await service.do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=start))
    b = await service.do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=start + timedelta(hours=1)))
    with pytest.raises(Exception, match="too late"):
        await service.do_reschedule(database, patient, a.id, RescheduleRequest(starts_at=start + timedelta(hours=5)))
    moved = await service.do_reschedule(database, doctor, a.id, RescheduleRequest(starts_at=start + timedelta(hours=5)))
    assert moved.starts_at == start + timedelta(hours=5) and moved.status == "booked"
    with pytest.raises(service.SlotTaken):  # re-checked: cannot move onto another booking
        await service.do_reschedule(database, doctor, a.id, RescheduleRequest(starts_at=start + timedelta(hours=1)))
    assert await ledger.balance(ledger.credits(patient.id)) == 0   # the move kept the payment
    cancelled = await service.do_cancel(database, doctor, b.id)
    assert cancelled.refunded_credits == 10
    assert await ledger.balance(ledger.credits(patient.id)) == 10


async def test_outcomes_only_after_the_start_and_earnings_less_platform_share(database):
    from caretrack.booking import service
    from tests.booking.conftest import make_patient

    doctor = await make_doctor(fee=25)
    patient = await make_patient(credits=50)
    start = next_hour(2)
    a = await service.do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=start))
    b = await service.do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=start + timedelta(hours=1)))
    with pytest.raises(Exception, match="after its start"):
        await service.do_record_outcome(database, doctor, a.id, OutcomeRequest(outcome="no_show"))
    done = await service.do_record_outcome(database, doctor, a.id, OutcomeRequest(outcome="completed"),
                                           at=start + timedelta(minutes=31))
    assert done.status == "completed"
    await service.do_record_outcome(database, doctor, b.id, OutcomeRequest(outcome="no_show"),
                                    at=start + timedelta(hours=1, minutes=10))
    assert await ledger.balance(ledger.earnings(doctor.id)) == 40   # 2 x (25 - 20%)
    assert await ledger.balance(ledger.PLATFORM) == 10
    assert await ledger.balance(ledger.escrow(doctor.id)) == 0
    assert await service.doctor_has_patient(doctor.id, patient.id)
    assert not await service.doctor_has_patient(doctor.id, (await make_patient()).id)
    with pytest.raises(Exception, match="already"):
        await service.do_record_outcome(database, doctor, a.id, OutcomeRequest(outcome="completed"),
                                        at=start + timedelta(hours=3))


async def test_holds_block_others_for_five_minutes(database, now):
    from caretrack.booking import service
    from tests.booking.conftest import make_patient

    doctor = await make_doctor()
    a, b = await make_patient(credits=10), await make_patient(credits=10)
    start = next_hour(at=now)
    await service.do_hold(a, HoldSlot(doctor_id=doctor.id, starts_at=start), at=now)
    with pytest.raises(service.SlotTaken):
        await service.do_hold(b, HoldSlot(doctor_id=doctor.id, starts_at=start), at=now + timedelta(minutes=4))
    with pytest.raises(service.SlotTaken):
        await service.do_book(database, b, BookSlot(doctor_id=doctor.id, starts_at=start),
                              at=now + timedelta(minutes=4))
    assert start not in [s.starts_at for s in await service.list_slots(doctor.id, at=now, days=4)]
    booked = await service.do_book(database, b, BookSlot(doctor_id=doctor.id, starts_at=start),
                                   at=now + timedelta(minutes=6))
    assert booked.patient_id == b.id
    assert await Appointment.filter(status="expired").count() == 1


async def test_the_hold_form_holds_a_slot_and_names_a_doctor_id_the_database_cannot_hold(client, now):
    doctor = await make_doctor()
    await signed_in_patient(client)
    starts_at = next_hour(at=now).isoformat()
    held = await client.post("/holds", data={"doctor_id": str(doctor.id), "starts_at": starts_at})
    assert held.status_code == 303 and held.headers["location"].startswith("/appointments/"), held.text[-2000:]
    for bad in ("99999999999999999999", "2147483648", "-1", "1e3", " 7"):
        refused = await client.post("/holds", data={"doctor_id": bad, "starts_at": starts_at})
        assert refused.status_code == 422, (bad, refused.status_code)
        assert "doctor_id&#39; must be an id (a whole number from 1 to 2147483647)" in refused.text, bad


async def test_calendar_feed_is_private_and_revocable(client):
    doctor = await make_doctor("Dr Feed")
    patient = await signed_in_patient(client, credits=20)
    from caretrack.booking import service
    from tests.conftest import base_settings

    await service.do_book(base_settings(), patient, BookSlot(doctor_id=doctor.id, starts_at=next_hour()))
    url = (await client.post("/api/v1/me/calendar-feed")).json()["url"]
    path = url.split("testserver", 1)[1]
    client.cookies.clear()
    feed = await client.get(path)
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    events = Calendar.from_ical(feed.content).walk("VEVENT")
    assert [str(e["summary"]) for e in events] == ["Video consultation with Dr Feed"]
    await login(client, patient.email)
    client.headers["x-csrf-token"] = await csrf_token(client, "/patient")
    new_url = (await client.post("/api/v1/me/calendar-feed")).json()["url"]
    assert new_url != url
    assert (await client.get(path)).status_code == 404
    signed_in_fetch = await client.get(new_url.split("testserver", 1)[1])
    assert signed_in_fetch.status_code == 200
    # The feed's own cache policy stands, even for a signed-in caller (no-store only fills a gap).
    assert signed_in_fetch.headers["cache-control"] == "private, max-age=300"


@pytest.mark.parametrize("zone, day", [("Europe/London", date(2027, 3, 28)), ("America/New_York", date(2027, 3, 14))])
async def test_a_booking_on_a_dst_day_has_the_right_utc_time_in_its_ics(database, zone, day):
    from caretrack.booking import service
    from caretrack.booking.calendar import appointment_ics
    from tests.booking.conftest import make_patient

    weekday = day.weekday()
    doctor = await make_doctor(time_zone=zone, weekly=[{"weekday": weekday, "start": "09:00", "end": "10:00"}],
                               horizon_days=365, licence_days=900)
    patient = await make_patient(credits=10)
    at = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=3)
    slots = await service.list_slots(doctor.id, at=at, days=7)
    summer_offset = {"Europe/London": 1, "America/New_York": -4}[zone]
    expected = datetime(day.year, day.month, day.day, 9, tzinfo=UTC) - timedelta(hours=summer_offset)
    assert slots[0].starts_at == expected
    appointment = await service.do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=expected), at=at)
    event = Calendar.from_ical(appointment_ics(appointment, doctor, patient, database)).walk("VEVENT")[0]
    assert event.decoded("dtstart") == expected
