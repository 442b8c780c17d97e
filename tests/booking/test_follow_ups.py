"""Follow-up offers: the doctor offers one free slot or a date range, the patient books it in
one step through the normal booking path (charged once), and an offer that expired or whose
time was taken meanwhile says so."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pyotp
import pytest

from caretrack.accounts import passwords
from caretrack.accounts.models import User
from caretrack.booking import followups
from caretrack.booking.followup_models import FollowUpOffer
from caretrack.booking.followup_schemas import FollowUpBook, FollowUpCreate
from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.booking.schemas import BookSlot
from caretrack.booking.service import SlotTaken, do_book, do_cancel
from caretrack.core import crypto
from caretrack.core.errors import Forbidden, NotFound, ValidationError
from caretrack.core.outbox.models import Event
from caretrack.intake import service as intake
from caretrack.intake.schemas import TypeIn
from caretrack.mail.models import OutboundEmail
from caretrack.payments import ledger
from caretrack.payments import service as payments
from tests.booking.conftest import make_doctor, make_patient
from tests.helpers import PASSWORD, csrf_token, login

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # the first consultation is at 10:00
AFTER = T0 + timedelta(hours=2)  # the doctor offers a follow-up after it
NEXT_WEEK = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


async def _visit(settings, *, credits: int = 25):
    doctor = await make_doctor("Dr Follow", fee=10, licence_days=3650)
    patient = await make_patient(credits, name="Pat Follow")
    first = await do_book(settings, patient, BookSlot(doctor_id=doctor.id, starts_at=T0 + timedelta(hours=1)), at=T0)
    return doctor, patient, first


async def test_a_slot_offered_is_booked_in_one_step_and_charged_once(database):
    doctor, patient, first = await _visit(database)
    zone, slots = await followups.offerable_slots(doctor, first.id, at=AFTER)
    assert zone == "UTC" and slots[0].starts_at >= first.ends_at
    offer = await followups.do_offer(database, doctor, first.id, FollowUpCreate(starts_at=NEXT_WEEK), at=AFTER)
    assert offer.expires_at == NEXT_WEEK, "open until its time can no longer be booked (no notice needed here)"

    [event] = await Event.filter(type="booking.follow_up_offered")
    assert json.loads(event.data) == {"offer_id": offer.id, "appointment_id": first.id,
                                      "expires_at": NEXT_WEEK.isoformat()}
    notice = await OutboundEmail.filter(to_address=patient.email).order_by("-id").first()
    assert notice.subject == "Your doctor offers a follow-up consultation"
    assert f"/follow-ups/{offer.id}" in notice.text_body and "Tuesday, 8 December 2026, 09:00 (UTC)" in notice.text_body

    view = await followups.view(offer, patient, AFTER)
    assert (view.state, view.kind, [s.starts_at for s in view.slots], view.fee_credits) == (
        "open", "slot", [NEXT_WEEK], 10)
    assert await payments.balance_of(patient) == 15
    with pytest.raises(Forbidden):
        await followups.do_accept(database, doctor, offer.id, FollowUpBook(), at=AFTER)
    booked = await followups.do_accept(database, patient, offer.id, FollowUpBook(), at=AFTER)
    again = await followups.do_accept(database, patient, offer.id, FollowUpBook(), at=AFTER + timedelta(minutes=1))
    assert again.id == booked.id
    assert (booked.status, booked.starts_at, booked.doctor_id) == (AppointmentStatus.BOOKED, NEXT_WEEK, doctor.id)
    assert await payments.balance_of(patient) == 5, "the follow-up was charged once, at the doctor's fee"
    assert await ledger.balance(ledger.escrow(doctor.id)) == 20
    assert (await followups.view(await FollowUpOffer.get(id=offer.id), patient, AFTER)).state == "booked"
    [event] = await Event.filter(type="booking.follow_up_booked")
    assert json.loads(event.data) == {"offer_id": offer.id, "appointment_id": first.id,
                                      "booked_appointment_id": booked.id}
    assert await Event.filter(type="booking.created", subject_id=str(booked.id)).count() == 1


async def test_only_the_appointments_doctor_offers_and_only_its_people_see_the_offer(database):
    doctor, patient, first = await _visit(database)
    stranger = await make_patient(50)
    other_doctor = await make_doctor(licence_days=3650)
    with pytest.raises(Forbidden):
        await followups.do_offer(database, patient, first.id, FollowUpCreate(starts_at=NEXT_WEEK), at=AFTER)
    for outsider in (stranger, other_doctor):
        with pytest.raises(NotFound):
            await followups.do_offer(database, outsider, first.id, FollowUpCreate(starts_at=NEXT_WEEK), at=AFTER)
    with pytest.raises(ValidationError, match="after this consultation ends"):
        await followups.do_offer(database, doctor, first.id, FollowUpCreate(starts_at=T0), at=AFTER)
    with pytest.raises(SlotTaken, match="not one of your free slots"):
        await followups.do_offer(database, doctor, first.id,
                                 FollowUpCreate(starts_at=NEXT_WEEK + timedelta(minutes=10)), at=AFTER)
    offer = await followups.do_offer(database, doctor, first.id, FollowUpCreate(starts_at=NEXT_WEEK), at=AFTER)
    for outsider in (stranger, other_doctor):
        with pytest.raises(NotFound):
            await followups.get_offer(outsider, offer.id)
        with pytest.raises(NotFound):
            await followups.do_accept(database, outsider, offer.id, FollowUpBook(), at=AFTER)
    assert await payments.balance_of(stranger) == 50


async def test_a_time_taken_meanwhile_and_an_expired_offer_say_so(database):
    doctor, patient, first = await _visit(database)
    offer = await followups.do_offer(database, doctor, first.id, FollowUpCreate(starts_at=NEXT_WEEK), at=AFTER)
    rival = await make_patient(20)
    await do_book(database, rival, BookSlot(doctor_id=doctor.id, starts_at=NEXT_WEEK), at=AFTER)
    assert (await followups.view(offer, patient, AFTER)).slots == []
    with pytest.raises(SlotTaken, match="the time your doctor offered, has been taken since"):
        await followups.do_accept(database, patient, offer.id, FollowUpBook(), at=AFTER)
    assert await payments.balance_of(patient) == 15, "nothing charged"

    later = await followups.do_offer(database, doctor, first.id,
                                     FollowUpCreate(starts_at=NEXT_WEEK + timedelta(days=10)), at=AFTER)
    expired_at = AFTER + followups.OFFER_LIFETIME
    assert (await followups.view(later, patient, expired_at)).state == "expired"
    with pytest.raises(followups.OfferExpired, match="This follow-up offer expired on"):
        await followups.do_accept(database, patient, later.id, FollowUpBook(), at=expired_at)
    assert await Appointment.filter(patient_id=patient.id).count() == 1


async def test_a_range_of_dates_lets_the_patient_choose_a_free_time_in_it(database):
    doctor, patient, first = await _visit(database)
    make = followups.do_offer
    for command, message in (
        (FollowUpCreate(from_date=date(2026, 11, 30), until_date=date(2026, 12, 4)), "start in the past"),
        (FollowUpCreate(from_date=date(2026, 12, 10), until_date=date(2026, 12, 9)), "before the first"),
        (FollowUpCreate(from_date=date(2026, 12, 2), until_date=date(2027, 1, 5)), "at most 31 days"),
        (FollowUpCreate(from_date=date(2027, 3, 1), until_date=date(2027, 3, 2)), "at most 60 days ahead"),
    ):
        with pytest.raises(ValidationError, match=message):
            await make(database, doctor, first.id, command, at=AFTER)
    offer = await make(database, doctor, first.id, FollowUpCreate(from_date=date(2026, 12, 8),
                                                                   until_date=date(2026, 12, 9)), at=AFTER)
    assert offer.expires_at == datetime(2026, 12, 10, tzinfo=UTC)
    view = await followups.view(offer, patient, AFTER)
    assert view.description == "any free time from Tuesday 08 December to Wednesday 09 December 2026 (UTC)"
    assert view.slots[0].starts_at == datetime(2026, 12, 8, tzinfo=UTC)
    assert len(view.slots) == 96, "every free half hour of both days"
    with pytest.raises(ValidationError, match="Choose one of the offered times"):
        await followups.do_accept(database, patient, offer.id, FollowUpBook(), at=AFTER)
    with pytest.raises(ValidationError, match="outside the offered dates"):
        await followups.do_accept(database, patient, offer.id, FollowUpBook(starts_at=NEXT_WEEK + timedelta(days=2)),
                                  at=AFTER)
    chosen = datetime(2026, 12, 9, 14, 30, tzinfo=UTC)
    booked = await followups.do_accept(database, patient, offer.id, FollowUpBook(starts_at=chosen), at=AFTER)
    assert booked.starts_at == chosen and await payments.balance_of(patient) == 5


async def test_the_pages_and_the_api(client):
    settings = client._transport.app.state.settings
    doctor, patient, first = await _visit(settings)
    secret = pyotp.random_base32()  # both sign in with a password, the doctor with a second factor too
    await User.filter(id=doctor.id).update(password_hash=passwords.hash_password(PASSWORD), email_verified_at=T0,
                                           totp_secret=crypto.seal(secret, "users.totp_secret"), totp_enrolled_at=T0)
    await User.filter(id=patient.id).update(password_hash=passwords.hash_password(PASSWORD), email_verified_at=T0)
    await login(client, doctor.email, totp_secret=secret)
    page = await client.get(f"/appointments/{first.id}")
    assert page.status_code == 200 and "Offer this time" in page.text and "Offer these dates" in page.text
    slot = (await client.get(f"/api/v1/appointments/{first.id}/follow-up-slots")).json()["slots"][3]
    refused = await client.post(f"/appointments/{first.id}/follow-ups", data={
        "from_date": "2026-12-10", "until_date": "2026-12-01", "csrf_token": await csrf_token(client)})
    assert refused.status_code == 422 and "The last date is before the first." in refused.text
    offered = await client.post(f"/appointments/{first.id}/follow-ups", data={
        "starts_at": slot["starts_at"], "csrf_token": await csrf_token(client)})
    assert offered.status_code == 303
    [offer] = await FollowUpOffer.all()
    both = await client.post(f"/api/v1/appointments/{first.id}/follow-ups",
                             json={"starts_at": slot["starts_at"], "from_date": "2026-12-10"},
                             headers={"x-csrf-token": await csrf_token(client)})
    assert both.status_code == 422
    for far in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00", "2126-01-01T00:00:00Z"):
        refused = await client.post(f"/api/v1/appointments/{first.id}/follow-ups", json={"starts_at": far},
                                    headers={"x-csrf-token": await csrf_token(client)})
        assert refused.status_code == 422, (far, refused.text)

    await login(client, patient.email)
    page = await client.get(f"/appointments/{first.id}")
    assert f'href="/follow-ups/{offer.id}"' in page.text and "book it" in page.text
    offer_page = await client.get(f"/follow-ups/{offer.id}")
    assert "Pay 10 credits and book" in offer_page.text and "you have 15" in offer_page.text
    booked = await client.post(f"/follow-ups/{offer.id}/book", data={
        "starts_at": slot["starts_at"], "csrf_token": await csrf_token(client)})
    assert booked.status_code == 303
    new_id = int(booked.headers["location"].rsplit("/", 1)[1])
    retry = await client.post(f"/api/v1/follow-ups/{offer.id}/book", json={},
                              headers={"x-csrf-token": await csrf_token(client)})
    assert retry.status_code == 201 and retry.json()["id"] == new_id
    odd = await client.post(f"/api/v1/follow-ups/{offer.id}/book", json={"starts_at": "0001-01-01T00:00:00+01:00"},
                            headers={"x-csrf-token": await csrf_token(client)})
    assert odd.status_code == 422 and "outside the range of times" in odd.json()["error"]["message"]
    assert await payments.balance_of(patient) == 5
    listed = (await client.get(f"/api/v1/appointments/{first.id}/follow-ups")).json()["offers"]
    assert [(o["state"], o["booked_appointment_id"]) for o in listed] == [("booked", new_id)]


async def test_a_follow_up_keeps_the_visits_consultation_type_and_is_withdrawn_when_the_visit_is_cancelled(database):
    doctor = await make_doctor("Dr Typed", fee=10, licence_days=3650)
    patient = await make_patient(40, name="Pat Typed")
    kind = await intake.do_create_type(doctor, TypeIn(name="Knee clinic"))
    first = await do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=T0 + timedelta(hours=1),
                                                       consultation_type_id=kind.id), at=T0)
    offer = await followups.do_offer(database, doctor, first.id, FollowUpCreate(starts_at=NEXT_WEEK), at=AFTER)
    booked = await followups.do_accept(database, patient, offer.id, FollowUpBook(), at=AFTER)
    assert booked.consultation_type_id == kind.id, "the follow-up is of the type of the visit it follows"

    second = await do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=NEXT_WEEK + timedelta(days=1),
                                                        consultation_type_id=kind.id), at=AFTER)
    withdrawn = await followups.do_offer(database, doctor, second.id,
                                         FollowUpCreate(starts_at=NEXT_WEEK + timedelta(days=2)), at=AFTER)
    await do_cancel(database, patient, second.id, at=AFTER)
    balance = await payments.balance_of(patient)
    with pytest.raises(followups.OfferExpired, match="withdrawn.*Cancelled by the patient"):
        await followups.do_accept(database, patient, withdrawn.id, FollowUpBook(), at=AFTER)
    assert await payments.balance_of(patient) == balance, "nothing charged for a withdrawn offer"
