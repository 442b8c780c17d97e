"""Booking's typed commands (one per action, parsed by the API and the pages alike; the
service receives them) and the JSON shapes of its API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from caretrack.booking.status import status_label
from caretrack.core.validation import Count, Id, Int32, whole_number


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DoctorQuery(Strict):
    specialty: str = Field("", max_length=80)
    language: str = Field("", max_length=40)
    name: str = Field("", max_length=100)
    limit: int = Field(20, ge=1, le=100)
    offset: Count = 0


class DoctorOut(BaseModel):
    id: int
    name: str
    specialty: str
    languages: list[str]
    biography: str
    fee_credits: int
    licence_body: str
    licence_expires_on: date

    @classmethod
    def of(cls, profile) -> DoctorOut:
        return cls(id=profile.user_id, name=profile.user.full_name, specialty=profile.specialty,
                   languages=profile.languages.split(","), biography=profile.biography,
                   fee_credits=profile.fee_credits, licence_body=profile.licence_body,
                   licence_expires_on=profile.licence_expires_on)


class DoctorList(BaseModel):
    doctors: list[DoctorOut]
    total: int


class SlotQuery(Strict):
    days: int = Field(14, ge=1, le=60)
    start: date | None = None


class SlotOut(BaseModel):
    starts_at: datetime
    ends_at: datetime
    local_start: str = Field(description="The start in the signed-in user's time zone, ISO 8601 with offset.")


class SlotList(BaseModel):
    doctor_id: int
    time_zone: str = Field(description="The zone local_start is in: the signed-in user's working zone (a doctor's "
                           "is their hours' zone unless their profile names another).")
    slots: list[SlotOut]


class _SlotChoice(Strict):
    # Holding and booking take the same body, published in the OpenAPI document under the one
    # name clients know (SlotRequest); no docstring, so the two schemas are identical.
    model_config = ConfigDict(extra="forbid", title="SlotRequest")

    doctor_id: Id
    starts_at: datetime
    consultation_type_id: Id | None = Field(None, description="One of the doctor's consultation types; required "
                                                              "to book a doctor who has any.")


class HoldSlot(_SlotChoice):
    pass


class BookSlot(_SlotChoice):
    pass


class AppointmentOut(BaseModel):
    id: int
    status: str
    status_label: str = Field(description="The status in words: Booked, Completed, Patient did not attend, "
                                          "Cancelled by the patient, ...")
    doctor_id: int
    patient_id: int
    doctor_name: str
    patient_name: str
    starts_at: datetime
    ends_at: datetime
    fee_credits: int
    hold_expires_at: datetime | None = None
    cancel_cutoff_hours: int
    late_cancel_refund_percent: int
    refunded_credits: int
    notice: str | None = Field(default=None,
                               description="Set for a hold that lapsed (status `expired`): says so, in words.")
    slots_url: str | None = Field(default=None,
                                  description="For a lapsed hold: the doctor's free slots, to choose again.")
    consultation_type_id: int | None = None

    @classmethod
    def of(cls, a) -> AppointmentOut:
        return cls(id=a.id, status=str(a.status), status_label=status_label(a), doctor_id=a.doctor_id,
                   patient_id=a.patient_id,
                   doctor_name=a.doctor.full_name, patient_name=a.patient.full_name, starts_at=a.starts_at,
                   ends_at=a.ends_at, fee_credits=a.fee_credits, hold_expires_at=a.hold_expires_at,
                   cancel_cutoff_hours=a.cancel_cutoff_hours, late_cancel_refund_percent=a.late_cancel_refund_percent,
                   refunded_credits=a.refunded_credits, consultation_type_id=a.consultation_type_id)


class AppointmentList(BaseModel):
    appointments: list[AppointmentOut]


class AppointmentQuery(Strict):
    upcoming: bool | None = None


class CancelRequest(Strict):
    reason: str = Field("", max_length=300)


NO_REASON = CancelRequest()


class RescheduleRequest(Strict):
    starts_at: datetime


class OutcomeRequest(Strict):
    outcome: str = Field(pattern="^(completed|no_show)$")


class WeeklyWindow(Strict):
    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    start: str = Field(pattern=r"^\d\d:\d\d$")
    end: str = Field(pattern=r"^\d\d:\d\d$")


class AvailabilityIn(Strict):
    time_zone: str
    weekly: list[WeeklyWindow] = Field(max_length=50)
    # Each limit's own range is checked by the service (booking.service.LIMITS), which names it.
    consultation_minutes: Int32 = 30
    buffer_before_minutes: Int32 = 0
    buffer_after_minutes: Int32 = 0
    min_notice_minutes: Int32 = 120
    horizon_days: Int32 = 30
    cancel_cutoff_hours: Int32 = 24
    late_cancel_refund_percent: Int32 = 0


class AvailabilityOut(AvailabilityIn):
    model_config = ConfigDict(extra="ignore")


class ExceptionIn(Strict):
    """A day off, or extra hours, on one date (the doctor's page)."""

    on_date: date
    kind: Literal["off", "extra"]
    start: str | None = None
    end: str | None = None


class ApplicationInput(Strict):
    """A doctor's application to practise (the page's form; its PDF travels beside it)."""

    licence_number: str
    licence_body: str
    licence_expires_on: date
    specialty: str
    languages: list[str]
    biography: str
    fee_credits: int

    @field_validator("languages", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return value.split(",") if isinstance(value, str) else value


class ApplicationOut(BaseModel):
    doctor_id: int
    doctor_name: str
    status: str
    licence_number: str
    licence_body: str
    licence_expires_on: date
    specialty: str
    languages: list[str]
    fee_credits: int
    submitted_at: datetime
    rejection_reason: str | None
    has_document: bool

    @classmethod
    def of(cls, p) -> ApplicationOut:
        return cls(doctor_id=p.user_id, doctor_name=p.user.full_name, status=str(p.status),
                   licence_number=p.licence_number, licence_body=p.licence_body,
                   licence_expires_on=p.licence_expires_on, specialty=p.specialty,
                   languages=p.languages.split(","), fee_credits=p.fee_credits, submitted_at=p.submitted_at,
                   rejection_reason=p.rejection_reason, has_document=bool(p.document_name))


class ApplicationList(BaseModel):
    applications: list[ApplicationOut]


class Decision(Strict):
    approve: bool
    reason: str = Field("", max_length=1000)


class CalendarFeedOut(BaseModel):
    url: str


MAX_REMINDERS = 4
MIN_OFFSET_MINUTES, MAX_OFFSET_MINUTES = 5, 14 * 24 * 60


ReminderOffset = Annotated[int, Field(ge=MIN_OFFSET_MINUTES, le=MAX_OFFSET_MINUTES),
                          whole_number("reminder time (minutes before the start)", MIN_OFFSET_MINUTES,
                                       MAX_OFFSET_MINUTES)]
GraceMinutes = Annotated[int, Field(ge=1, le=240), whole_number("grace in minutes", 1, 240)]


class ReminderPolicyIn(Strict):
    """When reminders go out: minutes before the start (at most 4, from 5 minutes to 14 days;
    an empty list sends none) and the grace after which one that could not go out is skipped."""

    offsets: list[ReminderOffset] = Field(max_length=MAX_REMINDERS)
    grace_minutes: GraceMinutes = 15

    @field_validator("offsets")
    @classmethod
    def _offsets(cls, value: list[int]) -> list[int]:
        return sorted(set(value), reverse=True)


class ReminderPolicyOut(BaseModel):
    offsets: list[int]
    grace_minutes: int
    updated_at: datetime | None
