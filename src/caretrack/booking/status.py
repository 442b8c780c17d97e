"""An appointment's status in words: the one mapping the pages, the emails, the events and
the API's `status_label` use, so nobody reads a raw `no_show`."""

from __future__ import annotations

from caretrack.booking.models import Appointment, AppointmentStatus

WORDS: dict[AppointmentStatus, str] = {
    AppointmentStatus.HELD: "Held, not yet booked",
    AppointmentStatus.BOOKED: "Booked",
    AppointmentStatus.COMPLETED: "Completed",
    AppointmentStatus.NO_SHOW: "Patient did not attend",
    AppointmentStatus.CANCELLED: "Cancelled",
    AppointmentStatus.EXPIRED: "Hold expired",
}


def status_label(appointment: Appointment) -> str:
    """"Completed", "Patient did not attend", "Cancelled by the patient", "Booked", ..."""
    status = AppointmentStatus(appointment.status)
    if status == AppointmentStatus.CANCELLED:
        by: int | None = getattr(appointment, "cancelled_by_id", None)
        if by is not None:
            who = ("the patient" if by == appointment.patient_id else "the doctor" if by == appointment.doctor_id
                   else "an administrator")
            return f"Cancelled by {who}"
    return WORDS[status]
