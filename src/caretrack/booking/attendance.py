"""Who was in an appointment's call, and when: one row per stay of each participant, fed by
signalling's join and leave facts (consultations.service.CallHooks). The booking rules read
it: a consultation the patient joined is not a no-show and may be completed before its
nominal start; one the patient and the doctor were in together took place, and cannot be
cancelled or moved.

Signalling may run in several processes (media workers): a stay is closed by its own id,
and a stay left open by a process that died ends when the same participant joins again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

if TYPE_CHECKING:
    from caretrack.accounts.models import User
    from caretrack.booking.models import Appointment

ROLES = ("host", "patient", "guest")


class Attendance(Model):
    """One participant's stay in an appointment's call, from being let in to leaving.

    ``principal`` is signalling's participant id (a user id, or "guest:<invite id>" for a
    guest without an account, whose ``user`` is then empty); ``role`` is host, patient or
    guest; ``left_at`` is empty while they are in the call. A row that is not ``admitted``
    is an arrival in the waiting room, not a stay (``left_at`` is ``joined_at``): someone
    who came and waited was not absent, though nobody let them in."""

    id = fields.IntField(primary_key=True)
    appointment: fields.ForeignKeyRelation[Appointment] = fields.ForeignKeyField(
        "caretrack.Appointment", related_name="attendance", on_delete=fields.CASCADE)
    appointment_id: int
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="call_attendance", null=True, on_delete=fields.SET_NULL)
    user_id: int | None
    principal = fields.CharField(max_length=128)
    role = fields.CharField(max_length=16)
    joined_at = fields.DatetimeField()
    left_at = fields.DatetimeField(null=True)
    admitted = fields.BooleanField(default=True)

    class Meta:
        table = "consultation_attendance"
        indexes = (("appointment_id", "principal"),)


__models__ = [Attendance]


@dataclass(frozen=True)
class Presence:
    """What an appointment's attendance says, for the booking rules and the pages."""

    patient_joined_at: datetime | None  # the patient's first stay in the call
    took_place: bool  # the patient and the doctor were in the call at the same time
    patient_arrived_at: datetime | None = None  # the patient's first arrival, in the call or waiting to be let in

    @property
    def patient_joined(self) -> bool:
        return self.patient_joined_at is not None


async def presence(appointment_id: int, conn: BaseDBAsyncClient | None = None) -> Presence:
    rows = await Attendance.filter(appointment_id=appointment_id, role__in=("host", "patient")) \
        .using_db(conn).order_by("joined_at")
    stays = [r for r in rows if r.admitted]
    doctor = [s for s in stays if s.role == "host"]
    patient = [s for s in stays if s.role == "patient"]
    arrivals = [r for r in rows if r.role == "patient"]
    together = any(_overlap(d, p) for d in doctor for p in patient)
    return Presence(patient[0].joined_at if patient else None, together,
                    arrivals[0].joined_at if arrivals else None)


def _overlap(a: Attendance, b: Attendance) -> bool:
    """Stays are start-inclusive, end-exclusive; an open stay has not ended."""
    return (b.left_at is None or a.joined_at < b.left_at) and (a.left_at is None or b.joined_at < a.left_at)


async def record_join(conn: BaseDBAsyncClient, appointment_id: int, principal: str, role: str,
                      user_id: int | None, at: datetime) -> Attendance:
    """A stay starts. The same participant's stays still open (their process died, or the
    call moved to another media worker before the old one noticed) end now."""
    if role not in ROLES:
        raise ValueError(f"Attendance role must be one of {ROLES}, got {role!r}")
    await Attendance.filter(appointment_id=appointment_id, principal=principal, left_at=None, admitted=True) \
        .using_db(conn).update(left_at=at)
    return await Attendance.create(using_db=conn, appointment_id=appointment_id, principal=principal, role=role,
                                   user_id=user_id, joined_at=at)


async def record_leave(conn: BaseDBAsyncClient, appointment_id: int, stay_id: int, at: datetime) -> bool:
    """The stay ends; False when it had already ended (closed by a later join)."""
    return bool(await Attendance.filter(id=stay_id, appointment_id=appointment_id, left_at=None)
                .using_db(conn).update(left_at=at))


async def record_arrival(conn: BaseDBAsyncClient, appointment_id: int, principal: str, role: str,
                         user_id: int | None, at: datetime) -> Attendance:
    """Someone came to the call and waits to be let in (a stay starts only when they are)."""
    if role not in ROLES:
        raise ValueError(f"Attendance role must be one of {ROLES}, got {role!r}")
    return await Attendance.create(using_db=conn, appointment_id=appointment_id, principal=principal, role=role,
                                   user_id=user_id, joined_at=at, left_at=at, admitted=False)
