"""What the hub knows of an open /ws/events socket: its close codes, and the `Socket`
protocol the bus and the session check need (the connection itself is
caretrack.realtime.connection, which depends on the bus, not the other way round).
`Guarded` is the part the session check needs, which other sockets that live with a
sign-in (a call's /ws/signal, see caretrack.site.calls) share.

Close codes (the reason says more):
    1001 server shutting down        1003 binary message
    1008 too many sockets            1009 message too big
    4400 malformed message           4401 session ended (signed out, expired, revoked)
    4403 account deactivated         4408 heartbeat or resume timeout, or not reading
    4429 flooding (too many messages)
"""

from __future__ import annotations

from typing import Protocol

CLOSE_GOING_AWAY = 1001
GOING_AWAY = "server shutting down"
CLOSE_BINARY = 1003
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_MALFORMED = 4400
CLOSE_SESSION_ENDED = 4401
CLOSE_DEACTIVATED = 4403
CLOSE_TIMEOUT = 4408
CLOSE_FLOOD = 4429


# The reasons a socket closed by the session check gives (a call page shows them).
SIGNED_OUT = "You were signed out."
SESSION_EXPIRED = "Your session expired: sign in again."
TOKEN_ENDED = "The access token was revoked or has expired."
DEACTIVATED = "Your account was deactivated."


class Guarded(Protocol):
    """A socket that lives only as long as the sign-in that opened it. ``keeps_alive``: an
    open socket of this kind counts as activity, so the session's idle timeout does not
    end it (a call in progress); the absolute timeout still does."""

    user_id: int
    session_id: str | None
    token_id: int | None
    keeps_alive: bool

    def close_soon(self, code: int, reason: str) -> None: ...


class Socket(Guarded, Protocol):
    """An open socket, as the hub sees it."""

    last_sent: int
    behind_at_last_check: int
    ready: bool

    def offer(self, seq: int, event_json: str) -> None: ...

    def request_catch_up(self) -> None: ...

    def heartbeat(self, moment: float) -> None: ...

    def stuck(self, moment: float) -> bool: ...
