"""Typed commands and views of care: one command per action, parsed once at the edge by the
API (JSON) and the page (form) alike, and handed to the service as it is.

The commands' validators run the domain's checks through `domain_rule`: each broken rule is
reported at its field with the sentence a person reads, the same for a page (its first
problem) and for the API (every wrong field). Type errors stay pydantic's, field by field."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from caretrack.assessments.schemas import CarerId
from caretrack.care.models import NOT_DONE_REASONS, CareTask, Period, TaskCompletion
from caretrack.care.notes_schemas import Flag
from caretrack.care.schedule import check_clock, check_visit_times, clock
from caretrack.care.visit_schemas import VisitOut
from caretrack.core.clock import zone_names
from caretrack.core.errors import ValidationError
from caretrack.core.validation import (
    Id,
    check_text,
    date_field,
    domain_rule,
    has_nul,
    refuse,
    text_field,
    whole_number,
)

PERIODS = ", ".join(p.value for p in Period)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


PHONE_CHARS = re.compile(r"\+?[0-9 ()-]+")


def _phone(what: str) -> Any:
    """A contact's phone as written (spaces and brackets kept), with 7 to 15 digits; `tel_uri`
    makes it a link."""
    @domain_rule
    def check(value: Any) -> Any:
        if value is not None and (not isinstance(value, str) or has_nul(value)):
            return value
        text = check_text(value, what, max_length=40, required=False)
        if text is not None and (not PHONE_CHARS.fullmatch(text) or not 7 <= sum(c.isdigit() for c in text) <= 15):
            raise ValidationError(f"The {what} '{text}' is not a phone number: give 7 to 15 digits (spaces, "
                                  "brackets, dashes and a leading + are fine), for example 01632 960 123.")
        return text
    return BeforeValidator(check)


def tel_uri(phone: str | None) -> str | None:
    """`tel:` link of a phone as written: "+44 (0)1632 960123" -> "tel:+4401632960123"."""
    if not phone:
        return None
    if phone.startswith("+"):
        phone = phone.replace("(0)", "")  # "+44 (0)20": the trunk 0 is not dialled after the country code
    return "tel:" + ("+" if phone.startswith("+") else "") + "".join(c for c in phone if c.isdigit())


ClientName = Annotated[str, text_field("client's name", 200), Field(max_length=200)]
Address = Annotated[Annotated[str, Field(max_length=500)] | None, text_field("address", 500, required=False)]
CareNotes = Annotated[Annotated[str, Field(max_length=4000)] | None, text_field("care notes", 4000, required=False)]
AccessNotes = Annotated[Annotated[str, Field(max_length=1000)] | None, text_field("access notes", 1000, required=False),
                        Field(description="Getting in: key safe, door, pets")]
Allergies = Annotated[Annotated[str, Field(max_length=1000)] | None, text_field("allergies", 1000, required=False)]
KinName = Annotated[Annotated[str, Field(max_length=200)] | None, text_field("next of kin's name", 200, required=False)]
KinRelationship = Annotated[Annotated[str, Field(max_length=100)] | None,
                            text_field("next of kin's relationship", 100, required=False)]
KinPhone = Annotated[Annotated[str, Field(max_length=40)] | None, _phone("next of kin's phone")]
GpPractice = Annotated[Annotated[str, Field(max_length=200)] | None, text_field("GP practice", 200, required=False)]
GpPhone = Annotated[Annotated[str, Field(max_length=40)] | None, _phone("GP's phone")]
StartsOn = Annotated[date, date_field("start date")]
EndsOn = Annotated[date | None, date_field("end date", required=False)]


class _PackageRules(Strict):
    """The rules of a package's fields, shared by creating and changing one."""

    @field_validator("time_zone", mode="before", check_fields=False)
    @classmethod
    @domain_rule
    def _time_zone(cls, value: Any) -> Any:
        if value == "":
            return None
        if isinstance(value, str) and not has_nul(value) and value not in zone_names():
            raise ValidationError(f"'{value[:64]}' is not a time zone (for example Europe/London).")
        return value

    @field_validator("visit_times", mode="before", check_fields=False)
    @classmethod
    @domain_rule
    def _visit_times(cls, value: Any) -> Any:
        """A form gives '08:00, 13:00'; a body a list. Either way: sorted, once each, HH:MM."""
        if has_nul(value):
            return value
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return [t for t in check_visit_times(value).split(",") if t]
        return value


def check_dates(starts_on: date, ends_on: date | None) -> None:
    if ends_on is not None and ends_on < starts_on:
        raise ValidationError(f"The package ends ({ends_on}) before it starts ({starts_on}).")


class PackageIn(_PackageRules):  # create a care package

    client_name: ClientName
    address: Address = None
    care_notes: CareNotes = None
    access_notes: AccessNotes = None
    allergies: Allergies = None
    next_of_kin_name: KinName = None
    next_of_kin_relationship: KinRelationship = None
    next_of_kin_phone: KinPhone = None
    gp_practice: GpPractice = None
    gp_phone: GpPhone = None
    starts_on: StartsOn
    ends_on: EndsOn = None
    visit_times: list[str] = Field(default_factory=list, max_length=12, description="HH:MM, daily")
    time_zone: str | None = Field(None, max_length=64, description="IANA zone of the client's home; "
                                  "the agency's (CARETRACK_CARE_TIME_ZONE) when not given")

    @model_validator(mode="after")
    @domain_rule
    def _dates_in_order(self) -> PackageIn:
        check_dates(self.starts_on, self.ends_on)
        return self


# Change a package's details: only the fields given change; a blank or null optional detail is
# cleared (ends_on null: open-ended again). The dates are checked against the ones stored.
class PackageChange(_PackageRules):

    client_name: ClientName | None = None
    address: Address = None
    care_notes: CareNotes = None
    access_notes: AccessNotes = None
    allergies: Allergies = None
    next_of_kin_name: KinName = None
    next_of_kin_relationship: KinRelationship = None
    next_of_kin_phone: KinPhone = None
    gp_practice: GpPractice = None
    gp_phone: GpPhone = None
    starts_on: StartsOn | None = None
    ends_on: EndsOn = None
    # Visits are changed on the package's rota (/care/packages/{id}/rota), not here.
    time_zone: str | None = Field(None, max_length=64, description="IANA zone of the client's home")

    @field_validator("client_name", "starts_on", mode="before")
    @classmethod
    def _not_cleared(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            what = "start date" if info.field_name == "starts_on" else "client's name"
            raise refuse("missing", f"The {what} cannot be cleared; leave it out to keep it.")
        return value

    def given(self) -> dict[str, Any]:
        """The fields the request gave. A time zone given as null is left as it is."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)
                if not (name == "time_zone" and getattr(self, name) is None)}


class PackageEnd(Strict):  # end a package on its last day of care

    ends_on: Annotated[date, date_field("last day")] = Field(description="The last day of care (inclusive)")


class RemoveCarerQuery(Strict):  # take a carer off a package

    tasks_to: CarerId | None = Field(None, description="A carer on the package who takes over the leaving "
                                     "carer's active tasks; without one, they are flagged as needing a carer")


class CarerRef(Strict):  # assign a carer to a package

    carer_id: CarerId


class CarerOut(BaseModel):
    id: int
    full_name: str


@domain_rule
def _period(value: Any) -> Any:
    if isinstance(value, str) and not has_nul(value) and value not in {p.value for p in Period}:
        raise ValidationError(f"The period '{value[:20]}' is not one of: {PERIODS}.")
    return value


def _window(what: str, blank: str) -> Any:
    @domain_rule
    def check(value: Any) -> Any:
        if value is None or (isinstance(value, str) and not has_nul(value)):
            return clock(check_clock(value or blank, what))
        return value
    return BeforeValidator(check)


Title = Annotated[str, Field(max_length=120), text_field("task title", 120)]
# A form's "no skill needed" is blank.
SkillId = Annotated[Id | None, BeforeValidator(lambda v: None if v == "" else v)]
SKILL_TEXT = "The competency (skill id) the task needs; null for none. A carer without it current is warned of."
Target = Annotated[int, Field(ge=1, le=50), whole_number("target", 1, 50)]
PeriodName = Annotated[Literal["day", "visit", "week"], BeforeValidator(_period)]


def _check_window(start: str, end: str) -> tuple[int, int]:
    first, last = check_clock(start, "window start"), check_clock(end, "window end")
    if last <= first:
        raise ValidationError(f"The due window ends ({clock(last)}) before it starts ({clock(first)}).")
    return first, last


class TaskIn(Strict):  # add a task with a target to a package

    carer_id: CarerId
    title: Title
    target: Target
    period: PeriodName
    window_start: Annotated[str, _window("window start", "00:00")] = Field("00:00", description="HH:MM")
    window_end: Annotated[str, _window("window end", "24:00")] = Field("24:00", description="HH:MM")
    required_skill_id: SkillId = Field(None, description=SKILL_TEXT)

    @model_validator(mode="after")
    @domain_rule
    def _window_in_order(self) -> TaskIn:
        if not has_nul([self.window_start, self.window_end]):
            _check_window(self.window_start, self.window_end)
        return self

    def window(self) -> tuple[int, int]:
        """The due window in minutes after midnight."""
        return _check_window(self.window_start, self.window_end)


# Change, reassign or end a task: only the fields given change (required_skill_id given as null
# means no skill needed). A window given by one end only runs from midnight or to midnight at
# the other. (Comments, not docstrings: a docstring would become the schema's description in the
# OpenAPI document.)
class TaskChange(Strict):

    carer_id: CarerId | None = None
    title: Title | None = None
    target: Target | None = None
    period: PeriodName | None = None
    window_start: Annotated[str | None, BeforeValidator(lambda v: v or None)] = None
    window_end: Annotated[str | None, BeforeValidator(lambda v: v or None)] = None
    is_active: bool | None = None
    required_skill_id: SkillId = Field(None, description=SKILL_TEXT + " Left out: unchanged.")

    @model_validator(mode="after")
    @domain_rule
    def _window_in_order(self) -> TaskChange:
        if not has_nul([self.window_start or "", self.window_end or ""]):
            self.window()
        return self

    def window(self) -> tuple[int, int] | None:
        if self.window_start is None and self.window_end is None:
            return None
        return _check_window(self.window_start or "00:00", self.window_end or "24:00")


class TaskOut(BaseModel):
    id: int
    package_id: int
    carer_id: int
    title: str
    target: int
    period: str
    window_start: str
    window_end: str
    is_active: bool
    needs_carer: bool = Field(False, description="Its carer left the package; reassign it to a carer on it")
    required_skill_id: int | None = None

    @classmethod
    def of(cls, task: CareTask) -> TaskOut:
        return cls(id=task.id, package_id=task.package_id, carer_id=task.carer_id, title=task.title,
                   target=task.target, period=str(task.period), window_start=clock(task.window_start),
                   window_end=clock(task.window_end), is_active=task.is_active, needs_carer=task.needs_carer,
                   required_skill_id=task.required_skill_id)


class TaskSaved(TaskOut):
    warnings: list[str] = Field(description="Saved all the same: e.g. its carer does not hold the competency "
                                            "it needs current")


class PackageOut(BaseModel):
    id: int
    client_name: str
    address: str | None
    care_notes: str | None
    access_notes: str | None
    allergies: str | None
    next_of_kin_name: str | None
    next_of_kin_relationship: str | None
    next_of_kin_phone: str | None
    gp_practice: str | None
    gp_phone: str | None
    starts_on: date
    ends_on: date | None
    visit_times: list[str]
    time_zone: str
    archived_at: datetime | None
    carers: list[CarerOut]
    tasks: list[TaskOut]

    def carer_name(self, carer_id: int) -> str:
        return next((c.full_name for c in self.carers if c.id == carer_id), "")


class PackageSummary(BaseModel):
    id: int
    client_name: str
    starts_on: date
    ends_on: date | None
    archived_at: datetime | None = None


class PackageListQuery(Strict):
    archived: bool = Field(False, description="Admins: the archived packages instead of the others")


class PackageList(BaseModel):
    packages: list[PackageSummary]


class TaskProgressOut(BaseModel):
    task: TaskOut
    client_name: str
    done: int
    expected: int
    period: str
    window_state: Literal["upcoming", "open", "closed"]
    blocked: str | None = Field(None, description="Why the carer should not do it yet (a competency it needs)")
    time_zone: str = Field(description="The package's zone: its window and today are on this clock")


class TodayOut(BaseModel):
    day: date
    visits: list[VisitOut]
    tasks: list[TaskProgressOut]


KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@domain_rule
def _key(value: Any) -> Any:
    if isinstance(value, str) and not has_nul(value) and not KEY_RE.match(value):
        raise ValidationError("The idempotency key must be 8 to 64 letters, digits, '-' or '_'.")
    return value


def _reason(value: str | None, info: ValidationInfo) -> str | None:
    # Only a task not done has a reason, and it must have one.
    if info.data.get("status") != "not_done":
        return None
    if not value:
        raise refuse("missing", "Say why the task was not done.")
    if value not in NOT_DONE_REASONS:
        raise refuse("reason", f"The reason '{value[:40]}' is not one of: {', '.join(NOT_DONE_REASONS)} "
                               "(say more in the note).")
    return value


def _needs_note(value: bool, info: ValidationInfo) -> bool:
    # Only a note can be for someone (a note that failed its own check is reported there).
    if value and "note" in info.data and not info.data["note"]:
        raise refuse("missing", "Write a note to mark it for the office or the next carer.")
    return value


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


# Log a task done or not done, or correct a completion (the same fields). How long ago it may
# have happened depends on the clock, so the service checks `occurred_at` against it.
class CompletionIn(Strict):
    idempotency_key: Annotated[str, BeforeValidator(_key)] = Field(
        min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
        description="Generated by the client; a retry sends the same key and is recorded once")
    status: Literal["done", "not_done"] = "done"
    reason: Annotated[str | None, text_field("reason", 200, required=False), AfterValidator(_reason)] = Field(
        None, max_length=200, description=f"Required when not done: one of {', '.join(NOT_DONE_REASONS)}",
        validate_default=True)
    note: Annotated[str | None, text_field("note", 2000, required=False)] = Field(None, max_length=2000)
    note_for_office: Annotated[Flag, AfterValidator(_needs_note)] = Field(
        False, description="The note is a handover note for the office (the package's timeline, the admins' feed)")
    note_for_next_carer: Annotated[Flag, AfterValidator(_needs_note)] = Field(
        False, description="The note is a handover note for the next carer to visit the client")
    occurred_at: Annotated[datetime | None, AfterValidator(_utc)] = Field(
        None, description="Defaults to now; up to 7 days back")


class CompletionOut(BaseModel):
    id: int
    task_id: int
    status: str
    reason: str | None
    note: str | None
    occurred_at: datetime
    recorded_at: datetime
    corrects_id: int | None
    superseded: bool
    early: bool = Field(description="Done before the task's window opened: recorded, not counted")
    replayed: bool = False

    @classmethod
    def of(cls, completion: TaskCompletion, note: str | None, replayed: bool = False) -> CompletionOut:
        return cls(id=completion.id, task_id=completion.task_id, status=str(completion.status),
                   reason=completion.reason, note=note, occurred_at=completion.occurred_at,
                   recorded_at=completion.recorded_at, corrects_id=completion.corrects_id,
                   superseded=completion.superseded_at is not None, early=completion.early, replayed=replayed)


class CompletionList(BaseModel):
    completions: list[CompletionOut]


class ProgressQuery(Strict):
    start: Annotated[date, date_field("start date")]
    end: Annotated[date, date_field("end date")]
    carer_id: Id | None = None
    package_id: Id | None = None


class ProgressRowOut(BaseModel):
    task_id: int
    label: str
    done: int
    expected: int
    percent: int


class ProgressOut(BaseModel):
    start: date
    end: date
    rows: list[ProgressRowOut]
    done: int = Field(description="Done across the rows")
    expected: int = Field(description="Expected across the rows, from each task's targets over the period")
    percent: int
