"""Sockets outlive the request that opened them: which ones must close because their
session or access token has ended, or their user has been deactivated."""

from __future__ import annotations

from collections.abc import Sequence

from caretrack.accounts.models import AccessToken, Session, User
from caretrack.accounts.sessions import now, session_alive
from caretrack.core.settings import Settings
from caretrack.realtime.sockets import CLOSE_DEACTIVATED, CLOSE_SESSION_ENDED, Socket


async def check_connections(conns: Sequence[Socket], settings: Settings) -> None:
    """Close the sockets whose session or token has ended or whose user is deactivated."""
    user_ids = {c.user_id for c in conns}
    active = set(await User.filter(id__in=user_ids, is_active=True).values_list("id", flat=True))
    session_ids = {c.session_id for c in conns if c.session_id}
    token_ids = {c.token_id for c in conns if c.token_id}
    sessions = {s.id: s for s in await Session.filter(id__in=session_ids)} if session_ids else {}
    tokens = {t.id: t for t in await AccessToken.filter(id__in=token_ids)} if token_ids else {}
    moment = now()
    for conn in conns:
        if conn.user_id not in active:
            conn.close_soon(CLOSE_DEACTIVATED, "account deactivated")
        elif conn.session_id is not None:
            session = sessions.get(conn.session_id)
            if session is None or not session_alive(session, settings, moment):
                conn.close_soon(CLOSE_SESSION_ENDED, "session ended")
        elif conn.token_id is not None:
            token = tokens.get(conn.token_id)
            if token is None or token.revoked_at is not None or (
                    token.expires_at is not None and moment >= token.expires_at):
                conn.close_soon(CLOSE_SESSION_ENDED, "access token revoked or expired")
