"""The visit summary: the doctor writes it for the patient, apart from the private notes.

Who may see it: the appointment's doctor (draft and published text) and its patient (the
published text only). Everyone else gets 404, guests and admins included: it is PHI with
no use outside the clinical relationship, as the notes are. Every read and write is
audited; both texts are sealed. Publishing tells the patient on the channels they chose
for "visit_follow_up", with a link and no PHI (no text, no diagnosis, no doctor's name).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError

from caretrack.accounts.models import User
from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.consultations.summary_models import VisitSummary
from caretrack.consultations.summary_schemas import SummaryOut, SummaryWrite
from caretrack.core import crypto, timetext
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, Forbidden, NotFound, ValidationError
from caretrack.core.settings import Settings
from caretrack.core.transaction import Tx, atomic
from caretrack.notifications.schemas import Kind
from caretrack.notifications.service import notify

DRAFT, TEXT = "consultation_summaries.draft", "consultation_summaries.text"
# A summary belongs to a consultation that stands or took place.
WRITABLE = frozenset({AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW})


async def _appointment_for(user: User, appointment_id: int) -> Appointment:
    """The appointment for its doctor or patient; 404 for anyone else."""
    appointment = await Appointment.get_or_none(id=appointment_id)
    if appointment is None or user.id not in (appointment.doctor_id, appointment.patient_id) \
            or appointment.status not in WRITABLE:
        raise NotFound(f"No consultation with id {appointment_id}.")
    return appointment


def _view(summary: VisitSummary | None, appointment_id: int, *, doctor: bool) -> SummaryOut:
    if summary is None:
        return SummaryOut(appointment_id=appointment_id, text=None, published_at=None, updated_at=None, version=0,
                          draft="" if doctor else None)
    text = crypto.unseal(summary.text, TEXT) if summary.text is not None else None
    view = SummaryOut(appointment_id=appointment_id, text=text, published_at=summary.published_at,
                      updated_at=summary.updated_at, version=summary.version)
    if doctor:
        draft = crypto.unseal(summary.draft, DRAFT) or ""
        view.draft, view.draft_saved_at, view.unpublished_changes = draft, summary.draft_saved_at, draft != (text or "")
    return view


async def read_summary(user: User, appointment_id: int, client_address: str | None = None) -> SummaryOut:
    """The doctor reads the draft and the published text; the patient the published text."""
    appointment = await _appointment_for(user, appointment_id)
    doctor = user.id == appointment.doctor_id
    summary = await VisitSummary.get_or_none(appointment_id=appointment_id)
    async with atomic() as tx:
        await tx.audit(Actor(user.id, client_address), "phi.read", "consultation_summary", appointment_id,
                       role="doctor" if doctor else "patient",
                       version=summary.version if summary else 0)
    return _view(summary, appointment_id, doctor=doctor)


async def do_save_summary(settings: Settings, user: User, appointment_id: int, command: SummaryWrite, *,
                          at: datetime, client_address: str | None = None) -> SummaryOut:
    """Save the draft; publishing makes it the patient's text and tells the patient."""
    appointment = await _appointment_for(user, appointment_id)
    if user.id != appointment.doctor_id:
        raise Forbidden("Only the appointment's doctor writes its visit summary.")
    text = command.text.strip()
    if command.publish and not text:
        raise ValidationError("Write the summary before publishing it.",
                              fields=[{"field": "text", "message": "empty"}])
    try:
        return await _save(settings, user, appointment, text, command.publish, at=at, client_address=client_address)
    except IntegrityError:  # two first saves at once: one row won; nothing of this one was written
        raise Conflict("The summary was saved from another window at the same moment; reload it and save "
                       "again.") from None


async def _save(settings: Settings, user: User, appointment: Appointment, text: str, publish: bool, *,
                at: datetime, client_address: str | None) -> SummaryOut:
    appointment_id = appointment.id
    async with atomic() as tx:
        summary = await VisitSummary.filter(appointment_id=appointment_id).using_db(tx.conn) \
            .select_for_update().first()
        values: dict[str, Any] = {"draft": crypto.seal(text, DRAFT), "draft_saved_at": at}
        if publish:
            published_before = summary is not None and summary.published_at is not None
            values.update(text=crypto.seal(text, TEXT), version=(summary.version if summary else 0) + 1)
            values["published_at" if not published_before else "updated_at"] = at
        if summary is None:
            summary = await VisitSummary.create(using_db=tx.conn, appointment_id=appointment_id, **values)
        else:
            await VisitSummary.filter(appointment_id=appointment_id).using_db(tx.conn).update(**values)
            summary = await VisitSummary.filter(appointment_id=appointment_id).using_db(tx.conn).get()
        await tx.audit(Actor(user.id, client_address), "phi.write", "consultation_summary", appointment_id,
                       length=len(text), published=publish, version=summary.version)
        if publish:
            await _tell_patient(tx, settings, appointment, summary, at=at)
    return _view(summary, appointment_id, doctor=True)


async def _tell_patient(tx: Tx, settings: Settings, appointment: Appointment, summary: VisitSummary, *,
                        at: datetime) -> None:
    patient = await User.filter(id=appointment.patient_id).using_db(tx.conn).get()
    updated = summary.version > 1
    await tx.emit("consultation.summary_published", actor_id=appointment.doctor_id,
                  subject=("appointment", appointment.id),
                  data={"appointment_id": appointment.id, "version": summary.version},
                  users=[appointment.patient_id, appointment.doctor_id])
    if not patient.is_active:
        return
    link = f"{settings.base_url}/appointments/{appointment.id}#visit-summary"
    await notify(tx, patient, Kind.VISIT_FOLLOW_UP, at=at, email=("visit_summary", {
        "name": patient.full_name, "when": timetext.show(appointment.starts_at, patient.time_zone),
        "updated": updated, "link": link}, ()),
        sms_text=f"CareTrack: your doctor has {'updated' if updated else 'written'} a summary of your "
                 f"consultation. Read it after signing in: {link}")


async def panel(user: User, appointment: Appointment, at: datetime) -> dict[str, Any]:
    """What the appointment page shows of the summary: for its doctor (the form) and its
    patient (once published); nothing for anyone else (an admin)."""
    if user.id not in (appointment.doctor_id, appointment.patient_id) or appointment.status not in WRITABLE:
        return {}
    doctor = user.id == appointment.doctor_id
    summary = await VisitSummary.get_or_none(appointment_id=appointment.id)
    if summary is not None and (doctor or summary.text is not None):  # PHI is shown: audited
        async with atomic() as tx:
            await tx.audit(Actor(user.id), "phi.read", "consultation_summary", appointment.id,
                           role="doctor" if doctor else "patient", version=summary.version)
    return {"visit_summary": _view(summary, appointment.id, doctor=doctor), "visit_summary_writer": doctor,
            "when": timetext.show}
