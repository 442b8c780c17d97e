"""The sign-in check every open socket gets: who is closed with which reason, whose session
an open call renews, and when each socket left open is to be checked again (at pinned
instants)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from caretrack.accounts.models import Session, User
from caretrack.accounts.sessions import digest
from caretrack.realtime.access import check_connections
from caretrack.realtime.sockets import (
    CLOSE_DEACTIVATED,
    CLOSE_SESSION_ENDED,
    DEACTIVATED,
    SESSION_EXPIRED,
    SIGNED_OUT,
)
from tests.realtime.conftest import make_user, sign_in

T = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # sessions here were last used at T; idle timeout 30 min


@dataclass(eq=False)
class Probe:
    user_id: int
    session_id: str | None
    keeps_alive: bool = False
    token_id: int | None = None
    closed: list[tuple[int, str]] = field(default_factory=list)

    def close_soon(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))


async def probe(user: User, settings, *, keeps_alive: bool = False) -> Probe:
    cookie = await sign_in(user, settings)
    session_id = digest(cookie.split("=", 1)[1])
    await Session.filter(id=session_id).update(last_seen_at=T, expires_at=T + timedelta(hours=12))
    return Probe(user.id, session_id, keeps_alive)


async def test_each_socket_is_checked_again_when_its_session_would_lapse(database):
    settings = database
    user = await make_user()
    page, call = await probe(user, settings), await probe(user, settings, keeps_alive=True)
    lapses = await check_connections([page, call], settings, at=T + timedelta(minutes=10))
    assert lapses == {page: T + timedelta(minutes=30), call: T + timedelta(minutes=29)}
    assert page.closed == call.closed == []

    # a minute before the idle timeout the call renews its session; the page's is left to lapse
    moment = T + timedelta(minutes=29, seconds=5)
    lapses = await check_connections([page, call], settings, at=moment)
    assert lapses == {page: T + timedelta(minutes=30), call: moment + timedelta(minutes=29)}
    assert (await Session.get(id=call.session_id)).last_seen_at == moment
    assert (await Session.get(id=page.session_id)).last_seen_at == T

    lapses = await check_connections([page, call], settings, at=T + timedelta(minutes=30))
    assert page.closed == [(CLOSE_SESSION_ENDED, SESSION_EXPIRED)]
    assert lapses == {call: moment + timedelta(minutes=29)}


async def test_the_absolute_timeout_ends_even_a_call(database):
    settings = database
    call = await probe(await make_user(), settings, keeps_alive=True)
    moment = T + timedelta(hours=11, minutes=59, seconds=30)
    await Session.filter(id=call.session_id).update(last_seen_at=moment)
    assert await check_connections([call], settings, at=moment) == {call: T + timedelta(hours=12)}
    assert await check_connections([call], settings, at=T + timedelta(hours=12)) == {}
    assert call.closed == [(CLOSE_SESSION_ENDED, SESSION_EXPIRED)]


async def test_signed_out_and_deactivated_sockets_close_with_their_reason(database):
    settings = database
    leaving, staying, deactivated = await make_user(), await make_user(), await make_user()
    signed_out = await probe(leaving, settings, keeps_alive=True)
    kept = await probe(staying, settings)
    gone = await probe(deactivated, settings)
    await Session.filter(id=signed_out.session_id).update(revoked_at=T)
    await User.filter(id=deactivated.id).update(is_active=False)
    lapses = await check_connections([signed_out, kept, gone], settings, at=T + timedelta(minutes=1))
    assert signed_out.closed == [(CLOSE_SESSION_ENDED, SIGNED_OUT)]
    assert gone.closed == [(CLOSE_DEACTIVATED, DEACTIVATED)]
    assert kept.closed == [] and lapses == {kept: T + timedelta(minutes=30)}
    assert (await Session.get(id=signed_out.session_id)).last_seen_at == T  # a signed-out call renews nothing
