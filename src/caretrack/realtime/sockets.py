"""What the hub knows of an open /ws/events socket: its close codes, and the `Socket`
protocol the bus and the session check need (the connection itself is
caretrack.realtime.connection, which depends on the bus, not the other way round).

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


class Socket(Protocol):
    """An open socket, as the hub sees it."""

    user_id: int
    session_id: str | None
    token_id: int | None
    last_sent: int
    behind_at_last_check: int
    ready: bool

    def offer(self, seq: int, event_json: str) -> None: ...

    def close_soon(self, code: int, reason: str) -> None: ...

    def request_catch_up(self) -> None: ...

    def heartbeat(self, moment: float) -> None: ...

    def stuck(self, moment: float) -> bool: ...
