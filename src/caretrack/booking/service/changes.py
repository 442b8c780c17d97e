"""After booking: cancelling (with the refund fixed at booking), moving to another slot, and
the outcome (marked by the doctor, or completed by ending a call the patient joined), which
pays the doctor. A consultation that took place (booking.attendance) is neither cancelled
nor moved."""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from caretrack.accounts.models import User
from caretrack.booking import attendance
from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.booking.schemas import NO_REASON, CancelRequest, OutcomeRequest, RescheduleRequest
from caretrack.booking.service import reminders
from caretrack.booking.service.checks import check_free, check_slot, is_overlap, serialise
from caretrack.booking.service.common import SlotTaken, announce, appointment_data, now, utc
from caretrack.booking.service.reading import get_appointment
from caretrack.booking.status import status_label
from caretrack.booking.zones import working_zone
from caretrack.core import timetext
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, NotFound
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import Tx, atomic
from caretrack.mail import service as mail
from caretrack.payments import ledger


def refund_for(appointment: Appointment, by_doctor: bool, at: datetime) -> int:
    """The doctor, or a patient before the cutoff fixed at booking: everything. Later: the
    late-cancellation share fixed at booking."""
    if by_doctor:
        return appointment.fee_credits
    cutoff = utc(appointment.starts_at) - timedelta(hours=appointment.cancel_cutoff_hours)
    if at < cutoff:
        return appointment.fee_credits
    return appointment.fee_credits * appointment.late_cancel_refund_percent // 100


async def do_cancel(settings: Settings, user: User, appointment_id: int, command: CancelRequest = NO_REASON, *,
                    at: datetime | None = None, client_address: str | None = None) -> Appointment:
    at, reason = at or now(), command.reason
    appointment = await get_appointment(user, appointment_id)
    by_doctor = user.id == appointment.doctor_id or user.role == Role.ADMIN
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict(f"This appointment is “{status_label(appointment)}”; only a booked one can be cancelled.")
    await _refuse_if_it_took_place(appointment, "cancelled")
    if not by_doctor and at >= utc(appointment.starts_at):
        raise Conflict("This appointment has started; it can no longer be cancelled.")
    refund = refund_for(appointment, by_doctor, at)
    async with atomic() as tx:
        changed = await Appointment.filter(id=appointment.id, status=AppointmentStatus.BOOKED).using_db(tx.conn) \
            .update(status=AppointmentStatus.CANCELLED, active=False, cancelled_at=at, cancelled_by_id=user.id,
                    cancel_reason=(reason or "").strip()[:300] or None, refunded_credits=refund)
        if not changed:
            raise Conflict("This appointment changed meanwhile; reload the page.")
        doctor, patient = appointment.doctor, appointment.patient
        if refund:
            await ledger.transfer(tx.conn, ledger.escrow(doctor.id), ledger.credits(patient.id), refund, "refund",
                                  f"Refund: consultation with {doctor.full_name}", appointment_id=appointment.id,
                                  created_by=user.id)
        kept = appointment.fee_credits - refund
        if kept:
            await _pay_doctor(tx, settings, appointment, kept, "Late cancellation fee")
        await tx.audit(Actor(user.id, client_address), "booking.cancelled", "appointment", appointment.id,
                       refund=refund, by=("doctor" if by_doctor else "patient"))
        await reminders.unplan(tx, appointment.id, at=at)
        appointment = await Appointment.get(id=appointment.id).using_db(tx.conn)
        await announce(tx, settings, "booking.cancelled", appointment, doctor, patient, actor=user,
                        email="booking_cancelled", extra={"refund": refund, "cancelled_by": user.full_name})
    return appointment


async def do_reschedule(settings: Settings, user: User, appointment_id: int, command: RescheduleRequest, *,
                        at: datetime | None = None, client_address: str | None = None) -> Appointment:
    """Move a booking to another free slot of the same doctor; the payment stays with it.
    Patients may do so until the cancellation cutoff, doctors at any time before the start."""
    at, new_start = at or now(), utc(command.starts_at)
    appointment = await get_appointment(user, appointment_id)
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict(f"This appointment is “{status_label(appointment)}”; only a booked one can be moved.")
    await _refuse_if_it_took_place(appointment, "moved")
    by_doctor = user.id == appointment.doctor_id
    if not by_doctor and at >= utc(appointment.starts_at) - timedelta(hours=appointment.cancel_cutoff_hours):
        raise Conflict(f"Appointments can be moved up to {appointment.cancel_cutoff_hours} hour(s) before they "
                       "start; it is too late now.")
    if at >= utc(appointment.starts_at):
        raise Conflict("This appointment has started; it can no longer be moved.")
    old_start = utc(appointment.starts_at)
    try:
        async with atomic() as tx:
            checked = await check_slot(tx.conn, appointment.doctor_id, new_start, at)
            slot = checked.slot
            await serialise(tx, appointment.doctor_id)
            await check_free(tx, appointment.doctor_id, slot, at, exclude_id=appointment.id)
            changed = await Appointment.filter(id=appointment.id, status=AppointmentStatus.BOOKED).using_db(tx.conn) \
                .update(starts_at=slot.starts_at, ends_at=slot.ends_at, blocked_from=slot.blocked_from,
                        blocked_until=slot.blocked_until, reschedule_count=F("reschedule_count") + 1)
            if not changed:
                raise Conflict("This appointment changed meanwhile; reload the page.")
            appointment = await Appointment.get(id=appointment.id).using_db(tx.conn)
            doctor, patient = await User.get(id=appointment.doctor_id).using_db(tx.conn), \
                await User.get(id=appointment.patient_id).using_db(tx.conn)
            await tx.audit(Actor(user.id, client_address), "booking.rescheduled", "appointment", appointment.id,
                           old=old_start.isoformat(), new=new_start.isoformat())
            await reminders.replan(tx, appointment, at=at)
            await announce(tx, settings, "booking.rescheduled", appointment, doctor, patient, actor=user,
                            email="booking_rescheduled",
                            previous=old_start)
    except IntegrityError as exc:
        if is_overlap(exc):
            raise SlotTaken("That time has just been taken; choose another slot.") from None
        raise
    return appointment


async def _refuse_if_it_took_place(appointment: Appointment, change: str) -> None:
    """A consultation the patient and the doctor were in together has taken place, whatever
    the clock says: it is not cancelled (and refunded) or moved."""
    if (await attendance.presence(appointment.id)).took_place:
        raise Conflict(f"This consultation took place (the patient and the doctor were in the call); "
                       f"it can no longer be {change}.")


async def _pay_doctor(tx: Tx, settings: Settings, appointment: Appointment, amount: int, memo: str) -> None:
    """Move `amount` from escrow: the platform's share to the platform, the rest to the doctor."""
    share = amount * settings.platform_fee_percent // 100
    if amount - share:
        await ledger.transfer(tx.conn, ledger.escrow(appointment.doctor_id), ledger.earnings(appointment.doctor_id),
                              amount - share, "earning", memo, appointment_id=appointment.id)
    if share:
        await ledger.transfer(tx.conn, ledger.escrow(appointment.doctor_id), ledger.PLATFORM, share, "platform_fee",
                              memo, appointment_id=appointment.id)
    await tx.emit("credits.changed", actor_id=None, subject=("user", appointment.doctor_id),
                  data={"user_id": appointment.doctor_id}, users=[appointment.doctor_id])


async def do_record_outcome(settings: Settings, doctor: User, appointment_id: int, command: OutcomeRequest, *,
                            at: datetime | None = None, client_address: str | None = None) -> Appointment:
    """The doctor marks a booked appointment completed or a no-show once it has started; one
    the patient joined is completed (even before its start) and never a no-show."""
    at, outcome = at or now(), command.outcome
    appointment = await get_appointment(doctor, appointment_id)
    if appointment.doctor_id != doctor.id:
        raise NotFound(f"No appointment with id {appointment_id}.")
    async with atomic() as tx:  # attendance read in the transaction that writes the outcome
        check_outcome(appointment, outcome, await attendance.presence(appointment.id, tx.conn), at)
        return await record_outcome(tx, settings, doctor, appointment, outcome, at=at, client_address=client_address)


def check_outcome(appointment: Appointment, outcome: str, presence: attendance.Presence, at: datetime) -> None:
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict(f"This appointment is already marked “{status_label(appointment)}”.")
    if outcome == "no_show" and presence.patient_arrived_at is not None:
        came = presence.patient_joined_at or presence.patient_arrived_at
        joined = timetext.show(came, appointment.time_zone, "at")  # the hours' zone
        how = "joined the consultation" if presence.patient_joined else "came to the waiting room"
        raise Conflict(f"The patient {how} ({joined}); it cannot be marked “Patient did not attend”.")
    if at < utc(appointment.starts_at) and not (outcome == "completed" and presence.patient_joined):
        raise Conflict("An appointment can be marked only after its start time, unless the patient has joined "
                       "its consultation.")


async def record_outcome(tx: Tx, settings: Settings, doctor: User, appointment: Appointment, outcome: str, *,
                         at: datetime, client_address: str | None = None, ended_call: bool = False) -> Appointment:
    """The one completion path, inside the caller's transaction (ending a call records its
    end in the same one): the status, the fee (less the platform's share) to the doctor's
    earnings, a feed line for admins, and for a completed one a receipt to the patient.
    Checked first with `check_outcome`."""
    status = AppointmentStatus.COMPLETED if outcome == "completed" else AppointmentStatus.NO_SHOW
    changed = await Appointment.filter(id=appointment.id, status=AppointmentStatus.BOOKED).using_db(tx.conn) \
        .update(status=status, completed_at=at)
    if not changed:
        raise Conflict("This appointment changed meanwhile; reload the page.")
    if appointment.fee_credits:
        await _pay_doctor(tx, settings, appointment, appointment.fee_credits,
                          "Consultation" if outcome == "completed" else "Missed consultation (no-show)")
    await tx.audit(Actor(doctor.id, client_address), f"booking.{outcome}", "appointment", appointment.id,
                   **({"ended_call": True} if ended_call else {}))
    await reminders.unplan(tx, appointment.id, at=at)
    appointment = await Appointment.get(id=appointment.id).using_db(tx.conn)
    patient = await User.get(id=appointment.patient_id).using_db(tx.conn)
    await tx.emit(f"booking.{outcome}", actor_id=doctor.id, subject=("appointment", appointment.id),
                  data={**appointment_data(appointment, doctor.full_name, patient.full_name), "ended_call": ended_call},
                  users=[appointment.doctor_id, appointment.patient_id], roles=[Role.ADMIN])
    if status == AppointmentStatus.COMPLETED:
        await mail.send(tx, patient.email, "booking_completed", {
            "name": patient.full_name, "other": doctor.full_name, "status": status_label(appointment),
            "when": timetext.show(appointment.starts_at, await working_zone(patient, tx.conn)),
            "fee": appointment.fee_credits,
            "link": f"{settings.base_url}/appointments/{appointment.id}",
        })
    return appointment
