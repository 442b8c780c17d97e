"""Intake's typed commands (parsed once by the API and the pages) and the views its API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from caretrack.core.validation import Id, refuse, text_field
from caretrack.intake.models import QuestionKind

NAME_MAX, DESCRIPTION_MAX, PROMPT_MAX, CHOICE_MAX, CHOICES_MAX = 100, 1000, 300, 100, 20
TITLE_MAX, CONSENT_TEXT_MAX = 150, 20000
# The longest answer a text question may allow, and the default when none is given.
TEXT_LIMITS = {QuestionKind.SHORT_TEXT: (200, 500), QuestionKind.LONG_TEXT: (2000, 5000)}
SIGNED_NAME_MAX = 100


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TypeIn(Strict):
    """A consultation type; an admin names the doctor it belongs to, a doctor's own is theirs."""

    name: Annotated[str, text_field("name", NAME_MAX)]
    description: Annotated[str | None, text_field("description", DESCRIPTION_MAX, required=False)] = None
    doctor_id: Id | None = None


class TypeQuery(Strict):
    doctor_id: Id | None = None


class TypeUpdate(Strict):
    name: Annotated[str, text_field("name", NAME_MAX)]
    description: Annotated[str | None, text_field("description", DESCRIPTION_MAX, required=False)] = None
    archived: bool = False


class QuestionIn(Strict):
    kind: QuestionKind
    prompt: Annotated[str, text_field("question", PROMPT_MAX)]
    required: bool = True
    max_length: int | None = Field(None, ge=1, le=5000, description="Text questions: the longest answer accepted.")
    choices: list[Annotated[str, text_field("choice", CHOICE_MAX)]] = Field(default_factory=list,
                                                                            max_length=CHOICES_MAX)
    position: int | None = Field(None, ge=0, le=1000, description="Order in the questionnaire; default: last.")

    @model_validator(mode="after")
    def _fits_kind(self) -> QuestionIn:
        if self.kind == QuestionKind.CHOICE:
            if len(self.choices) < 2:
                raise refuse("invalid", "A single-choice question needs at least 2 choices (one per line).")
            if len(set(self.choices)) != len(self.choices):
                raise refuse("invalid", "Each choice must be different.")
        elif self.choices:
            raise refuse("invalid", "Only single-choice questions have choices.")
        if self.kind in TEXT_LIMITS:
            default, ceiling = TEXT_LIMITS[self.kind]
            if self.max_length is None:
                self.max_length = default
            elif self.max_length > ceiling:
                raise refuse("invalid", f"A {self.kind.value.replace('_', ' ')} answer is limited to at most "
                                        f"{ceiling} characters, not {self.max_length}.")
        else:
            self.max_length = None
        return self


class ConsentIn(Strict):
    title: Annotated[str, text_field("title", TITLE_MAX)]
    text: Annotated[str, text_field("consent text", CONSENT_TEXT_MAX)]


class ConsentSign(Strict):
    document_id: Id
    full_name: str = Field(max_length=SIGNED_NAME_MAX, description="The patient's full name, typed as a signature.")
    agreed: bool = False


class IntakeSubmission(Strict):
    """Answers by question id (yes/no: "yes" or "no"; single choice: the choice's text) and
    one signature per consent document."""

    answers: dict[str, str] = Field(default_factory=dict, max_length=200)
    consents: list[ConsentSign] = Field(default_factory=list, max_length=50)


# --- views ------------------------------------------------------------------------------------


class QuestionOut(BaseModel):
    id: int
    position: int
    kind: QuestionKind
    prompt: str
    required: bool
    max_length: int | None
    choices: list[str]


class ConsentOut(BaseModel):
    id: int
    version: int
    title: str
    text: str
    retired: bool


class TypeOut(BaseModel):
    id: int
    doctor_id: int
    name: str
    description: str
    archived: bool
    questions: list[QuestionOut]
    consents: list[ConsentOut]


class TypeList(BaseModel):
    types: list[TypeOut]


class AnswerOut(BaseModel):
    question_id: int
    prompt: str
    kind: QuestionKind
    answer: str


class SignatureOut(BaseModel):
    document_id: int
    version: int
    title: str
    signed_name: str
    signed_at: datetime


class IntakeOut(BaseModel):
    appointment_id: int
    consultation_type: str | None
    complete: bool
    submitted_at: datetime | None
    answers: list[AnswerOut]
    signatures: list[SignatureOut]
