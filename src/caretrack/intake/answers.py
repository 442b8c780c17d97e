"""A patient's intake for one appointment: the questionnaire answered and each consent
document signed (typed full name + agreement, with the version's time), sealed and audited.

Intake sits below booking, so callers pass the appointment (anything with the `Visit`
fields) after checking who is asking; `is_complete` is what the call's door asks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from tortoise.exceptions import IntegrityError

from caretrack.accounts.models import User
from caretrack.core import crypto
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, Forbidden, ValidationError
from caretrack.core.transaction import atomic
from caretrack.intake.models import (
    ConsentDocument,
    ConsentSignature,
    ConsentVersion,
    ConsultationType,
    IntakeQuestion,
    IntakeResponse,
    QuestionKind,
)
from caretrack.intake.schemas import AnswerOut, IntakeOut, IntakeSubmission, SignatureOut
from caretrack.intake.service import consents_of, questions_of

ANSWERS_CONTEXT, NAME_CONTEXT = "intake_responses.answers", "consent_signatures.signed_name"
OPEN_STATUSES = frozenset({"held", "booked"})  # an intake is filled in before the visit
YES_NO = ("yes", "no")


class Visit(Protocol):
    """What intake needs of an appointment (booking's Appointment has it)."""

    @property
    def id(self) -> int: ...
    @property
    def doctor_id(self) -> int: ...
    @property
    def patient_id(self) -> int: ...
    @property
    def consultation_type_id(self) -> int | None: ...
    @property
    def status(self) -> str: ...


@dataclass(frozen=True)
class IntakeForm:
    """What a patient is asked for one appointment."""

    consultation_type: ConsultationType
    questions: list[IntakeQuestion]
    consents: list[tuple[ConsentDocument, ConsentVersion]]


def now() -> datetime:
    return datetime.now(UTC)


async def form_for(visit: Visit) -> IntakeForm | None:
    if visit.consultation_type_id is None:
        return None
    found = await ConsultationType.get(id=visit.consultation_type_id)
    return IntakeForm(found, await questions_of(found.id), await consents_of(found.id))


async def _signed_documents(appointment_id: int) -> set[int]:
    signatures = await ConsentSignature.filter(appointment_id=appointment_id).select_related("consent_version")
    return {s.consent_version.document_id for s in signatures}


async def is_complete(visit: Visit) -> bool:
    """True when nothing is asked, or the questionnaire is answered and every consent
    document in force is signed (in any of its versions)."""
    if visit.consultation_type_id is None:
        return True
    if not await IntakeResponse.exists(appointment_id=visit.id):
        return False
    wanted = {d.id for d in await ConsentDocument.filter(consultation_type_id=visit.consultation_type_id,
                                                           retired=False)}
    return wanted <= await _signed_documents(visit.id)


def _check_answer(question: IntakeQuestion, raw: str) -> tuple[str, str | None]:
    """The stored answer, or the problem with it."""
    text = raw.strip()
    if not text:
        return "", f"Answer '{question.prompt}' (required)." if question.required else None
    if question.kind in (QuestionKind.SHORT_TEXT, QuestionKind.LONG_TEXT):
        limit = question.max_length or 0
        if limit and len(text) > limit:
            return text, f"The answer to '{question.prompt}' is longer than {limit} characters ({len(text)})."
    elif question.kind == QuestionKind.YES_NO:
        if text.lower() not in YES_NO:
            return text, f"Answer '{question.prompt}' with yes or no."
        text = text.lower()
    elif text not in (question.choices or []):
        return text, f"Answer '{question.prompt}' with one of: {', '.join(question.choices)}."
    return text, None


async def do_submit(patient: User, visit: Visit, command: IntakeSubmission, *, at: datetime | None = None) -> None:
    """Answer and sign for the appointment; every problem is reported at once. Submitting
    again replaces the answers; a version already signed keeps its first signature."""
    at = at or now()
    if patient.id != visit.patient_id:
        raise Forbidden("Only the appointment's patient completes its intake.")
    form = await form_for(visit)
    if form is None:
        raise ValidationError("This appointment has no intake questionnaire.")
    if str(visit.status) not in OPEN_STATUSES:
        raise ValidationError(f"This appointment is {visit.status}; its intake can no longer be changed.")
    problems: list[dict[str, str]] = []
    known = {str(q.id) for q in form.questions}
    for key in command.answers:
        if key not in known:
            problems.append({"field": f"answers.{key[:20]}", "message": f"There is no question '{key[:20]}' in "
                                                                        "this questionnaire."})
    answers = []
    for question in form.questions:
        answer, problem = _check_answer(question, command.answers.get(str(question.id), ""))
        if problem:
            problems.append({"field": f"answers.{question.id}", "message": problem})
        answers.append({"question": question.id, "prompt": question.prompt, "kind": str(question.kind),
                        "answer": answer})
    given = {c.document_id: c for c in command.consents}
    documents = {d.id for d, _ in form.consents}
    for document_id in given.keys() - documents:
        problems.append({"field": f"consents.{document_id}", "message": f"There is no consent document "
                                                                       f"{document_id} to sign here."})
    signatures = []
    for document, version in form.consents:
        sign = given.get(document.id)
        name = (sign.full_name if sign else "").strip()
        if sign is None or not sign.agreed:
            problems.append({"field": f"consents.{document.id}.agreed",
                             "message": f"Tick that you agree to '{version.title}'."})
        if not name:
            problems.append({"field": f"consents.{document.id}.full_name",
                             "message": f"Type your full name to sign '{version.title}'."})
        signatures.append((version, name))
    if problems:
        raise ValidationError(" ".join(p["message"] for p in problems), fields=problems)
    sealed = crypto.seal(json.dumps(answers), ANSWERS_CONTEXT)
    try:
        await _store(patient, visit, form, sealed, answers, signatures, at)
    except IntegrityError:  # the same intake sent twice at once: the other one won
        raise Conflict("Your answers were just saved from another page; reload this one to see them.") from None


async def _store(patient: User, visit: Visit, form: IntakeForm, sealed: str | None, answers: list[dict[str, object]],
                 signatures: list[tuple[ConsentVersion, str]], at: datetime) -> None:
    async with atomic() as tx:
        updated = await IntakeResponse.filter(appointment_id=visit.id).using_db(tx.conn).update(
            answers=sealed, submitted_at=at, consultation_type_id=form.consultation_type.id)
        if not updated:
            await IntakeResponse.create(using_db=tx.conn, appointment_id=visit.id, answers=sealed, submitted_at=at,
                                        consultation_type_id=form.consultation_type.id)
        signed = {s.consent_version_id for s in
                  await ConsentSignature.filter(appointment_id=visit.id).using_db(tx.conn)}
        for version, name in signatures:
            if version.id not in signed:
                await ConsentSignature.create(using_db=tx.conn, appointment_id=visit.id, consent_version_id=version.id,
                                              signed_name=crypto.seal(name, NAME_CONTEXT), signed_by_id=patient.id,
                                              signed_at=at)
        await tx.audit(Actor(patient.id), "phi.write", "intake_response", visit.id, answers=len(answers),
                       consents=[f"{v.document_id}v{v.version}" for v, _ in signatures])
        await tx.emit("intake.completed", actor_id=patient.id, subject=("appointment", visit.id),
                      data={"appointment_id": visit.id}, users=[visit.patient_id, visit.doctor_id])


async def read(reader: User, visit: Visit) -> IntakeOut:
    """The answers and signatures, for the appointment's doctor and patient only (audited)."""
    if reader.id not in (visit.doctor_id, visit.patient_id):
        raise Forbidden("Only the appointment's doctor and patient read its intake.")
    found = await ConsultationType.get_or_none(id=visit.consultation_type_id) if visit.consultation_type_id else None
    response = await IntakeResponse.get_or_none(appointment_id=visit.id)
    signatures = await ConsentSignature.filter(appointment_id=visit.id).select_related(
        "consent_version").order_by("id")
    async with atomic() as tx:
        await tx.audit(Actor(reader.id), "phi.read", "intake_response", visit.id, signatures=len(signatures))
    answers = json.loads(crypto.unseal(response.answers, ANSWERS_CONTEXT) or "[]") if response else []
    return IntakeOut(
        appointment_id=visit.id, consultation_type=found.name if found else None,
        complete=await is_complete(visit), submitted_at=response.submitted_at if response else None,
        answers=[AnswerOut(question_id=a["question"], prompt=a["prompt"], kind=a["kind"], answer=a["answer"])
                 for a in answers],
        signatures=[SignatureOut(document_id=s.consent_version.document_id, version=s.consent_version.version,
                                 title=s.consent_version.title,
                                 signed_name=crypto.unseal(s.signed_name, NAME_CONTEXT) or "", signed_at=s.signed_at)
                    for s in signatures])
