"""Typed commands and views of handover notes and incidents, parsed once at the edge by the API
(JSON) and the pages (forms) alike. (Comments, not docstrings, on the models: a docstring would
become the schema's description in the OpenAPI document.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from caretrack.care.notes_models import IncidentKind, IncidentStatus, Severity
from caretrack.core.errors import ValidationError
from caretrack.core.validation import Id, domain_rule, has_nul, refuse, text_field, whole_number

KINDS = ", ".join(k.value for k in IncidentKind)
SEVERITIES = ", ".join(s.value for s in Severity)
STATUSES = ", ".join(s.value for s in IncidentStatus)
NO_AUDIENCE = "Mark the note for the office, for the next carer, or both."


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _one_of(what: str, allowed: set[str], listed: str) -> BeforeValidator:
    @domain_rule
    def check(value: Any) -> Any:
        if isinstance(value, str) and not has_nul(value) and value not in allowed:
            raise ValidationError(f"The {what} '{value[:30]}' is not one of: {listed}.")
        return value
    return BeforeValidator(check)


def _checkbox(value: Any) -> Any:
    # A form's checkbox sends "on" when ticked and nothing when not.
    if isinstance(value, str) and value in ("on", "1", "true", ""):
        return value != ""
    return value


Flag = Annotated[bool, BeforeValidator(_checkbox)]


def _some_audience(value: bool, info: ValidationInfo) -> bool:
    if not value and info.data.get("for_office") is False:
        raise refuse("missing", NO_AUDIENCE)
    return value


# Write a handover note on a package, for the office and/or for the next carer.
class NoteIn(Strict):
    text: Annotated[str, text_field("note", 2000)] = Field(max_length=2000)
    for_office: Flag = False
    for_next_carer: Annotated[Flag, AfterValidator(_some_audience)] = Field(False, validate_default=True)


class NoteOut(BaseModel):
    id: int
    package_id: int
    author_id: int
    author_name: str
    text: str
    for_office: bool
    for_next_carer: bool
    written_at: datetime
    completion_id: int | None = Field(None, description="Set when the note was logged with a task completion")
    task_title: str | None = None


class NoteList(BaseModel):
    notes: list[NoteOut]


# Raise an incident on a package, on its own or from a handover note.
class IncidentIn(Strict):
    kind: Annotated[Literal["fall", "medication_error", "safeguarding", "injury", "property_damage", "other"],
                    _one_of("incident type", {k.value for k in IncidentKind}, KINDS)]
    severity: Annotated[Literal["low", "medium", "high"],
                        _one_of("severity", {s.value for s in Severity}, SEVERITIES)]
    what_happened: Annotated[str, text_field("account of what happened", 4000)] = Field(max_length=4000)
    action_taken: Annotated[str | None, text_field("action taken", 4000, required=False)] = Field(
        None, max_length=4000)
    occurred_at: Annotated[datetime | None, AfterValidator(_utc)] = Field(
        None, description="When it happened; defaults to now, up to 30 days back")
    note_id: Id | None = Field(None, description="The handover note it is raised from, on the same package")


# Close an acknowledged incident with its outcome.
class IncidentClose(Strict):
    outcome: Annotated[str, text_field("outcome", 4000)] = Field(max_length=4000)


class IncidentQuery(Strict):
    status: Annotated[Literal["open", "acknowledged", "closed", "active"],
                      _one_of("status", {*(s.value for s in IncidentStatus), "active"}, STATUSES + ", active")] = (
        Field("active", description="`active` (the default) is open and acknowledged"))
    package_id: Id | None = None


class TimelineQuery(Strict):
    page: Annotated[int, whole_number("timeline page", 1, 1000)] = 1


class IncidentOut(BaseModel):
    id: int
    package_id: int
    kind: str
    kind_label: str
    severity: str
    status: str
    what_happened: str
    action_taken: str | None
    occurred_at: datetime
    raised_at: datetime
    raised_by_id: int
    raised_by_name: str
    note_id: int | None
    acknowledged_by_id: int | None
    acknowledged_at: datetime | None
    closed_by_id: int | None
    closed_at: datetime | None
    outcome: str | None


class IncidentList(BaseModel):
    incidents: list[IncidentOut]

