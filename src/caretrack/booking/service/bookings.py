"""Holding a slot for a few minutes, and booking it (paid in the same transaction)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError

from caretrack.accounts.models import User
from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.booking.schemas import BookSlot, HoldSlot
from caretrack.booking.service import reminders
from caretrack.booking.service.checks import check_free, check_slot, is_overlap, serialise
from caretrack.booking.service.common import SlotTaken, announce, now, require_patient, utc
from caretrack.core.audit.service import Actor
from caretrack.core.errors import CareTrackError, ValidationError
from caretrack.core.settings import Settings
from caretrack.core.transaction import atomic
from caretrack.intake import service as intake
from caretrack.payments import ledger

HOLD_MINUTES = 5
MAX_KEY_LENGTH = 80


async def do_hold(patient: User, command: HoldSlot, *, at: datetime | None = None) -> Appointment:
    """Hold a slot for HOLD_MINUTES; the patient's earlier holds are released."""
    doctor_id, at, starts_at = command.doctor_id, at or now(), utc(command.starts_at)
    require_patient(patient)
    chosen = command.consultation_type_id
    type_id = None if chosen is None else await intake.check_choice(doctor_id, chosen)
    try:
        async with atomic() as tx:
            checked = await check_slot(tx.conn, doctor_id, starts_at, at)
            await Appointment.filter(patient_id=patient.id, status=AppointmentStatus.HELD, active=True) \
                .using_db(tx.conn).update(status=AppointmentStatus.EXPIRED, active=False)
            await serialise(tx, doctor_id)
            await check_free(tx, doctor_id, checked.slot, at)
            hold = await Appointment.create(
                using_db=tx.conn, doctor_id=doctor_id, patient_id=patient.id, status=AppointmentStatus.HELD,
                active=True, starts_at=checked.slot.starts_at, ends_at=checked.slot.ends_at,
                blocked_from=checked.slot.blocked_from, blocked_until=checked.slot.blocked_until,
                time_zone=checked.availability.time_zone, hold_expires_at=at + timedelta(minutes=HOLD_MINUTES),
                fee_credits=checked.profile.fee_credits, consultation_type_id=type_id)
    except IntegrityError as exc:
        if is_overlap(exc):
            raise SlotTaken("That time has just been taken; choose another slot.") from None
        raise
    return hold


def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError(f"The Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.")
    return key


async def _replay(patient: User, key: str, doctor_id: int, starts_at: datetime) -> Appointment | None:
    existing = await Appointment.get_or_none(patient_id=patient.id, idempotency_key=key)
    if existing is None:
        return None
    if existing.doctor_id != doctor_id or utc(existing.starts_at) != starts_at:
        raise CareTrackError("This Idempotency-Key was used for a different booking; use a new key.",
                             code="idempotency_mismatch", status_code=422)
    return existing


async def do_book(settings: Settings, patient: User, command: BookSlot, *, idempotency_key: str | None = None,
                  at: datetime | None = None, client_address: str | None = None) -> Appointment:
    """Book and pay in one transaction. The patient's own hold on the slot is converted;
    otherwise the slot must be free. The same idempotency key (the transport's: a header or
    the page's form) returns the first booking."""
    doctor_id, at, starts_at = command.doctor_id, at or now(), utc(command.starts_at)
    require_patient(patient)
    key = _check_key(idempotency_key)
    if key is not None and (existing := await _replay(patient, key, doctor_id, starts_at)) is not None:
        return existing
    chosen = command.consultation_type_id
    if chosen is None:  # the type picked when holding
        held = await Appointment.filter(patient_id=patient.id, doctor_id=doctor_id, status=AppointmentStatus.HELD,
                                        active=True, starts_at=starts_at).first()
        chosen = held.consultation_type_id if held else None
    type_id = await intake.check_choice(doctor_id, chosen)
    try:
        async with atomic() as tx:
            checked = await check_slot(tx.conn, doctor_id, starts_at, at)
            doctor = await User.get(id=doctor_id).using_db(tx.conn)
            slot, fee = checked.slot, checked.profile.fee_credits
            await serialise(tx, doctor_id)
            hold = await Appointment.filter(patient_id=patient.id, doctor_id=doctor_id, status=AppointmentStatus.HELD,
                                            active=True, starts_at=slot.starts_at, hold_expires_at__gt=at) \
                .using_db(tx.conn).first()
            values = dict(status=AppointmentStatus.BOOKED, active=True, hold_expires_at=None, fee_credits=fee,
                          cancel_cutoff_hours=checked.availability.cancel_cutoff_hours,
                          late_cancel_refund_percent=checked.availability.late_cancel_refund_percent,
                          idempotency_key=key, booked_at=at, time_zone=checked.availability.time_zone,
                          consultation_type_id=type_id)
            if hold is not None:
                await Appointment.filter(id=hold.id).using_db(tx.conn).update(**values)
                appointment = await Appointment.get(id=hold.id).using_db(tx.conn)
            else:
                await check_free(tx, doctor_id, slot, at)
                appointment = await Appointment.create(
                    using_db=tx.conn, doctor_id=doctor_id, patient_id=patient.id, starts_at=slot.starts_at,
                    ends_at=slot.ends_at, blocked_from=slot.blocked_from, blocked_until=slot.blocked_until, **values)
            await ledger.transfer(tx.conn, ledger.credits(patient.id), ledger.escrow(doctor_id), fee, "booking",
                                  f"Consultation with {doctor.full_name}", appointment_id=appointment.id,
                                  created_by=patient.id)
            await announce(tx, settings, "booking.created", appointment, doctor, patient, actor=patient,
                            email="booking_confirmed")
            await reminders.plan(tx, appointment, at=at)
            # Last: the audit chain's head row is one lock for every writer; hold it briefly.
            await tx.audit(Actor(patient.id, client_address), "booking.created", "appointment", appointment.id,
                           doctor_id=doctor_id, fee=fee)
    except (IntegrityError, SlotTaken) as exc:
        # A concurrent request with the same key won: answer with its booking.
        if key is not None and (existing := await _replay(patient, key, doctor_id, starts_at)) is not None:
            return existing
        if isinstance(exc, SlotTaken):
            raise
        if is_overlap(exc):
            raise SlotTaken("That time has just been taken; choose another slot.") from None
        raise
    return appointment
