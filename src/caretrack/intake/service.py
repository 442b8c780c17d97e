"""Consultation types and what they ask before a visit: a doctor's own, or any doctor's for
an admin. Each action is one audited transaction; a consent document's changed wording is a
new version, so a signature keeps the wording it agreed to.

For booking: `offered_types(doctor_id)` and `check_choice(doctor_id, type_id)`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from caretrack.accounts.models import User
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Forbidden, NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic
from caretrack.intake.models import ConsentDocument, ConsentVersion, ConsultationType, IntakeQuestion
from caretrack.intake.schemas import ConsentIn, ConsentOut, QuestionIn, QuestionOut, TypeIn, TypeOut, TypeUpdate

MAX_TYPES, MAX_QUESTIONS, MAX_CONSENTS = 50, 100, 20


def now() -> datetime:
    return datetime.now(UTC)


def _require_editor(user: User) -> None:
    if user.role not in (Role.DOCTOR, Role.ADMIN):
        raise Forbidden("Only doctors and admins define consultation types.")


async def owned_type(user: User, type_id: int) -> ConsultationType:
    """The type if `user` may edit it (its doctor, or an admin); 404 otherwise."""
    _require_editor(user)
    found = await ConsultationType.get_or_none(id=type_id)
    if found is None or (user.role != Role.ADMIN and found.doctor_id != user.id):
        raise NotFound(f"No consultation type with id {type_id}.")
    return found


async def _doctor_for(user: User, doctor_id: int | None) -> int:
    if user.role == Role.DOCTOR:
        if doctor_id not in (None, user.id):
            raise ValidationError("Doctors define their own consultation types; leave doctor_id out.",
                                  fields=[{"field": "doctor_id", "message": "must be your own id or left out"}])
        return user.id
    if doctor_id is None:
        raise ValidationError("Choose the doctor this consultation type is for.",
                              fields=[{"field": "doctor_id", "message": "required for an admin"}])
    if not await User.exists(id=doctor_id, role=Role.DOCTOR):
        raise ValidationError(f"There is no doctor with id {doctor_id}.",
                              fields=[{"field": "doctor_id", "message": "not a doctor"}])
    return doctor_id


# --- views -------------------------------------------------------------------------------------


def question_view(q: IntakeQuestion) -> QuestionOut:
    return QuestionOut(id=q.id, position=q.position, kind=q.kind, prompt=q.prompt, required=q.required,
                       max_length=q.max_length, choices=list(q.choices or []))


async def questions_of(type_id: int) -> list[IntakeQuestion]:
    return await IntakeQuestion.filter(consultation_type_id=type_id).order_by("position", "id")


async def consents_of(type_id: int, *, include_retired: bool = False) -> list[tuple[ConsentDocument, ConsentVersion]]:
    """The type's consent documents in order, each with its newest version."""
    query = ConsentDocument.filter(consultation_type_id=type_id)
    if not include_retired:
        query = query.filter(retired=False)
    documents = await query.order_by("position", "id")
    versions = {(v.document_id, v.version): v for v in await ConsentVersion.filter(
        document_id__in=[d.id for d in documents])}
    return [(d, versions[(d.id, d.version)]) for d in documents]


async def type_view(found: ConsultationType, *, include_retired: bool = True) -> TypeOut:
    consents = await consents_of(found.id, include_retired=include_retired)
    return TypeOut(id=found.id, doctor_id=found.doctor_id, name=found.name, description=found.description,
                   archived=found.archived, questions=[question_view(q) for q in await questions_of(found.id)],
                   consents=[ConsentOut(id=d.id, version=v.version, title=v.title, text=v.text, retired=d.retired)
                             for d, v in consents])


async def list_types(user: User, doctor_id: int | None = None) -> list[TypeOut]:
    _require_editor(user)
    query = ConsultationType.all()
    if user.role == Role.DOCTOR:
        query = query.filter(doctor_id=user.id)
    elif doctor_id is not None:
        query = query.filter(doctor_id=doctor_id)
    return [await type_view(t) for t in await query.order_by("doctor_id", "archived", "name", "id")]


async def offered_types(doctor_id: int) -> list[ConsultationType]:
    """The types a patient may book with this doctor (none: the doctor books as before)."""
    return await ConsultationType.filter(doctor_id=doctor_id, archived=False).order_by("name", "id")


async def check_choice(doctor_id: int, type_id: int | None) -> int | None:
    """The type to book, checked against the doctor's offered ones (a 422 naming them)."""
    offered = await offered_types(doctor_id)
    if not offered:
        if type_id is not None:
            raise ValidationError("This doctor has no consultation types; leave consultation_type_id out.",
                                  fields=[{"field": "consultation_type_id", "message": "not offered"}])
        return None
    names = ", ".join(f"'{t.name}' ({t.id})" for t in offered)
    if type_id is None:
        raise ValidationError(f"Choose the type of consultation: {names}.",
                              fields=[{"field": "consultation_type_id", "message": "required"}])
    if type_id not in {t.id for t in offered}:
        raise ValidationError(f"Consultation type {type_id} is not one this doctor offers: {names}.",
                              fields=[{"field": "consultation_type_id", "message": "not offered"}])
    return type_id


# --- types -------------------------------------------------------------------------------------


async def do_create_type(user: User, command: TypeIn, *, at: datetime | None = None) -> ConsultationType:
    _require_editor(user)
    at = at or now()
    doctor_id = await _doctor_for(user, command.doctor_id)
    if await ConsultationType.filter(doctor_id=doctor_id).count() >= MAX_TYPES:
        raise ValidationError(f"A doctor may have at most {MAX_TYPES} consultation types; archive one first.")
    async with atomic() as tx:
        created = await ConsultationType.create(using_db=tx.conn, doctor_id=doctor_id, name=command.name,
                                                description=command.description or "", created_at=at, updated_at=at)
        await tx.audit(Actor(user.id), "intake.type_created", "consultation_type", created.id, doctor=doctor_id,
                       name=command.name)
    return created


async def do_update_type(user: User, type_id: int, command: TypeUpdate, *,
                         at: datetime | None = None) -> ConsultationType:
    found = await owned_type(user, type_id)
    async with atomic() as tx:
        await ConsultationType.filter(id=found.id).using_db(tx.conn).update(
            name=command.name, description=command.description or "", archived=command.archived,
            updated_at=at or now())
        await tx.audit(Actor(user.id), "intake.type_updated", "consultation_type", found.id, name=command.name,
                       archived=command.archived)
    return await ConsultationType.get(id=found.id)


Part = TypeVar("Part", IntakeQuestion, ConsentDocument)

# --- questions ---------------------------------------------------------------------------------


async def _part(model: type[Part], noun: str, user: User, part_id: int) -> Part:
    """A question or consent document of a type `user` may edit; 404 alike for one that does
    not exist and one of another doctor's types."""
    part = await model.get_or_none(id=part_id)
    try:
        if part is None:
            raise NotFound(noun)
        await owned_type(user, part.consultation_type_id)
    except NotFound:
        raise NotFound(f"No {noun} with id {part_id}.") from None
    return part


async def _question(user: User, question_id: int) -> IntakeQuestion:
    return await _part(IntakeQuestion, "question", user, question_id)


async def _next_position(model: type[IntakeQuestion] | type[ConsentDocument], type_id: int) -> int:
    last = await model.filter(consultation_type_id=type_id).order_by("-position").first()
    return 0 if last is None else last.position + 1


async def _make_room(conn: BaseDBAsyncClient, type_id: int, position: int, *, but: int | None = None) -> None:
    """A question placed at `position` goes before the one there: those from it on move down."""
    query = IntakeQuestion.filter(consultation_type_id=type_id, position__gte=position)
    if but is not None:
        query = query.exclude(id=but)
    await query.using_db(conn).update(position=F("position") + 1)


async def do_add_question(user: User, type_id: int, command: QuestionIn) -> IntakeQuestion:
    found = await owned_type(user, type_id)
    if await IntakeQuestion.filter(consultation_type_id=found.id).count() >= MAX_QUESTIONS:
        raise ValidationError(f"A questionnaire has at most {MAX_QUESTIONS} questions.")
    position = command.position if command.position is not None else await _next_position(IntakeQuestion, found.id)
    async with atomic() as tx:
        await _make_room(tx.conn, found.id, position)
        question = await IntakeQuestion.create(
            using_db=tx.conn, consultation_type_id=found.id, position=position, kind=command.kind,
            prompt=command.prompt, required=command.required, max_length=command.max_length, choices=command.choices)
        await tx.audit(Actor(user.id), "intake.question_added", "consultation_type", found.id, question=question.id)
    return question


async def do_update_question(user: User, question_id: int, command: QuestionIn) -> IntakeQuestion:
    question = await _question(user, question_id)
    async with atomic() as tx:
        if command.position is not None and command.position != question.position:
            await _make_room(tx.conn, question.consultation_type_id, command.position, but=question.id)
        await IntakeQuestion.filter(id=question.id).using_db(tx.conn).update(
            kind=command.kind, prompt=command.prompt, required=command.required, max_length=command.max_length,
            choices=command.choices, position=question.position if command.position is None else command.position)
        await tx.audit(Actor(user.id), "intake.question_updated", "consultation_type",
                       question.consultation_type_id, question=question.id)
    return await IntakeQuestion.get(id=question.id)


async def do_delete_question(user: User, question_id: int) -> None:
    """Answers already given keep their question's wording (they are stored with it)."""
    question = await _question(user, question_id)
    async with atomic() as tx:
        await IntakeQuestion.filter(id=question.id).using_db(tx.conn).delete()
        await tx.audit(Actor(user.id), "intake.question_deleted", "consultation_type",
                       question.consultation_type_id, question=question.id)


# --- consent documents -------------------------------------------------------------------------


async def _document(user: User, document_id: int) -> ConsentDocument:
    return await _part(ConsentDocument, "consent document", user, document_id)


async def do_add_consent(user: User, type_id: int, command: ConsentIn, *,
                         at: datetime | None = None) -> ConsentDocument:
    found = await owned_type(user, type_id)
    if await ConsentDocument.filter(consultation_type_id=found.id, retired=False).count() >= MAX_CONSENTS:
        raise ValidationError(f"A consultation type has at most {MAX_CONSENTS} consent documents.")
    position = await _next_position(ConsentDocument, found.id)
    async with atomic() as tx:
        document = await ConsentDocument.create(using_db=tx.conn, consultation_type_id=found.id, position=position,
                                                version=1)
        await ConsentVersion.create(using_db=tx.conn, document_id=document.id, version=1, title=command.title,
                                    text=command.text, created_at=at or now())
        await tx.audit(Actor(user.id), "intake.consent_added", "consent_document", document.id,
                       consultation_type=found.id)
    return document


async def do_update_consent(user: User, document_id: int, command: ConsentIn, *,
                            at: datetime | None = None) -> ConsentVersion:
    """A new wording is a new version; the same wording changes nothing."""
    document = await _document(user, document_id)
    async with atomic() as tx:
        current = await ConsentVersion.filter(document_id=document.id, version=document.version).using_db(
            tx.conn).get()
        if (current.title, current.text) == (command.title, command.text):
            return current
        version = await ConsentVersion.create(using_db=tx.conn, document_id=document.id,
                                              version=document.version + 1, title=command.title, text=command.text,
                                              created_at=at or now())
        await ConsentDocument.filter(id=document.id).using_db(tx.conn).update(version=version.version)
        await tx.audit(Actor(user.id), "intake.consent_revised", "consent_document", document.id,
                       version=version.version)
    return version


async def document_of(version: ConsentVersion) -> ConsentDocument:
    return await ConsentDocument.get(id=version.document_id)


async def do_retire_consent(user: User, document_id: int) -> None:
    document = await _document(user, document_id)
    async with atomic() as tx:
        await ConsentDocument.filter(id=document.id).using_db(tx.conn).update(retired=True)
        await tx.audit(Actor(user.id), "intake.consent_retired", "consent_document", document.id)
