"""After booking: cancelling (with the refund fixed at booking), moving to another slot, and
the doctor's outcome, which pays the doctor."""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from caretrack.accounts.models import User
from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.booking.schemas import NO_REASON, CancelRequest, OutcomeRequest, RescheduleRequest
from caretrack.booking.service import reminders
from caretrack.booking.service.checks import check_free, check_slot, is_overlap, serialise
from caretrack.booking.service.common import SlotTaken, announce, appointment_data, now, utc
from caretrack.booking.service.reading import get_appointment
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, NotFound
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import Tx, atomic
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
        raise Conflict(f"This appointment is {appointment.status}; only a booked one can be cancelled.")
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
        raise Conflict(f"This appointment is {appointment.status}; only a booked one can be moved.")
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
    """The doctor marks a booked appointment completed or a no-show, only once it has started.
    Either way the fee (less the platform's share) moves to the doctor's earnings."""
    at, outcome = at or now(), command.outcome
    appointment = await get_appointment(doctor, appointment_id)
    if appointment.doctor_id != doctor.id:
        raise NotFound(f"No appointment with id {appointment_id}.")
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict(f"This appointment is already {appointment.status}.")
    if at < utc(appointment.starts_at):
        raise Conflict("An appointment can be marked only after its start time.")
    status = AppointmentStatus.COMPLETED if outcome == "completed" else AppointmentStatus.NO_SHOW
    async with atomic() as tx:
        changed = await Appointment.filter(id=appointment.id, status=AppointmentStatus.BOOKED).using_db(tx.conn) \
            .update(status=status, completed_at=at)
        if not changed:
            raise Conflict("This appointment changed meanwhile; reload the page.")
        if appointment.fee_credits:
            await _pay_doctor(tx, settings, appointment, appointment.fee_credits,
                              "Consultation" if outcome == "completed" else "Missed consultation (no-show)")
        await tx.audit(Actor(doctor.id, client_address), f"booking.{outcome}", "appointment", appointment.id)
        await reminders.unplan(tx, appointment.id, at=at)
        appointment = await Appointment.get(id=appointment.id).using_db(tx.conn)
        patient = await User.get(id=appointment.patient_id).using_db(tx.conn)
        await tx.emit(f"booking.{outcome}", actor_id=doctor.id, subject=("appointment", appointment.id),
                      data=appointment_data(appointment, doctor.full_name, patient.full_name),
                      users=[appointment.doctor_id, appointment.patient_id])
    return appointment
