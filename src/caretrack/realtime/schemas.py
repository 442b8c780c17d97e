"""API schemas for the event history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from caretrack.core.validation import Sequence


class EventQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    before: Sequence | None = Field(None, ge=1,
                                    description="Only events with a smaller sequence (older), newest first.")
    after: Sequence | None = Field(None, description="Only events with a larger sequence (newer), oldest first.")
    kind: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,31}$",
                             description="The event type's first segment, e.g. 'booking'.")
    limit: int = Field(50, ge=1, le=200)


class EventSubject(BaseModel):
    kind: str
    id: str | None


class EventItem(BaseModel):
    seq: int = Field(description="This event's number in the caller's stream.")
    type: str
    kind: str
    kind_label: str
    occurred_at: datetime
    actor_id: int | None
    actor_name: str | None
    subject: EventSubject | None
    data: dict[str, Any]
    text: str = Field(description="A readable line describing the event.")


class EventPage(BaseModel):
    items: list[EventItem]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page; null at the end.")
