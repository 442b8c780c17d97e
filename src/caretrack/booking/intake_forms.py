"""An appointment's intake on its pages (the appointment page and the call page): what to
show whom, and the form a patient submits. Guests never get here: only the appointment's
patient fills it in, only its doctor and patient read it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.datastructures import FormData

from caretrack.accounts.models import User
from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.booking.service import get_appointment
from caretrack.core.validation import parse_command
from caretrack.intake import answers
from caretrack.intake import service as intake
from caretrack.intake.schemas import IntakeSubmission


async def intake_context(user: User, appointment: Appointment) -> dict[str, Any]:
    """`intake_form` (the patient's, while not done), `intake_record` (answers and signatures,
    read and audited for the doctor, and for the patient once done), `consultation_types`
    (offered while a hold's type may still be chosen)."""
    context: dict[str, Any] = {"intake_form": None, "intake_record": None, "consultation_types": []}
    if user.id not in (appointment.doctor_id, appointment.patient_id):
        return context
    if appointment.status == AppointmentStatus.HELD and user.id == appointment.patient_id:
        context["consultation_types"] = await intake.offered_types(appointment.doctor_id)
    if appointment.consultation_type_id is None:
        return context
    done = await answers.is_complete(appointment)
    if user.id == appointment.patient_id and not done and str(appointment.status) in answers.OPEN_STATUSES:
        context["intake_form"] = await answers.form_for(appointment)
    if user.id == appointment.doctor_id or done:
        context["intake_record"] = await answers.read(user, appointment)
    return context


def typed(form: FormData) -> dict[str, str]:
    """What the patient typed, to show again beside the form's errors."""
    return {key: value for key, value in form.multi_items() if isinstance(value, str)}


def submission(form: FormData) -> IntakeSubmission:
    """The page's fields: `answer-<question id>`, `consent-<document id>-name` and
    `consent-<document id>-agree`."""
    given = typed(form)
    values = {key[len("answer-"):]: value for key, value in given.items() if key.startswith("answer-")}
    documents = sorted({key.split("-")[1] for key in given if key.startswith("consent-") and key.count("-") == 2})
    consents = [{"document_id": d, "full_name": given.get(f"consent-{d}-name", ""),
                 "agreed": given.get(f"consent-{d}-agree") == "yes"} for d in documents]
    return parse_command(IntakeSubmission, {"answers": values, "consents": consents})


async def submit(user: User, appointment_id: int, form: FormData, *, at: datetime) -> Appointment:
    appointment = await get_appointment(user, appointment_id)
    await answers.do_submit(user, appointment, submission(form), at=at)
    return appointment

