"""Sockets outlive the request that opened them: which ones must close because their
session or access token has ended, or their user has been deactivated, and when each
one's sign-in lapses next (the bus checks it again then, so an expiry closes it on time)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from caretrack.accounts.models import AccessToken, Session, User
from caretrack.accounts.sessions import TOUCH_INTERVAL, Authenticated, now, session_alive
from caretrack.core.settings import Settings
from caretrack.realtime.sockets import (
    CLOSE_DEACTIVATED,
    CLOSE_SESSION_ENDED,
    DEACTIVATED,
    SESSION_EXPIRED,
    SIGNED_OUT,
    TOKEN_ENDED,
    Guarded,
)

Lapses = dict[Guarded, datetime]  # when each socket left open is to be checked again


def _renew_margin(settings: Settings) -> timedelta:
    return min(TOUCH_INTERVAL, timedelta(minutes=settings.session_idle_minutes) / 2)


def session_lapses_at(session: Session, settings: Settings, *, keeps_alive: bool) -> datetime:
    """When the session times out unless it is used (or, for a socket that keeps it alive,
    when that socket renews it: shortly before its idle timeout)."""
    idle = session.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
    if keeps_alive:
        idle -= _renew_margin(settings)
    return min(session.expires_at, idle)


def lapses_at(auth: Authenticated, settings: Settings, *, keeps_alive: bool) -> datetime | None:
    """When a socket opened with this sign-in is to be checked next."""
    if auth.session is not None:
        return session_lapses_at(auth.session, settings, keeps_alive=keeps_alive)
    return auth.token.expires_at if auth.token is not None else None


async def check_connections(conns: Sequence[Guarded], settings: Settings, *, at: datetime | None = None) -> Lapses:
    """Close the sockets whose session or token has ended or whose user is deactivated;
    renew the sessions that open sockets keep alive. Returns when each socket left open
    lapses next."""
    user_ids = {c.user_id for c in conns}
    active = cast(set[int], set(await User.filter(id__in=user_ids, is_active=True).values_list("id", flat=True)))
    session_ids = {c.session_id for c in conns if c.session_id}
    token_ids = {c.token_id for c in conns if c.token_id}
    sessions = {s.id: s for s in await Session.filter(id__in=session_ids)} if session_ids else {}
    tokens = {t.id: t for t in await AccessToken.filter(id__in=token_ids)} if token_ids else {}
    moment = at or now()
    renew = {c.session_id for c in conns if c.keeps_alive and c.session_id in sessions and c.user_id in active
             and session_alive(sessions[c.session_id], settings, moment)
             and moment >= session_lapses_at(sessions[c.session_id], settings, keeps_alive=True)}
    if renew:
        await Session.filter(id__in=renew, revoked_at=None).update(last_seen_at=moment)
        for session_id in renew:
            sessions[session_id].last_seen_at = moment
    lapses: Lapses = {}
    for conn in conns:
        if conn.user_id not in active:
            conn.close_soon(CLOSE_DEACTIVATED, DEACTIVATED)
        elif conn.session_id is not None:
            session = sessions.get(conn.session_id)
            if session is None or session.revoked_at is not None:
                conn.close_soon(CLOSE_SESSION_ENDED, SIGNED_OUT)
            elif not session_alive(session, settings, moment):
                conn.close_soon(CLOSE_SESSION_ENDED, SESSION_EXPIRED)
            else:
                lapses[conn] = session_lapses_at(session, settings, keeps_alive=conn.keeps_alive)
        elif conn.token_id is not None:
            token = tokens.get(conn.token_id)
            if token is None or token.revoked_at is not None or (
                    token.expires_at is not None and moment >= token.expires_at):
                conn.close_soon(CLOSE_SESSION_ENDED, TOKEN_ENDED)
            elif token.expires_at is not None:
                lapses[conn] = token.expires_at
    return lapses
