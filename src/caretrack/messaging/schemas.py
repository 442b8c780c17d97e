"""Messaging's commands (what a caller asks for, validated once at the edge) and the views
the API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from caretrack.core.validation import Id, text_field

MAX_MESSAGE_LENGTH = 4000
PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


class ThreadStart(BaseModel):
    """Open (or find) the thread with someone: a patient names their doctor, a doctor their
    patient, an admin a carer; a carer leaves `with_user_id` out (their thread is with the office)."""

    model_config = ConfigDict(extra="forbid")
    with_user_id: Id | None = None


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str | None, text_field("message", MAX_MESSAGE_LENGTH, required=False)] = Field(
        None, description=f"Up to {MAX_MESSAGE_LENGTH} characters; left out when the page's form attaches files.")


class ThreadQuery(BaseModel):
    """A page of a thread: the newest messages by default, those before `before` (older
    pages) or after `after` (what arrived since)."""

    model_config = ConfigDict(extra="forbid")
    before: Id | None = None
    after: Id | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE


class AttachmentView(BaseModel):
    id: int
    name: str
    content_type: str
    size_bytes: int
    download_url: str


class MessageView(BaseModel):
    id: int
    sender_id: int
    sender_name: str
    mine: bool
    text: str
    sent_at: datetime
    read_at: datetime | None = Field(description="When the other side first read it; shown to its sender as 'Read'.")
    attachments: list[AttachmentView]


class ThreadSummary(BaseModel):
    id: int
    kind: Literal["care", "office"]
    with_name: str = Field(description="The other side: a doctor's or patient's name, a carer's, or 'The office'.")
    state: Literal["open", "closed", "blocked"]
    closed_at: datetime | None
    blocked_by_me: bool
    can_send: bool
    send_refusal: str | None = Field(description="Why sending is refused here, when it is.")
    unread: int
    last_message_at: datetime
    url: str


class ThreadList(BaseModel):
    threads: list[ThreadSummary]
    unread_total: int


class ThreadPage(BaseModel):
    thread: ThreadSummary
    messages: list[MessageView] = Field(description="Oldest first.")
    older: bool = Field(description="Whether messages older than the first one here exist.")


class UnreadCount(BaseModel):
    unread: int
