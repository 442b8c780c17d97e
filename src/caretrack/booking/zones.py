"""The zone a person reads telehealth times in: their working zone.

A patient (or admin) reads times in their profile's zone. A doctor works in the zone they
published their hours in (the availability's), unless their profile names another zone:
the profile's UTC is the default every account starts with, so it counts as not chosen.
Every doctor-facing time (dashboard, appointment and call pages, emails, reminders) asks
`working_zone`, so a Berlin doctor's 09:05 booking reads 09:05 wherever they see it."""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient

from caretrack.accounts.models import User
from caretrack.booking.models import Availability
from caretrack.core.roles import Role
from caretrack.core.timetext import zone_name

PROFILE_DEFAULT = "UTC"  # accounts.models.User.time_zone's default


async def working_zone(user: User, conn: BaseDBAsyncClient | None = None) -> str:
    """`user`'s IANA zone for reading times (see the module's docstring)."""
    chosen = zone_name(user.time_zone)
    if user.role != Role.DOCTOR or user.time_zone not in (None, "", PROFILE_DEFAULT):
        return chosen
    query = Availability.filter(doctor_id=user.id)
    if conn is not None:
        query = query.using_db(conn)
    availability = await query.first()
    return zone_name(availability.time_zone) if availability is not None else chosen
