"""Join tickets: how a front process that authorised a caller vouches for them to the
media worker that hosts the consultation.

A ticket is ``base64url(json).base64url(hmac-sha256)`` under a key both sides share.  It
names the caller, the consultation and the seat the front's ``authorize`` granted, and
expires after ``ttl`` seconds (it is only presented while the worker connection opens).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import datetime

from .policy import Principal, Refused, Seat
from .protocol import CLOSE_UNAUTHENTICATED

HEADER = "x-caretrack-ticket"
TTL_SECONDS = 30.0


@dataclass(frozen=True)
class TicketHolder(Principal):
    """A principal whose seat in one consultation a ticket vouches for."""

    consultation: str = ""
    seat: Seat | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def issue(key: bytes, principal: Principal, consultation_id: str, seat: Seat, *,
          ttl: float = TTL_SECONDS, now: float | None = None) -> str:
    if len(key) < 16:
        raise ValueError("a ticket key must be at least 16 bytes")
    moment = time.time() if now is None else now
    body = _b64(json.dumps({
        "p": principal.id, "n": principal.name, "c": consultation_id,
        "r": seat.role, "o": seat.open, "a": _iso(seat.opens_at), "z": _iso(seat.closes_at),
        "d": seat.admitted,
        "x": round(moment + ttl, 3),
    }, separators=(",", ":")).encode())
    return f"{body}.{_sign(key, body)}"


def redeem(key: bytes, ticket: str | None, *, now: float | None = None) -> TicketHolder:
    """The holder a valid ticket names; :class:`Refused` (4401) for anything else."""
    if not ticket or ticket.count(".") != 1 or len(ticket) > 4096:
        raise Refused(CLOSE_UNAUTHENTICATED, "a join ticket is required")
    body, signature = ticket.split(".")
    if not hmac.compare_digest(signature, _sign(key, body)):
        raise Refused(CLOSE_UNAUTHENTICATED, "the join ticket's signature does not match")
    try:
        data = json.loads(_unb64(body))
        expires = float(data["x"])
        seat = Seat(data["r"], bool(data["o"]),
                    datetime.fromisoformat(data["a"]) if data["a"] else None,
                    datetime.fromisoformat(data["z"]) if data["z"] else None, bool(data["d"]))
        holder = TicketHolder(str(data["p"]), str(data["n"]), consultation=str(data["c"]), seat=seat)
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused(CLOSE_UNAUTHENTICATED, f"the join ticket is malformed: {exc}") from None
    if (time.time() if now is None else now) > expires:
        raise Refused(CLOSE_UNAUTHENTICATED, "the join ticket has expired")
    return holder


def authorize_holder(principal: Principal, consultation_id: str) -> Seat:
    """``authorize`` for a worker: the seat the ticket grants, for its consultation only."""
    if not isinstance(principal, TicketHolder) or principal.seat is None:
        raise Refused(reason="this endpoint admits ticket holders only")
    if principal.consultation != consultation_id:
        raise Refused(reason=f"the join ticket is for another consultation, not {consultation_id!r}")
    return principal.seat
