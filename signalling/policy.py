"""What the host application injects: who is calling, what seat they hold, and where
chat, consent, recordings, who was in the call when, and the end of a consultation are
persisted."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from .protocol import CLOSE_REFUSED, CLOSE_RESTARTING, CLOSE_TRY_AGAIN, MAX_MESSAGE_BYTES

Role = Literal["host", "patient", "guest"]
RECONNECT_CODES = (CLOSE_RESTARTING, CLOSE_TRY_AGAIN)  # the client should come back shortly
ROLES = ("host", "patient", "guest")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.  ``id`` is also their participant id in the relay."""

    id: str
    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not 1 <= len(self.id) <= 128:
            raise ValueError(f"Principal.id must be a string of 1-128 characters, got {self.id!r}")


@dataclass(frozen=True)
class Seat:
    """The caller's place in one consultation.

    ``open`` is False once the consultation is closed (cancelled, finished);
    ``opens_at``/``closes_at`` (aware datetimes) bound when anyone may join;
    ``admitted``: the host let this caller in before (the host application remembers it
    through ``Hooks.on_admit``), so they skip the waiting room, even on another server;
    ``show`` words an instant for this caller (their zone and locale) in ``closed_reason``;
    without it, instants read in UTC ("09:50 (UTC), Wed 2 Dec");
    ``join_refused``: why the caller may not join yet although the seat is theirs (a form
    to complete first): they may still check their network, but a join is refused (4403).
    """

    role: Role
    open: bool = True
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    admitted: bool = False
    show: Callable[[datetime], str] | None = field(default=None, compare=False, repr=False)
    join_refused: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"Seat.role must be one of {ROLES}, got {self.role!r}")
        for name in ("opens_at", "closes_at"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"Seat.{name} must be timezone-aware, got {moment!r}")

    def closed_reason(self, now: datetime) -> str | None:
        """Why nobody may join now, or None."""
        if not self.open:
            return "this consultation is closed"
        show = self.show or in_utc
        if self.opens_at is not None and now < self.opens_at:
            return f"this consultation opens at {show(self.opens_at)}"
        if self.closes_at is not None and now >= self.closes_at:
            return f"this consultation's join window ended at {show(self.closes_at)}"
        return None


def in_utc(moment: datetime) -> str:
    """"09:50 (UTC), Wed 2 Dec": a seat's instants when the host application gives no ``show``."""
    utc = moment.astimezone(UTC)
    return f"{utc:%H:%M} (UTC), {utc:%a} {utc.day} {utc:%b}"


class Refused(Exception):
    """Raised by ``authorize``: the socket is closed with ``code`` (4403 refused,
    4409 closed, another 4000-4999 code, or 1012/1013 to make the client reconnect) and
    ``reason`` is shown to the caller."""

    def __init__(self, code: int = CLOSE_REFUSED, reason: str = "you may not join this consultation") -> None:
        super().__init__(reason)
        self.code = code if 4000 <= code <= 4999 or code in RECONNECT_CODES else CLOSE_REFUSED
        self.reason = reason


@dataclass(frozen=True)
class StoredChat:
    """A chat message as persisted: its id and when it was stored (aware datetime)."""

    id: str
    at: datetime


class Hooks:
    """Persistence callbacks.  Subclass and override; the defaults keep nothing.

    A hook that raises leaves the signalling state unchanged and the caller gets an
    ``error`` (4500) — except ``on_recording_started/stopped`` and ``on_leave``, which
    are told about something that happened either way (failures are logged).
    """

    def __init__(self) -> None:
        self._chat_ids = itertools.count(1)
        self._stay_ids = itertools.count(1)

    async def on_chat(self, consultation_id: str, principal: Principal, text: str) -> StoredChat:
        return StoredChat(id=str(next(self._chat_ids)), at=datetime.now(UTC))

    async def on_admit(self, consultation_id: str, host: Principal, admitted: Principal) -> None:
        return None

    async def on_recording_consent(self, consultation_id: str, principal: Principal, role: Role,
                                   granted: bool) -> None:
        return None

    async def on_recording_started(self, consultation_id: str, path: Path) -> None:
        return None

    async def on_recording_stopped(self, consultation_id: str, path: Path) -> None:
        return None

    async def on_end(self, consultation_id: str, principal: Principal) -> None:
        return None

    async def on_arrive(self, consultation_id: str, principal: Principal, role: Role) -> None:
        """Someone not yet let in came to the call and waits (failures are logged)."""
        return None

    async def on_join(self, consultation_id: str, principal: Principal, role: Role) -> str:
        """An admitted member is in the call now (their socket joined, or the host let them
        in).  Returns the id of this stay, which ``on_leave`` is given back: with several
        processes (a call moving between media workers) one person's stays may overlap.
        A reconnect that replaces the member's socket continues the stay."""
        return str(next(self._stay_ids))

    async def on_leave(self, consultation_id: str, principal: Principal, stay: str) -> None:
        """The stay ``on_join`` returned is over: they left, were dropped, or the call ended
        or moved (called after ``on_end``)."""
        return None


@dataclass(frozen=True)
class Limits:
    """Per-socket limits and timings."""

    max_message_bytes: int = MAX_MESSAGE_BYTES
    message_rate: float = 20.0  # tokens per second
    message_burst: int = 60  # bucket size (a browser trickles ~10-30 candidates at once)
    flood_strikes: int = 40  # over-budget messages in one episode before closing with 4429 (budget.py)
    flood_seconds: float = 1.0  # an episode of over-budget messages lasting this long is closed too
    join_timeout_seconds: float = 10.0
    ping_seconds: float = 20.0
    pong_timeout_seconds: float = 45.0
    send_timeout_seconds: float = 10.0
    max_outgoing: int = 1000  # queued messages for one socket before it counts as not reading
    probe_seconds: float = 30.0  # how long a network check's socket and peer connection may last

    def __post_init__(self) -> None:
        for name in ("max_message_bytes", "message_rate", "message_burst", "flood_strikes", "flood_seconds",
                     "join_timeout_seconds", "ping_seconds", "pong_timeout_seconds",
                     "send_timeout_seconds", "max_outgoing", "probe_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)!r}")
