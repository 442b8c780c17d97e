"""The visit summary's command and view (the API and the pages parse the same command)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

MAX_SUMMARY_CHARS = 20000


class SummaryWrite(BaseModel):
    """Save the doctor's draft; with `publish`, the patient can read it and is told."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_SUMMARY_CHARS)
    publish: bool = False


class SummaryOut(BaseModel):
    appointment_id: int
    text: str | None = Field(description="The published summary (what the patient reads); null until published.")
    published_at: datetime | None = Field(description="When it was first published.")
    updated_at: datetime | None = Field(description="When a changed version was last published, if it was.")
    version: int = Field(description="How many times it has been published.")
    draft: str | None = Field(default=None, description="The doctor's working text (the doctor only).")
    draft_saved_at: datetime | None = None
    unpublished_changes: bool = Field(default=False, description="The draft differs from what the patient reads "
                                                         "(the doctor only).")
