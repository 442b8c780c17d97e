"""JSON shapes of the consultations API: chat history, notes, recordings, guest invitations."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


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
    label: str = Field(min_length=1, max_length=100)


class GuestInviteLink(BaseModel):
    link: str = Field(description="Single-use; the token is in the fragment and never reaches a server log.")
