"""Outcomes from attendance, on SQLite and PostgreSQL: the call's join and leave facts
(CallHooks, as signalling calls them) complete a consultation the doctor ends after the
patient joined, whatever the clock says; refuse "did not attend" once the patient joined;
and keep a consultation that took place from being cancelled or moved, on the pages and the
API. The status shows in words everywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from caretrack.accounts.models import User
from caretrack.booking import attendance, service
from caretrack.booking.attendance import Attendance
from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.booking.schemas import OutcomeRequest
from caretrack.booking.status import status_label
from caretrack.consultations.service import CallHooks
from caretrack.core.audit.models import AuditEntry
from caretrack.core.errors import Conflict
from caretrack.core.outbox import store as outbox
from caretrack.core.outbox.models import Event
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic
from caretrack.mail.models import OutboundEmail
from caretrack.payments import ledger
from caretrack.realtime import feed
from signalling import Principal
from tests.booking.conftest import give, make_doctor, make_patient, next_hour
from tests.helpers import csrf_token, login, make_user

START = datetime(2030, 6, 3, 10, 0, tzinfo=UTC)  # the nominal start of the consultations below
EARLY = START - timedelta(minutes=12)  # within the call window, before the start


async def booked(doctor: User, patient: User, starts_at: datetime = START, fee: int = 25) -> Appointment:
    """A paid booking as do_book leaves it: the fee in the doctor's escrow."""
    await give(patient, fee)
    async with atomic() as tx:
        await ledger.transfer(tx.conn, ledger.credits(patient.id), ledger.escrow(doctor.id), fee, "booking",
                              "tests")
    ends_at = starts_at + timedelta(minutes=30)
    return await Appointment.create(
        doctor=doctor, patient=patient, status=AppointmentStatus.BOOKED, starts_at=starts_at, ends_at=ends_at,
        blocked_from=starts_at, blocked_until=ends_at, time_zone="Europe/Berlin", fee_credits=fee,
        booked_at=starts_at - timedelta(days=2))


class Call:
    """One appointment's call as signalling drives the hooks, on a clock the test moves."""

    def __init__(self, settings, appointment: Appointment) -> None:
        self.at = EARLY
        self.hooks = CallHooks(settings, clock=lambda: self.at)
        self.id = str(appointment.id)
        self.doctor = Principal(str(appointment.doctor_id), "Dr")
        self.patient = Principal(str(appointment.patient_id), "Pat")

    async def join(self, who: Principal, role: str, at: datetime) -> str:
        self.at = at
        return await self.hooks.on_join(self.id, who, role)

    async def arrive(self, who: Principal, role: str, at: datetime) -> None:
        self.at = at
        await self.hooks.on_arrive(self.id, who, role)

    async def leave(self, who: Principal, stay: str, at: datetime) -> None:
        self.at = at
        await self.hooks.on_leave(self.id, who, stay)

    async def end(self, at: datetime) -> None:
        self.at = at
        await self.hooks.on_end(self.id, self.doctor)


async def test_ending_a_call_the_patient_joined_completes_it_before_its_start(database):
    settings = database
    admin = await make_user(Role.ADMIN, "admin@example.org", name="Ada Admin")
    doctor = await make_doctor("Dr Dora", fee=25)
    patient = await make_patient(name="Pat Patient", time_zone="Europe/Berlin")
    appointment = await booked(doctor, patient)
    call = Call(settings, appointment)
    doctor_stay = await call.join(call.doctor, "host", EARLY)
    patient_stay = await call.join(call.patient, "patient", EARLY + timedelta(minutes=1))
    await call.end(EARLY + timedelta(minutes=9))  # still before the nominal start
    await call.leave(call.doctor, doctor_stay, EARLY + timedelta(minutes=9))
    await call.leave(call.patient, patient_stay, EARLY + timedelta(minutes=9))

    done = await Appointment.get(id=appointment.id)
    assert done.status == AppointmentStatus.COMPLETED and done.completed_at == EARLY + timedelta(minutes=9)
    # the fee went to the doctor as a marked completion pays it: less the platform's 20%
    assert await ledger.balance(ledger.earnings(doctor.id)) == 20
    assert await ledger.balance(ledger.PLATFORM) == 5
    assert await ledger.balance(ledger.escrow(doctor.id)) == 0
    stays = await Attendance.filter(appointment_id=appointment.id).order_by("id")
    assert [(s.principal, s.role, s.user_id, s.joined_at, s.left_at) for s in stays] == [
        (str(doctor.id), "host", doctor.id, EARLY, EARLY + timedelta(minutes=9)),
        (str(patient.id), "patient", patient.id, EARLY + timedelta(minutes=1), EARLY + timedelta(minutes=9))]

    # one feed line for admins, and the doctor and the patient hear of it too
    (event,) = await Event.filter(type="booking.completed")
    data = json.loads(event.data)
    assert (event.actor_id, event.subject_kind, event.subject_id) == (doctor.id, "appointment", str(appointment.id))
    assert (data["status"], data["status_label"], data["ended_call"], data["patient_name"]) == (
        "completed", "Completed", True, "Pat Patient")
    for reader in (admin, doctor, patient):
        assert "booking.completed" in [d.event.type for d in await outbox.read_after(reader.id, 0)]
    (delivered,) = [d for d in await outbox.read_after(admin.id, 0) if d.event.type == "booking.completed"]
    assert feed.describe(delivered, await feed.names_for([delivered])) == (
        "Dr Dora completed the consultation with Pat Patient booked for 2030-06-03 10:00 UTC by ending the call")
    # the patient's receipt
    (receipt,) = await OutboundEmail.filter(to_address=patient.email, subject__startswith="Receipt")
    assert "Dr Dora" in receipt.subject and "now marked: Completed" in receipt.text_body
    assert "Paid: 25 credit(s)" in receipt.text_body and "12:00" in receipt.text_body  # Berlin, the patient's zone
    assert await AuditEntry.filter(action="booking.completed", subject_id=str(appointment.id)).count() == 1

    # it took place: nobody cancels it for a refund now
    with pytest.raises(Conflict, match="“Completed”; only a booked one can be cancelled"):
        await service.do_cancel(settings, patient, appointment.id, at=EARLY + timedelta(minutes=10))


async def test_ending_a_call_the_patient_never_joined_leaves_it_booked(database):
    settings = database
    doctor, patient = await make_doctor(), await make_patient()
    appointment = await booked(doctor, patient)
    call = Call(settings, appointment)
    await call.join(call.doctor, "host", EARLY)
    await call.end(EARLY + timedelta(minutes=5))
    assert (await Appointment.get(id=appointment.id)).status == AppointmentStatus.BOOKED
    assert not await Event.filter(type="booking.completed").exists()
    # ... and it may still be cancelled: it did not take place
    cancelled = await service.do_cancel(settings, doctor, appointment.id, at=EARLY + timedelta(minutes=6))
    assert status_label(cancelled) == "Cancelled by the doctor"


async def test_did_not_attend_is_refused_once_the_patient_joined(database):
    settings = database
    doctor, patient = await make_doctor(fee=10), await make_patient(name="Pat Patient")
    joined = await booked(doctor, patient, fee=10)
    absent = await booked(doctor, patient, starts_at=START + timedelta(hours=1), fee=10)
    call = Call(settings, joined)
    stay = await call.join(call.patient, "patient", START + timedelta(minutes=2))  # waited, the doctor never came
    await call.leave(call.patient, stay, START + timedelta(minutes=20))

    with pytest.raises(Conflict, match=r"The patient joined the consultation \(.*12:02.*\); it cannot be marked "
                                       "“Patient did not attend”"):
        await service.do_record_outcome(settings, doctor, joined.id, OutcomeRequest(outcome="no_show"),
                                        at=START + timedelta(minutes=40))
    assert (await Appointment.get(id=joined.id)).status == AppointmentStatus.BOOKED
    # the patient who joined is completed; one who never did is marked as not attending
    await service.do_record_outcome(settings, doctor, joined.id, OutcomeRequest(outcome="completed"),
                                    at=START + timedelta(minutes=40))
    with pytest.raises(Conflict, match="only after its start time"):
        await service.do_record_outcome(settings, doctor, absent.id, OutcomeRequest(outcome="no_show"),
                                        at=START + timedelta(minutes=40))
    missed = await service.do_record_outcome(settings, doctor, absent.id, OutcomeRequest(outcome="no_show"),
                                             at=START + timedelta(hours=1, minutes=10))
    assert status_label(missed) == "Patient did not attend"
    (event,) = await Event.filter(type="booking.no_show")
    data = json.loads(event.data)
    assert (data["status"], data["status_label"], data["ended_call"]) == ("no_show", "Patient did not attend", False)
    (completed,) = await Event.filter(type="booking.completed")
    assert json.loads(completed.data)["ended_call"] is False
    # a no-show sends no receipt; the completion marked by hand does
    assert await OutboundEmail.filter(to_address=patient.email, subject__startswith="Receipt").count() == 1


async def test_who_was_in_the_call_together_decides_that_it_took_place(database):
    doctor, patient = await make_doctor(), await make_patient()
    appointment = await booked(doctor, patient)
    call = Call(database, appointment)
    assert await attendance.presence(appointment.id) == attendance.Presence(None, False)
    stay = await call.join(call.patient, "patient", EARLY)
    await call.leave(call.patient, stay, EARLY + timedelta(minutes=2))
    await call.join(call.doctor, "host", EARLY + timedelta(minutes=2))  # the patient had just left
    assert await attendance.presence(appointment.id) == attendance.Presence(EARLY, False, EARLY)
    # the patient's process died without a leave; the same patient joins through another one
    await call.join(call.patient, "patient", EARLY + timedelta(minutes=3))
    stale = await call.join(call.patient, "patient", EARLY + timedelta(minutes=4))
    assert await attendance.presence(appointment.id) == attendance.Presence(EARLY, True, EARLY)
    stays = await Attendance.filter(appointment_id=appointment.id, role="patient").order_by("id")
    assert [s.left_at for s in stays] == [EARLY + timedelta(minutes=2), EARLY + timedelta(minutes=4), None]
    # the dead process's leave comes late: the stay it names had already ended
    async with atomic() as tx:
        assert not await attendance.record_leave(tx.conn, appointment.id, stays[1].id, EARLY + timedelta(minutes=9))
    assert (await Attendance.get(id=stays[1].id)).left_at == EARLY + timedelta(minutes=4)
    await call.leave(call.patient, stale, EARLY + timedelta(minutes=6))
    assert (await Attendance.get(id=int(stale))).left_at == EARLY + timedelta(minutes=6)
    # a guest by link has no account: the principal and the role say who it was
    await call.join(Principal("guest:7", "Interpreter"), "guest", EARLY + timedelta(minutes=5))
    guest = await Attendance.get(principal="guest:7")
    assert (guest.user_id, guest.role) == (None, "guest")


async def test_status_words(database):
    doctor, patient = await make_doctor(), await make_patient()
    admin = await make_user(Role.ADMIN, "admin@example.org")
    a = Appointment(doctor_id=doctor.id, patient_id=patient.id, status=AppointmentStatus.BOOKED)
    assert status_label(a) == "Booked"
    for status, words in ((AppointmentStatus.COMPLETED, "Completed"), (AppointmentStatus.NO_SHOW,
                                                                        "Patient did not attend"),
                          (AppointmentStatus.HELD, "Held, not yet booked"),
                          (AppointmentStatus.EXPIRED, "Hold expired"), (AppointmentStatus.CANCELLED, "Cancelled")):
        a.status = status
        assert status_label(a) == words
    a.status = AppointmentStatus.CANCELLED
    for who, words in ((patient, "Cancelled by the patient"), (doctor, "Cancelled by the doctor"),
                       (admin, "Cancelled by an administrator")):
        a.cancelled_by_id = who.id
        assert status_label(a) == words


async def signed_in(client, user: User, secret: str | None = None) -> None:
    client.headers.pop("x-csrf-token", None)  # the previous session's
    await login(client, user.email, totp_secret=secret)
    client.headers["x-csrf-token"] = await csrf_token(client, "/account")


async def test_a_consultation_that_took_place_is_neither_cancelled_nor_moved(client, settings):
    """Page and API, patient and doctor, while the appointment is still booked (the doctor
    has not ended the call: both just left) and before its nominal start."""
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "dora@example.org", name="Dr Dora", totp_secret=secret)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    starts = next_hour(48)
    appointment = await booked(doctor, patient, starts_at=starts, fee=10)
    other = await booked(doctor, patient, starts_at=starts + timedelta(hours=1), fee=10)
    call = Call(settings, appointment)
    now = datetime.now(UTC).replace(microsecond=0)
    doctor_stay = await call.join(call.doctor, "host", now - timedelta(minutes=10))
    patient_stay = await call.join(call.patient, "patient", now - timedelta(minutes=9))
    await call.leave(call.patient, patient_stay, now - timedelta(minutes=2))
    await call.leave(call.doctor, doctor_stay, now - timedelta(minutes=1))
    assert (await attendance.presence(appointment.id)).took_place

    await signed_in(client, patient)
    page = await client.get(f"/appointments/{appointment.id}")
    assert page.status_code == 200 and 'id="took-place"' in page.text
    assert "Cancel appointment" not in page.text and "Move appointment" not in page.text
    assert ">Booked</span>" in page.text
    assert "Cancel appointment" in (await client.get(f"/appointments/{other.id}")).text  # the other one can
    api = await client.post(f"/api/v1/appointments/{appointment.id}/cancel", json={"reason": "refund please"})
    assert api.status_code == 409 and "took place" in api.json()["error"]["message"], api.text
    form = await client.post(f"/appointments/{appointment.id}/cancel",
                             data={"csrf_token": client.headers["x-csrf-token"], "reason": "refund please"})
    assert form.status_code == 409 and "it can no longer be cancelled" in form.text
    moved = await client.post(f"/api/v1/appointments/{appointment.id}/reschedule",
                              json={"starts_at": (starts + timedelta(hours=3)).isoformat()})
    assert moved.status_code == 409 and "it can no longer be moved" in moved.json()["error"]["message"]
    fresh = (await client.get(f"/api/v1/appointments/{appointment.id}")).json()
    assert (fresh["status"], fresh["status_label"]) == ("booked", "Booked")
    assert await ledger.balance(ledger.credits(patient.id)) == 0  # nothing refunded

    await signed_in(client, doctor, secret)
    page = await client.get(f"/appointments/{appointment.id}")
    # the doctor may mark it completed before the start; not "did not attend"
    assert "Mark completed" in page.text and "Patient did not attend" not in page.text
    assert "Cancel appointment" not in page.text
    api = await client.post(f"/api/v1/appointments/{appointment.id}/cancel", json={})
    assert api.status_code == 409 and "took place" in api.json()["error"]["message"]
    form = await client.post(f"/appointments/{appointment.id}/reschedule",
                             data={"csrf_token": client.headers["x-csrf-token"],
                                   "starts_at": (starts + timedelta(hours=3)).isoformat()})
    assert form.status_code == 409 and "it can no longer be moved" in form.text
    no_show = await client.post(f"/api/v1/appointments/{appointment.id}/outcome", json={"outcome": "no_show"})
    assert no_show.status_code == 409 and "Patient did not attend" in no_show.json()["error"]["message"]
    done = await client.post(f"/api/v1/appointments/{appointment.id}/outcome", json={"outcome": "completed"})
    assert done.status_code == 200 and done.json()["status_label"] == "Completed", done.text
    event = await Event.filter(type="booking.completed").first()
    assert json.loads(event.data)["status_label"] == (await client.get(
        f"/api/v1/appointments/{appointment.id}")).json()["status_label"]
    page = await client.get(f"/appointments/{appointment.id}")
    assert ">Completed</span>" in page.text and "Mark completed" not in page.text
    assert (await Appointment.get(id=appointment.id)).status == AppointmentStatus.COMPLETED


async def test_a_patient_who_waited_unadmitted_is_not_a_no_show_and_nothing_took_place(database):
    settings = database
    doctor, patient = await make_doctor(fee=10), await make_patient(name="Pat Patient")
    waited = await booked(doctor, patient, fee=10)
    call = Call(settings, waited)
    await call.join(call.doctor, "host", START)
    await call.arrive(call.patient, "patient", START + timedelta(minutes=3))  # the doctor never let them in
    presence = await attendance.presence(waited.id)
    assert (presence.patient_joined, presence.took_place, presence.patient_arrived_at) == (
        False, False, START + timedelta(minutes=3))
    with pytest.raises(Conflict, match=r"The patient came to the waiting room \(.*12:03.*\); it cannot be marked "
                                       "“Patient did not attend”"):
        await service.do_record_outcome(settings, doctor, waited.id, OutcomeRequest(outcome="no_show"),
                                        at=START + timedelta(minutes=40))
    await call.end(START + timedelta(minutes=10))
    assert (await Appointment.get(id=waited.id)).status == AppointmentStatus.BOOKED, \
        "a patient left waiting did not have the consultation: ending the call completes nothing"
