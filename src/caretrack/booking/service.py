"""Booking: availability, slots, holds, bookings, cancellation, rescheduling, outcomes.

Every action is one transaction (rows, ledger, audit, events, emails). The rule that no two
active appointments of one doctor overlap is the database's on PostgreSQL (exclusion
constraint `appointments_no_overlap`); on SQLite each transaction that makes a booking
active first updates the doctor's lock row, which takes SQLite's write lock, so the overlap
check that follows cannot race. Every limit is checked here, at save time.

For other features (video consultations): `get_appointment(user, id)` returns an
appointment only to its patient, its doctor or an admin (404 otherwise), and
`is_participant(user, appointment)` says whether `user` is its patient or doctor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q

from caretrack.accounts.models import User
from caretrack.booking import slots as slotlib
from caretrack.booking.applications import is_bookable
from caretrack.booking.models import (
    Appointment,
    AppointmentStatus,
    Availability,
    AvailabilityException,
    DoctorLock,
    DoctorProfile,
)
from caretrack.core.audit.service import Actor
from caretrack.core.errors import CareTrackError, Conflict, Forbidden, NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import Tx, atomic
from caretrack.mail import service as mail
from caretrack.payments import ledger

HOLD_MINUTES = 5
MAX_KEY_LENGTH = 80
LIMITS = {
    "consultation_minutes": (5, 240),
    "buffer_before_minutes": (0, 120),
    "buffer_after_minutes": (0, 120),
    "min_notice_minutes": (0, 60 * 24 * 14),
    "horizon_days": (1, 365),
    "cancel_cutoff_hours": (0, 24 * 14),
    "late_cancel_refund_percent": (0, 100),
}


class SlotTaken(Conflict):
    code = "slot_taken"


def now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValidationError("Give times with a UTC offset (for example 2026-03-30T09:00:00Z).")
    return value.astimezone(UTC).replace(microsecond=0)


# --- availability ----------------------------------------------------------------------------


def check_weekly(weekly: list[dict]) -> list[dict]:
    if not isinstance(weekly, list) or len(weekly) > 50:
        raise ValidationError("Weekly hours are a list of at most 50 windows.")
    clean = []
    for item in weekly:
        try:
            weekday = int(item["weekday"])
            start, end = str(item["start"]), str(item["end"])
        except (KeyError, TypeError, ValueError):
            raise ValidationError("Each weekly window needs a weekday (0 = Monday) and start and end times.") from None
        if not 0 <= weekday <= 6:
            raise ValidationError(f"Weekday {weekday} is not 0 (Monday) to 6 (Sunday).")
        begins, ends = slotlib.parse_hhmm(start, "start time"), slotlib.parse_hhmm(end, "end time")
        if begins is None or (ends is not None and ends <= begins):
            raise ValidationError(f"On {slotlib.WEEKDAYS[weekday]} the window {start}-{end} ends before it starts.")
        clean.append({"weekday": weekday, "start": start, "end": end})
    return sorted(clean, key=lambda w: (w["weekday"], w["start"]))


def check_limits(values: dict[str, Any]) -> dict[str, int]:
    clean = {}
    for name, (low, high) in LIMITS.items():
        if name not in values or values[name] is None or values[name] == "":
            continue
        try:
            number = int(values[name])
        except (TypeError, ValueError):
            raise ValidationError(f"{name.replace('_', ' ').capitalize()} '{values[name]}' is not a whole number.") \
                from None
        if not low <= number <= high:
            raise ValidationError(f"{name.replace('_', ' ').capitalize()} must be between {low} and {high}.")
        clean[name] = number
    return clean


async def _approved_profile(doctor: User) -> DoctorProfile:
    profile = await DoctorProfile.get_or_none(user_id=doctor.id)
    if profile is None or profile.status != "approved":
        raise Forbidden("Your doctor application must be approved before you publish hours.")
    return profile


async def do_set_availability(doctor: User, *, time_zone: str, weekly: list[dict], **limits: Any) -> Availability:
    await _approved_profile(doctor)
    slotlib.zone(time_zone)
    values = {"time_zone": time_zone, "weekly": check_weekly(weekly), **check_limits(limits)}
    async with atomic() as tx:
        current = await Availability.get_or_none(doctor_id=doctor.id).using_db(tx.conn)
        if current is None:
            availability = await Availability.create(using_db=tx.conn, doctor_id=doctor.id, **values)
        else:
            await Availability.filter(doctor_id=doctor.id).using_db(tx.conn).update(**values)
            availability = await Availability.get(doctor_id=doctor.id).using_db(tx.conn)
        await tx.audit(Actor(doctor.id), "availability.updated", "user", doctor.id)
    return availability


async def do_add_exception(doctor: User, on_date: date | str, kind: str, start: str | None = None,
                           end: str | None = None) -> AvailabilityException:
    await _approved_profile(doctor)
    if kind not in ("off", "extra"):
        raise ValidationError(f"An exception is 'off' or 'extra', not '{kind}'.")
    if isinstance(on_date, str):
        try:
            on_date = date.fromisoformat(on_date)
        except ValueError:
            raise ValidationError(f"'{on_date[:20]}' is not a date (YYYY-MM-DD).") from None
    start, end = (start or None), (end or None)
    if kind == "extra" and not (start and end):
        raise ValidationError("Extra hours need a start and an end time.")
    if (start is None) != (end is None):
        raise ValidationError("Give both a start and an end time, or neither for a whole day off.")
    if start:
        begins, ends = slotlib.parse_hhmm(start, "start time"), slotlib.parse_hhmm(end, "end time")
        if begins is None or (ends is not None and ends <= begins):
            raise ValidationError(f"The hours {start}-{end} end before they start.")
    async with atomic() as tx:
        item = await AvailabilityException.create(using_db=tx.conn, doctor_id=doctor.id, on_date=on_date, kind=kind,
                                                  start=start, end=end)
        await tx.audit(Actor(doctor.id), "availability.exception_added", "user", doctor.id, on=str(on_date), kind=kind)
    return item


async def do_remove_exception(doctor: User, exception_id: int) -> None:
    deleted = await AvailabilityException.filter(id=exception_id, doctor_id=doctor.id).delete()
    if not deleted:
        raise NotFound(f"No exception with id {exception_id}.")


async def rules_for(doctor_id: int, conn: BaseDBAsyncClient | None = None) -> tuple[Availability, slotlib.Rules]:
    query = Availability.filter(doctor_id=doctor_id)
    exceptions = AvailabilityException.filter(doctor_id=doctor_id)
    if conn is not None:
        query, exceptions = query.using_db(conn), exceptions.using_db(conn)
    availability = await query.first()
    if availability is None:
        raise NotFound(f"Doctor {doctor_id} has not published any hours.")
    return availability, slotlib.Rules(
        time_zone=availability.time_zone, weekly=availability.weekly,
        exceptions=[(e.on_date, e.kind, e.start, e.end) for e in await exceptions],
        consultation_minutes=availability.consultation_minutes,
        buffer_before_minutes=availability.buffer_before_minutes,
        buffer_after_minutes=availability.buffer_after_minutes,
        min_notice_minutes=availability.min_notice_minutes, horizon_days=availability.horizon_days,
    )


def _blocking(at: datetime) -> Q:
    """Active rows that still block time at `at`: a lapsed hold does not."""
    return Q(active=True) & ~Q(status=AppointmentStatus.HELD, hold_expires_at__lte=at)


async def list_slots(doctor_id: int, *, at: datetime | None = None, start_day: date | None = None,
                     days: int | None = 14, limit: int = 200) -> list[slotlib.Slot]:
    at = at or now()
    profile = await DoctorProfile.get_or_none(user_id=doctor_id)
    if not is_bookable(profile, at.date()):
        raise NotFound(f"No bookable doctor with id {doctor_id}.")
    _, rules = await rules_for(doctor_id)
    horizon_end = at + timedelta(days=rules.horizon_days + 1)
    taken = await Appointment.filter(_blocking(at), doctor_id=doctor_id, blocked_until__gt=at,
                                     blocked_from__lt=horizon_end).values_list("blocked_from", "blocked_until")
    slots = slotlib.free_slots(rules, at, [(_utc(a), _utc(b)) for a, b in taken], start_day, days, limit)
    return [s for s in slots if s.ends_at.date() <= profile.licence_expires_on]


# --- checks at save time ----------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    profile: DoctorProfile
    availability: Availability
    slot: slotlib.Slot


async def check_slot(conn: BaseDBAsyncClient, doctor_id: int, starts_at: datetime, at: datetime) -> Checked:
    """Approval, licence, availability, minimum notice and horizon, for a start time."""
    profile = await DoctorProfile.get_or_none(user_id=doctor_id).using_db(conn)
    doctor = await User.get_or_none(id=doctor_id, role=Role.DOCTOR, is_active=True).using_db(conn)
    if doctor is None or profile is None or profile.status != "approved":
        raise NotFound(f"No bookable doctor with id {doctor_id}.")
    availability, rules = await rules_for(doctor_id, conn)
    earliest, latest = slotlib.bookable_range(rules, at)
    if starts_at < earliest:
        raise ValidationError(
            f"This doctor needs at least {rules.min_notice_minutes} minutes' notice; choose a later time.")
    if starts_at > latest:
        raise ValidationError(f"This doctor takes bookings at most {rules.horizon_days} days ahead.")
    slot = slotlib.slot_at(rules, starts_at)
    if slot is None:
        raise ValidationError(f"{starts_at.isoformat()} is not one of this doctor's slots.")
    if profile.licence_expires_on < slot.ends_at.date():
        raise ValidationError("This doctor's licence expires before that date; choose an earlier slot.")
    return Checked(profile, availability, slot)


async def _serialise(tx: Tx, doctor_id: int) -> None:
    """On SQLite, take the write lock through the doctor's lock row before checking overlaps.
    PostgreSQL needs no lock: its exclusion constraint decides, and bookings of one doctor
    run in parallel until they collide."""
    if tx.conn.capabilities.dialect == "postgres":
        return
    if not await DoctorLock.filter(doctor_id=doctor_id).using_db(tx.conn).update(version=F("version") + 1):
        await tx.conn.execute_query(
            "INSERT INTO doctor_locks (doctor_id, version) VALUES (?, 1) ON CONFLICT (doctor_id) "
            "DO UPDATE SET version = version + 1", [doctor_id])


async def _check_free(tx: Tx, doctor_id: int, slot: slotlib.Slot, at: datetime, exclude_id: int | None = None) -> None:
    """Expire lapsed holds in the way, then refuse when an active appointment overlaps."""
    await Appointment.filter(doctor_id=doctor_id, status=AppointmentStatus.HELD, hold_expires_at__lte=at,
                             active=True, blocked_from__lt=slot.blocked_until, blocked_until__gt=slot.blocked_from) \
        .using_db(tx.conn).update(status=AppointmentStatus.EXPIRED, active=False)
    clash = Appointment.filter(doctor_id=doctor_id, active=True, blocked_from__lt=slot.blocked_until,
                               blocked_until__gt=slot.blocked_from)
    if exclude_id is not None:
        clash = clash.exclude(id=exclude_id)
    if await clash.using_db(tx.conn).exists():
        raise SlotTaken("That time has just been taken; choose another slot.")


def _is_overlap(exc: BaseException) -> bool:
    text = f"{exc} {exc.__cause__!r}"
    return "appointments_no_overlap" in text or "ExclusionViolation" in text


# --- holds and bookings -------------------------------------------------------------------------


def appointment_data(appointment: Appointment, doctor_name: str, patient_name: str) -> dict[str, Any]:
    """The summary carried by booking events (and matching the API's AppointmentOut)."""
    return {
        "id": appointment.id, "status": str(appointment.status), "doctor_id": appointment.doctor_id,
        "patient_id": appointment.patient_id, "doctor_name": doctor_name, "patient_name": patient_name,
        "starts_at": _utc(appointment.starts_at).isoformat(), "ends_at": _utc(appointment.ends_at).isoformat(),
        "fee_credits": appointment.fee_credits,
    }


async def do_hold(patient: User, doctor_id: int, starts_at: datetime, *, at: datetime | None = None) -> Appointment:
    """Hold a slot for HOLD_MINUTES; the patient's earlier holds are released."""
    at, starts_at = at or now(), _utc(starts_at)
    _require_patient(patient)
    try:
        async with atomic() as tx:
            checked = await check_slot(tx.conn, doctor_id, starts_at, at)
            await Appointment.filter(patient_id=patient.id, status=AppointmentStatus.HELD, active=True) \
                .using_db(tx.conn).update(status=AppointmentStatus.EXPIRED, active=False)
            await _serialise(tx, doctor_id)
            await _check_free(tx, doctor_id, checked.slot, at)
            hold = await Appointment.create(
                using_db=tx.conn, doctor_id=doctor_id, patient_id=patient.id, status=AppointmentStatus.HELD,
                active=True, starts_at=checked.slot.starts_at, ends_at=checked.slot.ends_at,
                blocked_from=checked.slot.blocked_from, blocked_until=checked.slot.blocked_until,
                time_zone=checked.availability.time_zone, hold_expires_at=at + timedelta(minutes=HOLD_MINUTES),
                fee_credits=checked.profile.fee_credits)
    except IntegrityError as exc:
        if _is_overlap(exc):
            raise SlotTaken("That time has just been taken; choose another slot.") from None
        raise
    return hold


def _require_patient(user: User) -> None:
    if user.role != Role.PATIENT:
        raise Forbidden("Only patient accounts book consultations.")


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
    if existing.doctor_id != doctor_id or _utc(existing.starts_at) != starts_at:
        raise CareTrackError("This Idempotency-Key was used for a different booking; use a new key.",
                             code="idempotency_mismatch", status_code=422)
    return existing


async def do_book(settings: Settings, patient: User, doctor_id: int, starts_at: datetime, *,
                  idempotency_key: str | None = None, at: datetime | None = None,
                  client_address: str | None = None) -> Appointment:
    """Book and pay in one transaction. The patient's own hold on the slot is converted;
    otherwise the slot must be free. The same idempotency key returns the first booking."""
    at, starts_at = at or now(), _utc(starts_at)
    _require_patient(patient)
    key = _check_key(idempotency_key)
    if key is not None and (existing := await _replay(patient, key, doctor_id, starts_at)) is not None:
        return existing
    try:
        async with atomic() as tx:
            checked = await check_slot(tx.conn, doctor_id, starts_at, at)
            doctor = await User.get(id=doctor_id).using_db(tx.conn)
            slot, fee = checked.slot, checked.profile.fee_credits
            await _serialise(tx, doctor_id)
            hold = await Appointment.filter(patient_id=patient.id, doctor_id=doctor_id, status=AppointmentStatus.HELD,
                                            active=True, starts_at=slot.starts_at, hold_expires_at__gt=at) \
                .using_db(tx.conn).first()
            values = dict(status=AppointmentStatus.BOOKED, active=True, hold_expires_at=None, fee_credits=fee,
                          cancel_cutoff_hours=checked.availability.cancel_cutoff_hours,
                          late_cancel_refund_percent=checked.availability.late_cancel_refund_percent,
                          idempotency_key=key, booked_at=at, time_zone=checked.availability.time_zone)
            if hold is not None:
                await Appointment.filter(id=hold.id).using_db(tx.conn).update(**values)
                appointment = await Appointment.get(id=hold.id).using_db(tx.conn)
            else:
                await _check_free(tx, doctor_id, slot, at)
                appointment = await Appointment.create(
                    using_db=tx.conn, doctor_id=doctor_id, patient_id=patient.id, starts_at=slot.starts_at,
                    ends_at=slot.ends_at, blocked_from=slot.blocked_from, blocked_until=slot.blocked_until, **values)
            await ledger.transfer(tx.conn, ledger.credits(patient.id), ledger.escrow(doctor_id), fee, "booking",
                                  f"Consultation with {doctor.full_name}", appointment_id=appointment.id,
                                  created_by=patient.id)
            await _announce(tx, settings, "booking.created", appointment, doctor, patient, actor=patient,
                            email="booking_confirmed")
            # Last: the audit chain's head row is one lock for every writer; hold it briefly.
            await tx.audit(Actor(patient.id, client_address), "booking.created", "appointment", appointment.id,
                           doctor_id=doctor_id, fee=fee)
    except (IntegrityError, SlotTaken) as exc:
        # A concurrent request with the same key won: answer with its booking.
        if key is not None and (existing := await _replay(patient, key, doctor_id, starts_at)) is not None:
            return existing
        if isinstance(exc, SlotTaken):
            raise
        if _is_overlap(exc):
            raise SlotTaken("That time has just been taken; choose another slot.") from None
        raise
    return appointment


async def _announce(tx: Tx, settings: Settings, event: str, appointment: Appointment, doctor: User, patient: User,
                    *, actor: User | None, email: str | None, extra: dict[str, Any] | None = None) -> None:
    from caretrack.booking.calendar import appointment_ics

    data = appointment_data(appointment, doctor.full_name, patient.full_name)
    await tx.emit(event, actor_id=actor.id if actor else None, subject=("appointment", appointment.id),
                  data={**data, **(extra or {})}, users=[doctor.id, patient.id], roles=[Role.ADMIN])
    await tx.emit("credits.changed", actor_id=actor.id if actor else None, subject=("user", patient.id),
                  data={"user_id": patient.id}, users=[patient.id])
    if email is None:
        return
    cancelled = event == "booking.cancelled"
    for person, other in ((patient, doctor), (doctor, patient)):
        ics = appointment_ics(appointment, doctor, patient, settings, cancelled=cancelled)
        await mail.send(tx, person.email, email, {
            "name": person.full_name, "other": other.full_name,
            "when": format_local(appointment.starts_at, person.time_zone),
            "minutes": int((appointment.ends_at - appointment.starts_at).total_seconds() // 60),
            "link": f"{settings.base_url}/appointments/{appointment.id}", **(extra or {}),
        }, attachments=[(f"appointment-{appointment.id}.ics", "text/calendar", ics)])


def format_local(instant: datetime, time_zone: str) -> str:
    try:
        tz = slotlib.zone(time_zone)
    except ValidationError:
        tz = UTC
    local = instant.astimezone(tz)
    return f"{local:%A %d %B %Y, %H:%M} ({local.tzname()}, {time_zone})"


# --- reading ----------------------------------------------------------------------------------


def is_participant(user: User, appointment: Appointment) -> bool:
    return user.id in (appointment.patient_id, appointment.doctor_id)


async def get_appointment(user: User, appointment_id: int) -> Appointment:
    """The appointment, for its patient, its doctor or an admin; 404 for anyone else."""
    appointment = await Appointment.get_or_none(id=appointment_id).prefetch_related("doctor", "patient")
    if appointment is None or not (is_participant(user, appointment) or user.role == Role.ADMIN):
        raise NotFound(f"No appointment with id {appointment_id}.")
    if appointment.status == AppointmentStatus.EXPIRED and user.role != Role.ADMIN:
        raise NotFound(f"No appointment with id {appointment_id}.")
    return appointment


async def list_appointments(user: User, *, upcoming: bool | None = None, limit: int = 100,
                            at: datetime | None = None) -> list[Appointment]:
    at = at or now()
    query = Appointment.filter(status__in=[AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED,
                                           AppointmentStatus.NO_SHOW, AppointmentStatus.CANCELLED])
    query = query.filter(doctor_id=user.id) if user.role == Role.DOCTOR else query.filter(patient_id=user.id)
    if upcoming is True:
        query = query.filter(ends_at__gt=at, status=AppointmentStatus.BOOKED).order_by("starts_at")
    elif upcoming is False:
        query = query.filter(Q(ends_at__lte=at) | ~Q(status=AppointmentStatus.BOOKED)).order_by("-starts_at")
    else:
        query = query.order_by("-starts_at")
    return await query.prefetch_related("doctor", "patient").limit(limit)


async def doctor_has_patient(doctor_id: int, patient_id: int) -> bool:
    """A doctor may see a patient's profile once the patient has booked them (any booking
    that was not just a hold)."""
    return await Appointment.filter(doctor_id=doctor_id, patient_id=patient_id, booked_at__isnull=False).exists()


# --- cancel, reschedule, outcomes --------------------------------------------------------------


def refund_for(appointment: Appointment, by_doctor: bool, at: datetime) -> int:
    """The doctor, or a patient before the cutoff fixed at booking: everything. Later: the
    late-cancellation share fixed at booking."""
    if by_doctor:
        return appointment.fee_credits
    cutoff = _utc(appointment.starts_at) - timedelta(hours=appointment.cancel_cutoff_hours)
    if at < cutoff:
        return appointment.fee_credits
    return appointment.fee_credits * appointment.late_cancel_refund_percent // 100


async def do_cancel(settings: Settings, user: User, appointment_id: int, reason: str = "", *,
                    at: datetime | None = None, client_address: str | None = None) -> Appointment:
    at = at or now()
    appointment = await get_appointment(user, appointment_id)
    by_doctor = user.id == appointment.doctor_id or user.role == Role.ADMIN
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict(f"This appointment is {appointment.status}; only a booked one can be cancelled.")
    if not by_doctor and at >= _utc(appointment.starts_at):
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
        appointment = await Appointment.get(id=appointment.id).using_db(tx.conn)
        await _announce(tx, settings, "booking.cancelled", appointment, doctor, patient, actor=user,
                        email="booking_cancelled", extra={"refund": refund, "cancelled_by": user.full_name})
    return appointment


async def do_reschedule(settings: Settings, user: User, appointment_id: int, new_start: datetime, *,
                        at: datetime | None = None, client_address: str | None = None) -> Appointment:
    """Move a booking to another free slot of the same doctor; the payment stays with it.
    Patients may do so until the cancellation cutoff, doctors at any time before the start."""
    at, new_start = at or now(), _utc(new_start)
    appointment = await get_appointment(user, appointment_id)
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict(f"This appointment is {appointment.status}; only a booked one can be moved.")
    by_doctor = user.id == appointment.doctor_id
    if not by_doctor and at >= _utc(appointment.starts_at) - timedelta(hours=appointment.cancel_cutoff_hours):
        raise Conflict(f"Appointments can be moved up to {appointment.cancel_cutoff_hours} hour(s) before they "
                       "start; it is too late now.")
    if at >= _utc(appointment.starts_at):
        raise Conflict("This appointment has started; it can no longer be moved.")
    old_start = _utc(appointment.starts_at)
    try:
        async with atomic() as tx:
            checked = await check_slot(tx.conn, appointment.doctor_id, new_start, at)
            slot = checked.slot
            await _serialise(tx, appointment.doctor_id)
            await _check_free(tx, appointment.doctor_id, slot, at, exclude_id=appointment.id)
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
            await _announce(tx, settings, "booking.rescheduled", appointment, doctor, patient, actor=user,
                            email="booking_rescheduled",
                            extra={"previous": format_local(old_start, "UTC")})
    except IntegrityError as exc:
        if _is_overlap(exc):
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


async def do_record_outcome(settings: Settings, doctor: User, appointment_id: int, outcome: str, *,
                            at: datetime | None = None, client_address: str | None = None) -> Appointment:
    """The doctor marks a booked appointment completed or a no-show, only once it has started.
    Either way the fee (less the platform's share) moves to the doctor's earnings."""
    at = at or now()
    if outcome not in ("completed", "no_show"):
        raise ValidationError(f"The outcome is 'completed' or 'no_show', not '{outcome}'.")
    appointment = await get_appointment(doctor, appointment_id)
    if appointment.doctor_id != doctor.id:
        raise NotFound(f"No appointment with id {appointment_id}.")
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict(f"This appointment is already {appointment.status}.")
    if at < _utc(appointment.starts_at):
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
        appointment = await Appointment.get(id=appointment.id).using_db(tx.conn)
        patient = await User.get(id=appointment.patient_id).using_db(tx.conn)
        await tx.emit(f"booking.{outcome}", actor_id=doctor.id, subject=("appointment", appointment.id),
                      data=appointment_data(appointment, doctor.full_name, patient.full_name),
                      users=[appointment.doctor_id, appointment.patient_id])
    return appointment
