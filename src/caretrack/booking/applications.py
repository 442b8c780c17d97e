"""Doctor applications: apply (with a supporting PDF), admin review, and who is searchable."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from tortoise.expressions import Q, Subquery

from caretrack.accounts.models import User
from caretrack.booking.models import ApplicationStatus, Availability, DoctorProfile
from caretrack.booking.schemas import ApplicationInput, Decision
from caretrack.booking.uploads import remove_document, store_document
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import atomic
from caretrack.core.validation import Problems
from caretrack.mail import service as mail

MAX_FEE = 10_000
LANGUAGE_RE = re.compile(r"^[a-z][a-z \-]{1,30}$")


def now() -> datetime:
    return datetime.now(UTC)


# The application's text fields: (what the sentence calls it, fewest and most characters); the
# form shows the same limits (minlength/maxlength and a hint).
FIELD_LIMITS = {
    "licence_number": ("licence number", 3, 64),
    "licence_body": ("issuing body", 2, 120),
    "specialty": ("specialty", 2, 80),
    "biography": ("biography", 20, 4000),
}


def _text(value: str, name: str, maximum: int, minimum: int = 1) -> str:
    value = value.strip()
    if not minimum <= len(value) <= maximum:
        raise ValidationError(f"The {name} must be between {minimum} and {maximum} characters.")
    return value


def check_fields(texts: dict[str, str], languages: list[str], expires: date | None, fee: int | None,
                 today: date) -> dict[str, Any]:
    """Every rule of an application at once (a ValidationError naming each wrong field); an
    expiry or fee given as None (the form could not read it) is left to the caller's own problem."""
    problems = Problems()
    fields: dict[str, Any] = {}
    if expires is not None:
        with problems.check("licence_expires_on"):
            if expires <= today:
                raise ValidationError(f"The licence expired on {expires.isoformat()}; renew it before applying.")
            fields["licence_expires_on"] = expires
    with problems.check("languages"):
        names = sorted({item.strip().lower() for item in languages if item and item.strip()})
        if not names:
            raise ValidationError("Name at least one language you consult in.")
        for language in names:
            if not LANGUAGE_RE.match(language):
                raise ValidationError(f"'{language[:40]}' is not a language name (letters, spaces and hyphens).")
        fields["languages"] = ",".join(names)
    if fee is not None:
        with problems.check("fee_credits"):
            if not 1 <= fee <= MAX_FEE:
                raise ValidationError(f"The fee must be between 1 and {MAX_FEE} credits.")
            fields["fee_credits"] = fee
    for name, (what, minimum, maximum) in FIELD_LIMITS.items():
        with problems.check(name):
            fields[name] = _text(texts.get(name, ""), what, maximum, minimum)
    problems.raise_any()
    return fields


def check_application(data: ApplicationInput, today: date | None = None) -> dict[str, Any]:
    texts = {name: getattr(data, name) for name in FIELD_LIMITS}
    return check_fields(texts, data.languages, data.licence_expires_on, data.fee_credits, today or now().date())


async def do_apply(settings: Settings, doctor: User, data: ApplicationInput, document: bytes | None,
                   client_address: str | None = None, original_name: str | None = None,
                   at: datetime | None = None) -> DoctorProfile:
    """Submit (or, after a rejection, resubmit) an application. A first application needs a
    document; a resubmission may keep the earlier one."""
    at = at or now()
    if doctor.role != Role.DOCTOR:
        raise ValidationError("Only doctor accounts apply to practise.")
    fields = check_application(data, at.date())
    existing = await DoctorProfile.get_or_none(user_id=doctor.id)
    if existing is not None and existing.status == ApplicationStatus.APPROVED:
        raise Conflict("Your application is already approved; contact an administrator to change licence details.")
    if existing is not None and existing.status == ApplicationStatus.PENDING:
        raise Conflict("Your application is waiting for review; you can change it once it has been reviewed.")
    if document is None and (existing is None or not existing.document_name):
        raise ValidationError("Attach your licence or registration certificate as a PDF.")
    stored = await store_document(settings, document) if document is not None else None
    old_document = existing.document_name if existing is not None and stored else None
    try:
        async with atomic() as tx:
            values = {**fields, "status": ApplicationStatus.PENDING, "submitted_at": at, "reviewed_at": None,
                      "reviewed_by_id": None, "rejection_reason": None}
            if stored:
                values.update(document_name=stored, document_original_name=(original_name or "document.pdf")[:200],
                              document_size=len(document))
            if existing is None:
                profile = await DoctorProfile.create(using_db=tx.conn, user_id=doctor.id, **values)
            else:
                updated = await DoctorProfile.filter(user_id=doctor.id, status=ApplicationStatus.REJECTED) \
                    .using_db(tx.conn).update(**values)
                if not updated:
                    raise Conflict("Your application changed meanwhile; reload the page.")
                profile = await DoctorProfile.get(user_id=doctor.id).using_db(tx.conn)
            await tx.audit(Actor(doctor.id, client_address), "doctor.applied", "user", doctor.id)
            await tx.emit("doctor.applied", actor_id=doctor.id, subject=("user", doctor.id),
                          data={"doctor_id": doctor.id, "doctor_name": doctor.full_name, "status": "pending",
                                "specialty": fields["specialty"]},
                          users=[doctor.id], roles=[Role.ADMIN])
    except BaseException:
        remove_document(settings, stored)
        raise
    remove_document(settings, old_document)
    return profile


async def do_review(settings: Settings, admin: User, doctor_id: int, command: Decision,
                    client_address: str | None = None, at: datetime | None = None) -> DoctorProfile:
    at, approve, reason = at or now(), command.approve, command.reason.strip()
    if not approve and not 5 <= len(reason) <= 1000:
        raise ValidationError("Give the doctor a reason for the rejection (5 to 1000 characters).")
    doctor = await User.get_or_none(id=doctor_id, role=Role.DOCTOR)
    if doctor is None:
        raise NotFound(f"No doctor application with id {doctor_id}.")
    status = ApplicationStatus.APPROVED if approve else ApplicationStatus.REJECTED
    async with atomic() as tx:
        changed = await DoctorProfile.filter(user_id=doctor_id, status=ApplicationStatus.PENDING).using_db(tx.conn) \
            .update(status=status, reviewed_at=at, reviewed_by_id=admin.id,
                    rejection_reason=None if approve else reason)
        if not changed:
            if not await DoctorProfile.filter(user_id=doctor_id).using_db(tx.conn).exists():
                raise NotFound(f"No doctor application with id {doctor_id}.")
            raise Conflict("This application has already been reviewed.")
        action = "doctor.approved" if approve else "doctor.rejected"
        await tx.audit(Actor(admin.id, client_address), action, "user", doctor_id, reason=reason or None)
        await tx.emit(action, actor_id=admin.id, subject=("user", doctor_id),
                      data={"doctor_id": doctor_id, "doctor_name": doctor.full_name, "status": str(status),
                            "reason": None if approve else reason},
                      users=[doctor_id], roles=[Role.ADMIN])
        await mail.send(tx, doctor.email, "booking_application_approved" if approve else "booking_application_rejected",
                       {"name": doctor.full_name, "reason": reason, "link": f"{settings.base_url}/doctor"})
    return await DoctorProfile.get(user_id=doctor_id)


async def get_profile(doctor_id: int) -> DoctorProfile | None:
    return await DoctorProfile.get_or_none(user_id=doctor_id).prefetch_related("user")


async def list_applications(status: ApplicationStatus | None = ApplicationStatus.PENDING) -> list[DoctorProfile]:
    query = DoctorProfile.all().prefetch_related("user").order_by("submitted_at")
    if status is not None:
        query = query.filter(status=status)
    return await query


def is_bookable(profile: DoctorProfile | None, on: date | None = None) -> bool:
    """Approved, active, and the licence still valid on `on` (today by default)."""
    on = on or now().date()
    return (profile is not None and profile.status == ApplicationStatus.APPROVED
            and profile.licence_expires_on >= on)


async def search_doctors(specialty: str = "", language: str = "", name: str = "", limit: int = 50,
                         offset: int = 0, at: datetime | None = None) -> tuple[list[DoctorProfile], int]:
    """Approved doctors, active, with an unexpired licence (on `at`'s date) and published hours."""
    query = DoctorProfile.filter(status=ApplicationStatus.APPROVED, licence_expires_on__gte=(at or now()).date(),
                                 user__is_active=True,
                                 user_id__in=Subquery(Availability.all().values("doctor_id")))
    if specialty.strip():
        query = query.filter(specialty__icontains=specialty.strip())
    if language.strip():
        query = query.filter(Q(languages__icontains=language.strip().lower()))
    if name.strip():
        query = query.filter(user__full_name__icontains=name.strip())
    total = await query.count()
    rows = await query.prefetch_related("user").order_by("user__full_name").offset(offset).limit(limit)
    return rows, total


def specialties_of(profiles: list[DoctorProfile]) -> list[str]:
    return sorted({p.specialty for p in profiles})
