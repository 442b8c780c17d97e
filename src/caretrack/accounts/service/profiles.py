"""Profiles, whose PHI fields are sealed at rest and whose every read and write is audited.

Who may see a patient's profile depends on care above this domain (a doctor with an
appointment, in booking): the caller passes that check in as `doctor_has_patient`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from caretrack.accounts.models import User
from caretrack.accounts.schemas import ProfileUpdate
from caretrack.core import crypto, phones
from caretrack.core.audit.service import Actor
from caretrack.core.errors import NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic

PHI_FIELDS = ("date_of_birth", "phone", "address")

DoctorHasPatient = Callable[[int, int], Awaitable[bool]]  # (doctor_id, patient_id) -> bool


@dataclass
class Profile:
    id: int
    email: str
    full_name: str
    role: str
    time_zone: str
    date_of_birth: str | None
    phone: str | None
    address: str | None


async def can_view_profile(viewer: User, subject: User, doctor_has_patient: DoctorHasPatient | None = None) -> bool:
    """Ownership: yourself, admins, and a doctor with an appointment (when the caller knows)."""
    if viewer.id == subject.id or viewer.role == Role.ADMIN:
        return True
    if viewer.role == Role.DOCTOR and subject.role == Role.PATIENT and doctor_has_patient is not None:
        return await doctor_has_patient(viewer.id, subject.id)
    return False


async def get_profile(viewer: User, user_id: int, client_address: str | None, *,
                      doctor_has_patient: DoctorHasPatient | None = None) -> Profile:
    """A profile with its PHI, if `viewer` may see it; otherwise 404 (not 403), so ids do not
    reveal who exists. The PHI read is audited."""
    subject = await User.get_or_none(id=user_id)
    if subject is None or not await can_view_profile(viewer, subject, doctor_has_patient):
        raise NotFound(f"No profile with id {user_id}.")
    async with atomic() as tx:
        await tx.audit(Actor(viewer.id, client_address), "phi.read", "user", subject.id, fields=list(PHI_FIELDS))
    return Profile(subject.id, subject.email, subject.full_name, str(subject.role), subject.time_zone,
                   *(crypto.unseal(getattr(subject, f), f"users.{f}") for f in PHI_FIELDS))


def check_phone(text: str | None, region: str) -> str | None:
    """The phone as E.164 (blank clears it); a 422 at the field 'phone' that states the rule.
    Checked here rather than in ProfileUpdate because the region is a setting."""
    if not text:
        return None
    try:
        return phones.normalise(text, region)
    except phones.PhoneError as exc:
        raise ValidationError(f"field 'phone': {exc}", fields=[{"field": "phone", "message": str(exc)}]) from None


async def do_update_profile(user: User, command: ProfileUpdate, client_address: str | None, *,
                            phone_region: str) -> None:
    """Changes the fields the command gives; a phone is stored as E.164, a national number
    read in `phone_region` (CARETRACK_PHONE_REGION)."""
    changes = command.model_dump(exclude_unset=True)
    if "phone" in changes:
        changes["phone"] = check_phone(changes["phone"], phone_region)
    updates: dict[str, Any] = {k: changes[k] for k in ("full_name", "time_zone") if k in changes}
    written = [f for f in PHI_FIELDS if f in changes]
    for field_name in written:
        updates[field_name] = crypto.seal(changes[field_name] or None, f"users.{field_name}")
    if not updates:
        return
    async with atomic() as tx:
        await User.filter(id=user.id).using_db(tx.conn).update(**updates)
        if written:
            await tx.audit(Actor(user.id, client_address), "phi.write", "user", user.id, fields=written)
