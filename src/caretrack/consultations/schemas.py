"""JSON shapes of the consultations API: chat history, notes, recordings, guest invitations."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from caretrack.consultations.models import GuestRole
from caretrack.core.validation import refuse, text_field

GUEST_NAME_MAX = 60


class ChatItem(BaseModel):
    id: int
    at: datetime
    name: str
    participant: str
    text: str


class ChatHistory(BaseModel):
    messages: list[ChatItem]


class Notes(BaseModel):
    text: str = Field(max_length=20000)


class RecordingItem(BaseModel):
    id: int
    size_bytes: int
    started_at: datetime
    stopped_at: datetime
    download_url: str


class RecordingList(BaseModel):
    recordings: list[RecordingItem]


class GuestInviteCreate(BaseModel):
    """The doctor asks for a guest link: who it is for (one of the roles) and a label."""

    model_config = ConfigDict(extra="forbid")
    role: GuestRole = Field(description="interpreter, family (a family member), carer or clinician (another one)")
    label: Annotated[str, text_field("label", 100)] = Field(
        min_length=1, max_length=100, description="Who it is for: 'Portuguese interpreter'")


class GuestInviteItem(BaseModel):
    id: int
    role: GuestRole
    label: str
    status: Literal["open", "used", "revoked", "expired"]
    created_at: datetime
    expires_at: datetime
    display_name: str | None = Field(description="The name the guest gave when they opened the link")
    admitted_at: datetime | None


class GuestInviteLink(GuestInviteItem):
    link: str = Field(description="Single-use; the token is in the fragment and never reaches a server log.")


class GuestInviteList(BaseModel):
    invites: list[GuestInviteItem]


class GuestJoin(BaseModel):
    """A guest opens their link: the token (from the link's fragment) and the name to show in the call."""

    model_config = ConfigDict(extra="forbid")
    token: Annotated[str, text_field("invitation token", 100)]
    name: Annotated[str, text_field("name", GUEST_NAME_MAX)]
    csrf_token: str | None = None  # the form's own field (checked by the page router)

    @field_validator("name")
    @classmethod
    def _one_line_of_text(cls, name: str) -> str:
        if any(unicodedata.category(c).startswith("C") for c in name):
            raise refuse("name", "The name must be plain text on one line (no tabs, line breaks or control "
                                 "characters).")
        return name
