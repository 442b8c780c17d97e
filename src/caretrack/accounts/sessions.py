"""Server-side sessions: random 256-bit ids in the cookie, SHA-256 of them in the database,
idle and absolute timeouts, revocation. Also personal access tokens for API clients."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from caretrack.accounts.models import AccessToken, Session, User
from caretrack.core.settings import Settings

# Writing last_seen_at on every request would turn every read into a write; a minute of
# slack on a 30-minute idle timeout is harmless.
TOUCH_INTERVAL = timedelta(seconds=60)
TOKEN_PREFIX = "ctk_"


def now() -> datetime:
    return datetime.now(UTC)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def cookie_name(settings: Settings) -> str:
    # The __Host- prefix needs the Secure attribute, which browsers only keep over HTTPS.
    return "__Host-caretrack_session" if settings.https else "caretrack_session"


def cookie_options(settings: Settings) -> dict:
    return {"httponly": True, "secure": settings.https, "samesite": "lax", "path": "/"}


async def create_session(
    user: User, settings: Settings, *, client_address: str | None, user_agent: str | None,
    mfa_verified: bool = False, using_db: BaseDBAsyncClient | None = None,
) -> tuple[str, Session]:
    """A new session with a new id (never reuse an id across a login)."""
    secret = secrets.token_urlsafe(32)
    moment = now()
    session = await Session.create(
        using_db=using_db,
        id=digest(secret), user=user, csrf_token=secrets.token_urlsafe(32), mfa_verified=mfa_verified,
        created_at=moment, last_seen_at=moment,
        expires_at=moment + timedelta(hours=settings.session_absolute_hours),
        client_address=client_address, user_agent=(user_agent or "")[:300] or None,
    )
    return secret, session


@dataclass
class Authenticated:
    user: User
    session: Session | None  # None for access tokens
    token: AccessToken | None = None

    @property
    def via_cookie(self) -> bool:
        return self.session is not None


def session_alive(session: Session, settings: Settings, moment: datetime) -> bool:
    return (
        session.revoked_at is None
        and moment < session.expires_at
        and moment - session.last_seen_at < timedelta(minutes=settings.session_idle_minutes)
    )


async def load_session(secret: str, settings: Settings) -> Authenticated | None:
    if not secret or len(secret) > 100:
        return None
    session = await Session.get_or_none(id=digest(secret)).select_related("user")
    if session is None:
        return None
    moment = now()
    if not session_alive(session, settings, moment) or not session.user.is_active:
        return None
    if moment - session.last_seen_at > TOUCH_INTERVAL:
        session.last_seen_at = moment
        await Session.filter(id=session.id).update(last_seen_at=moment)
    return Authenticated(session.user, session)


async def load_access_token(secret: str) -> Authenticated | None:
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    token = await AccessToken.get_or_none(token_hash=digest(secret)).select_related("user")
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return None
    moment = now()
    if token.expires_at is not None and moment >= token.expires_at:
        return None
    if token.last_used_at is None or moment - token.last_used_at > TOUCH_INTERVAL:
        await AccessToken.filter(id=token.id).update(last_used_at=moment)
    return Authenticated(token.user, None, token)


def new_access_token_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def revoke_session(session_id: str, using_db: BaseDBAsyncClient | None = None) -> None:
    await Session.filter(id=session_id, revoked_at=None).using_db(using_db).update(revoked_at=now())


async def revoke_user_sessions(user_id: int, using_db: BaseDBAsyncClient | None = None,
                               except_session: str | None = None) -> int:
    query = Session.filter(user_id=user_id, revoked_at=None)
    if except_session:
        query = query.exclude(id=except_session)
    return await query.using_db(using_db).update(revoked_at=now())
