"""Notifications' commands and views: each user's channel per kind of notification, and the
admin's outbound list (emails and text messages in one place)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from caretrack.core.roles import Role
from caretrack.core.validation import refuse


class Kind(StrEnum):
    APPOINTMENT_REMINDER = "appointment_reminder"
    MESSAGE_NUDGE = "message_nudge"
    CARE_REMINDER = "care_reminder"
    COMPETENCY_DIGEST = "competency_digest"
    VISIT_FOLLOW_UP = "visit_follow_up"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    BOTH = "both"
    NONE = "none"


DEFAULT_CHANNEL = Channel.EMAIL
LABELS = {
    Kind.APPOINTMENT_REMINDER: "Appointment reminders",
    Kind.MESSAGE_NUDGE: "Unread message nudges",
    Kind.CARE_REMINDER: "Visit and assessment reminders",
    Kind.COMPETENCY_DIGEST: "Daily digest of expiring competencies",
    Kind.VISIT_FOLLOW_UP: "Visit summaries and follow-up offers",
}
# Who gets which kind: a kind is offered (and may be set) only to these roles.
KINDS_FOR_ROLE: dict[Role, tuple[Kind, ...]] = {
    Role.PATIENT: (Kind.APPOINTMENT_REMINDER, Kind.MESSAGE_NUDGE, Kind.VISIT_FOLLOW_UP),
    Role.DOCTOR: (Kind.APPOINTMENT_REMINDER, Kind.MESSAGE_NUDGE),
    Role.CARER: (Kind.CARE_REMINDER, Kind.MESSAGE_NUDGE),
    Role.ADMIN: (Kind.COMPETENCY_DIGEST, Kind.MESSAGE_NUDGE),
}
CHANNEL_SETS: dict[Channel, frozenset[str]] = {
    Channel.EMAIL: frozenset({"email"}),
    Channel.SMS: frozenset({"sms"}),
    Channel.BOTH: frozenset({"email", "sms"}),
    Channel.NONE: frozenset(),
}


class PreferencesUpdate(BaseModel):
    """The kinds given change; the others keep their channel."""

    model_config = ConfigDict(extra="forbid")

    preferences: dict[Kind, Channel] = Field(
        description="kind → email | sms | both | none; sms and both need a phone number on your profile")

    @field_validator("preferences", mode="before")
    @classmethod
    def _known(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for kind, channel in value.items():
                if kind not in Kind.__members__.values():
                    raise refuse("kind", f"'{str(kind)[:40]}' is not a kind of notification; the kinds are "
                                         f"{', '.join(Kind)}.")
                if isinstance(channel, str) and channel not in Channel.__members__.values():
                    raise refuse("channel", f"'{channel[:40]}' is not a channel; choose email, sms, both or none.")
        return value


class PreferenceOut(BaseModel):
    kind: Kind
    label: str
    channel: Channel


class PreferencesOut(BaseModel):
    preferences: list[PreferenceOut]
    sms_available: bool = Field(description="Whether you have a phone number on your profile (SMS needs one)")


class StatusCallbackOut(BaseModel):
    result: Literal["updated", "ignored"]


OUTBOUND_STATES = ("queued", "sending", "sent", "delivered", "undelivered", "failed", "dead", "stored")


class OutboundQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["all", "email", "sms"] = "all"
    state: Literal["", "queued", "sending", "sent", "delivered", "undelivered", "failed", "dead", "stored"] = ""
    page: int = Field(1, ge=1, le=1000)

    @field_validator("channel", mode="before")
    @classmethod
    def _channel(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in ("all", "email", "sms"):
            raise refuse("channel", "Choose the channel all, email or sms.")
        return value or "all"

    @field_validator("state", mode="before")
    @classmethod
    def _state(cls, value: Any) -> Any:
        if isinstance(value, str) and value and value not in OUTBOUND_STATES:
            raise refuse("state", f"Choose a state among {', '.join(OUTBOUND_STATES)}.")
        return value

    @field_validator("page", mode="before")
    @classmethod
    def _page(cls, value: Any) -> Any:
        if isinstance(value, str) and not (value.isdigit() and 1 <= int(value) <= 1000):
            raise refuse("page", "The page is a whole number from 1 to 1000.")
        return value or 1


class OutboundRow(BaseModel):
    channel: Literal["email", "sms"]
    id: int
    to: str
    summary: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    can_resend: bool
