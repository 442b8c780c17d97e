"""Typed commands and views of the rota and of visits (check-in and check-out), parsed once at
the edge by the API and the pages alike, as caretrack.care.schemas does for the rest of care."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from caretrack.assessments.schemas import CarerId
from caretrack.care.rota import MAX_LENGTH, MIN_LENGTH, check_weekdays
from caretrack.care.schedule import check_clock, clock
from caretrack.core.errors import ValidationError
from caretrack.core.validation import date_field, domain_rule, has_nul, whole_number

VisitState = Literal["upcoming", "due", "checked_in", "done", "late", "missed"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


@domain_rule
def _weekdays(value: Any) -> Any:
    """A form gives "1,3,5" or the ticked boxes; a body a list of ISO weekdays (Monday is 1)."""
    if has_nul(value) or value is None:
        return value
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, (str, int)) and
                                                                   not isinstance(v, bool) for v in value)):
        return [int(d) for d in check_weekdays(value)]
    return value


@domain_rule
def _start(value: Any) -> Any:
    if isinstance(value, str) and not has_nul(value):
        minutes = check_clock(value, "start time")
        if minutes >= 24 * 60:
            raise ValidationError("A visit starts before midnight: give a start from 00:00 to 23:59.")
        return clock(minutes)
    return value


Weekdays = Annotated[list[Annotated[int, Field(ge=1, le=7)]], BeforeValidator(_weekdays),
                     Field(min_length=1, max_length=7, description="ISO weekdays, Monday is 1")]
Start = Annotated[str, BeforeValidator(_start), Field(pattern=r"^\d\d:\d\d$", description="HH:MM, the package's clock")]
Length = Annotated[int, Field(ge=MIN_LENGTH, le=MAX_LENGTH, description="minutes"),
                   whole_number("visit length (minutes)", MIN_LENGTH, MAX_LENGTH)]


class RotaEntryIn(_Strict):  # put a visit on a package's rota

    carer_id: CarerId | None = Field(None, description="one of the package's carers; none: nobody yet")
    weekdays: Weekdays
    start: Start
    length: Length = 30

    def start_minutes(self) -> int:
        return check_clock(self.start, "start time")


# Change a rota entry: only the fields given change; `carer_id` null unassigns it. (A comment, not
# a docstring: a docstring would become the schema's description in the OpenAPI document.)
class RotaEntryChange(_Strict):

    carer_id: CarerId | None = None
    weekdays: Weekdays | None = None
    start: Start | None = None
    length: Length | None = None


class RotaEntryOut(BaseModel):
    id: int
    package_id: int
    carer_id: int | None
    carer_name: str | None
    weekdays: list[int]
    days: str
    start: str
    length: int
    time_zone: str


class RotaList(BaseModel):
    entries: list[RotaEntryOut]


Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Accuracy = Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False, description="metres")]


# Check in to or out of a visit: the date of the visit (the package's date) and, when the phone
# gives it, where the carer is.
class VisitCheck(_Strict):
    on_date: Annotated[date, date_field("visit date")]
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    accuracy: Accuracy | None = None

    @model_validator(mode="after")
    @domain_rule
    def _both_or_neither(self) -> VisitCheck:
        if (self.latitude is None) != (self.longitude is None):
            raise ValidationError("Give the latitude and the longitude together, or neither.")
        if self.latitude is None and self.accuracy is not None:
            raise ValidationError("An accuracy needs a latitude and a longitude.")
        return self

    def location(self) -> str | None:
        return None if self.latitude is None else f"{self.latitude:.6f},{self.longitude:.6f}"


class VisitOut(BaseModel):
    entry_id: int
    package_id: int
    on_date: date
    time: str = Field(description="the start on the package's clock")
    end_time: str
    time_zone: str
    length: int
    starts_at: datetime
    ends_at: datetime
    client_name: str
    carer_id: int | None
    carer_name: str | None
    state: VisitState
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None
    checked_in_late: bool = False
    # Where the phone was ("lat,lon", metres): PHI, given to admins only, on a package's list.
    in_location: str | None = None
    in_accuracy: float | None = None
    out_location: str | None = None
    out_accuracy: float | None = None
    replayed: bool = False


class VisitList(BaseModel):
    visits: list[VisitOut]


class VisitQuery(_Strict):
    on_date: Annotated[date | None, date_field("visit date", required=False)] = None
