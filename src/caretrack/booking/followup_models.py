"""Follow-up offers: after a consultation, the doctor offers the patient a next one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from caretrack.accounts.models import User
    from caretrack.booking.models import Appointment


class FollowUpOffer(Model):
    """A doctor's offer of a follow-up consultation to the patient.

    One slot (starts_at), or any free slot in [range_from, range_until). Not a hold: the
    patient books it through the normal booking path, and a slot taken meanwhile is refused
    then."""

    id = fields.IntField(primary_key=True)
    appointment: fields.ForeignKeyRelation[Appointment] = fields.ForeignKeyField(
        "caretrack.Appointment", related_name="follow_up_offers", on_delete=fields.CASCADE)
    appointment_id: int
    doctor: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="follow_up_offers_made", on_delete=fields.CASCADE)
    doctor_id: int
    patient: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="follow_up_offers", on_delete=fields.CASCADE)
    patient_id: int
    starts_at = fields.DatetimeField(null=True)
    range_from = fields.DatetimeField(null=True)
    range_until = fields.DatetimeField(null=True)
    time_zone = fields.CharField(max_length=64)  # the doctor's availability zone, for the range's dates
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    booked: fields.ForeignKeyNullableRelation[Appointment] = fields.ForeignKeyField(
        "caretrack.Appointment", related_name="follow_up_of", null=True, on_delete=fields.SET_NULL)
    booked_id: int | None
    booked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "booking_follow_up_offers"
