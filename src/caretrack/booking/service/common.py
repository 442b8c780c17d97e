"""What every booking action shares: the clock's default, UTC instants, the event summary,
and the announcement (events and emails with the .ics) of a change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from caretrack.accounts.models import User
from caretrack.booking.calendar import appointment_ics
from caretrack.booking.models import Appointment
from caretrack.booking.status import status_label
from caretrack.booking.zones import working_zone
from caretrack.core import timetext
from caretrack.core.errors import Conflict, Forbidden, ValidationError
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import Tx
from caretrack.mail import service as mail


class SlotTaken(Conflict):
    code = "slot_taken"


def now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValidationError("Give times with a UTC offset (for example 2026-03-30T09:00:00Z).")
    return value.astimezone(UTC).replace(microsecond=0)


def require_patient(user: User) -> None:
    if user.role != Role.PATIENT:
        raise Forbidden("Only patient accounts book consultations.")


def appointment_data(appointment: Appointment, doctor_name: str, patient_name: str) -> dict[str, Any]:
    """The summary carried by booking events (and matching the API's AppointmentOut)."""
    return {
        "id": appointment.id, "status": str(appointment.status), "status_label": status_label(appointment),
        "doctor_id": appointment.doctor_id,
        "patient_id": appointment.patient_id, "doctor_name": doctor_name, "patient_name": patient_name,
        "starts_at": utc(appointment.starts_at).isoformat(), "ends_at": utc(appointment.ends_at).isoformat(),
        "fee_credits": appointment.fee_credits,
    }


async def announce(tx: Tx, settings: Settings, event: str, appointment: Appointment, doctor: User, patient: User,
                   *, actor: User | None, email: str | None, extra: dict[str, Any] | None = None,
                   previous: datetime | None = None) -> None:
    """The change's events, and each person's email (times in their working zone) with the .ics;
    `previous` is a moved appointment's old start."""
    data = appointment_data(appointment, doctor.full_name, patient.full_name)
    if previous is not None:
        extra = {**(extra or {}), "previous_starts_at": utc(previous).isoformat()}
    await tx.emit(event, actor_id=actor.id if actor else None, subject=("appointment", appointment.id),
                  data={**data, **(extra or {})}, users=[doctor.id, patient.id], roles=[Role.ADMIN])
    await tx.emit("credits.changed", actor_id=actor.id if actor else None, subject=("user", patient.id),
                  data={"user_id": patient.id}, users=[patient.id])
    if email is None:
        return
    cancelled = event == "booking.cancelled"
    for person, other in ((patient, doctor), (doctor, patient)):
        ics = appointment_ics(appointment, doctor, patient, settings, cancelled=cancelled)
        zone = await working_zone(person, tx.conn)
        shown = {"previous": timetext.show(previous, zone)} if previous is not None else {}
        await mail.send(tx, person.email, email, {
            "name": person.full_name, "other": other.full_name, "when": timetext.show(appointment.starts_at, zone),
            "minutes": int((appointment.ends_at - appointment.starts_at).total_seconds() // 60),
            "link": f"{settings.base_url}/appointments/{appointment.id}", **(extra or {}), **shown,
        }, attachments=[(f"appointment-{appointment.id}.ics", "text/calendar", ics)])

