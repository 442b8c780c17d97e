"""Follow-up offers' commands and views (the API and the pages parse the same commands)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

OfferState = Literal["open", "booked", "expired"]


def _convertible(value: datetime) -> datetime:
    """An instant that has a UTC value (year 1 at +01:00 has none)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is outside the range of times; give one such as "
                         "2026-03-30T09:00:00Z.") from None
    return value


Instant = Annotated[datetime, AfterValidator(_convertible)]


class FollowUpCreate(BaseModel):
    """One of your free slots (`starts_at`), or any free slot between two dates (`from_date`
    to `until_date`, both included, in your hours' time zone)."""

    model_config = ConfigDict(extra="forbid")

    starts_at: Instant | None = None
    from_date: date | None = None
    until_date: date | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> FollowUpCreate:
        has_range = self.from_date is not None or self.until_date is not None
        if (self.starts_at is None) == (not has_range):
            raise ValueError("Offer either one slot (starts_at) or a date range (from_date and until_date), "
                             "not both and not neither.")
        if has_range and (self.from_date is None or self.until_date is None):
            raise ValueError("A date range needs both from_date and until_date.")
        return self


class FollowUpBook(BaseModel):
    """For an offer of a date range, the free slot chosen; an offer of one slot needs none.
    The follow-up is of the same consultation type as the visit it follows while the doctor
    still offers it; `consultation_type_id` chooses another of the doctor's types."""

    model_config = ConfigDict(extra="forbid")

    starts_at: Instant | None = None
    consultation_type_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class FollowUpSlotQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(28, ge=1, le=60)


class FollowUpSlotOut(BaseModel):
    starts_at: datetime
    ends_at: datetime
    label: str = Field(description="The start in the reader's time zone, with the zone.")


class FollowUpSlots(BaseModel):
    time_zone: str = Field(description="The zone of the labels (the doctor's hours).")
    slots: list[FollowUpSlotOut]


class FollowUpOut(BaseModel):
    id: int
    appointment_id: int = Field(description="The consultation it follows.")
    doctor_id: int
    doctor_name: str
    patient_id: int
    patient_name: str
    kind: Literal["slot", "range"]
    starts_at: datetime | None
    range_from: datetime | None
    range_until: datetime | None
    description: str = Field(description="The offer in words, in the reader's time zone.")
    expires_at: datetime
    state: OfferState
    booked_appointment_id: int | None
    fee_credits: int
    slots: list[FollowUpSlotOut] = Field(description="The free slots it can be booked at now (open offers).")


class FollowUpList(BaseModel):
    offers: list[FollowUpOut]
