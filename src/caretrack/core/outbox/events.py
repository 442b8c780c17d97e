"""The event payload and its one codec: what goes into the outbox, over Redis and to the
browser.

Browser wire format (server -> client):
    {"type": "hello", "user_id": 7, "seq": 41}        first message: whose stream, its last seq
    {"type": "event", "seq": 42, "event": {"type", "occurred_at", "actor_id",
                                           "subject": {"kind", "id"} | null, "data"}}
    {"type": "resync", "seq": 57}                      history is gone: refetch, continue after 57
    {"type": "ping"}
Client -> server:
    {"type": "resume", "after": 41 | null}              once, right after hello
    {"type": "pong"}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
MAX_TYPE_LENGTH = 64
MAX_DATA_BYTES = 16 * 1024  # events are wake-ups with a summary, not documents
# An event's kind (what the activity feed filters on) is its type's first segment, except:
KIND_OVERRIDES = {"user.invited": "invitation", "user.locked": "security"}


def kind_of(event_type: str) -> str:
    return KIND_OVERRIDES.get(event_type) or event_type.split(".", 1)[0]


class EventError(ValueError):
    """An event a service tried to write is malformed; the message names the problem."""


@dataclass(frozen=True)
class LiveEvent:
    type: str
    occurred_at: datetime
    actor_id: int | None
    subject_kind: str | None
    subject_id: str | None
    data: dict[str, Any]

    @property
    def kind(self) -> str:
        return kind_of(self.type)

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "occurred_at": self.occurred_at.astimezone(UTC).isoformat(timespec="milliseconds"),
            "actor_id": self.actor_id,
            "subject": None if self.subject_kind is None else {"kind": self.subject_kind, "id": self.subject_id},
            "data": self.data,
        }


def check_type(event_type: str) -> str:
    if not isinstance(event_type, str) or len(event_type) > MAX_TYPE_LENGTH or not TYPE_PATTERN.match(event_type):
        raise EventError(
            f"Event type {event_type!r} is not a dotted lower-case name such as 'booking.created' "
            f"(at most {MAX_TYPE_LENGTH} characters)."
        )
    return event_type


def check_subject(subject: tuple[str, Any] | None) -> tuple[str | None, str | None]:
    if subject is None:
        return None, None
    try:
        kind, ident = subject
    except (TypeError, ValueError):
        raise EventError(f"Event subject {subject!r} is not a (kind, id) pair.") from None
    if not isinstance(kind, str) or not kind or len(kind) > 32:
        raise EventError(f"Event subject kind {kind!r} must be a short non-empty string.")
    text = None if ident is None else str(ident)
    if text is not None and len(text) > 64:
        raise EventError(f"Event subject id {text[:20]!r}… is longer than 64 characters.")
    return kind, text


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def encode_data(event_type: str, data: dict[str, Any] | None) -> str:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EventError(f"Event {event_type!r} data must be a dict, not {type(data).__name__}.")
    try:
        text = json.dumps(data, separators=(",", ":"), default=_default, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise EventError(f"Event {event_type!r} data cannot be written as JSON: {exc}.") from None
    if len(text.encode()) > MAX_DATA_BYTES:
        raise EventError(
            f"Event {event_type!r} data is {len(text.encode())} bytes; the limit is {MAX_DATA_BYTES} "
            "(send ids and a summary; clients fetch the rest)."
        )
    return text


def event_message(seq: int, event_json: str) -> str:
    """The browser message for one event, from the event's pre-encoded JSON (encoded once
    per event, not once per recipient)."""
    return f'{{"type":"event","seq":{int(seq)},"event":{event_json}}}'


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
