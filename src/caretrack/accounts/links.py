"""Single-use links sent by email (address confirmation, password reset, invitation, sign-in):
issued and consumed inside the caller's transaction, stored only as their SHA-256."""

from __future__ import annotations

import secrets
from datetime import timedelta

from caretrack.accounts.models import OneTimeToken, User
from caretrack.accounts.sessions import digest, now
from caretrack.core.errors import ValidationError
from caretrack.core.settings import Settings

TOKEN_LIFETIMES = {"verify": timedelta(days=2), "reset": timedelta(hours=1), "invite": timedelta(days=7),
                   "unlock": timedelta(hours=1)}


def link(settings: Settings, path: str, token: str) -> str:
    """Single-use links carry the token in the fragment: browsers never send it to a server,
    so it stays out of access logs, proxies and Referer headers."""
    return f"{settings.base_url}{path}#{token}"


async def issue_token(tx, user: User, purpose: str, created_by: User | None = None, *,
                      pending: dict[str, str] | None = None) -> str:
    """A new single-use link; it replaces the user's unused links of this purpose, except
    confirmation links: each holds its own sign-up, and a stranger's repeat sign-up must not
    cancel the link the owner is about to open."""
    secret = secrets.token_urlsafe(32)
    if purpose != "verify":
        await OneTimeToken.filter(user_id=user.id, purpose=purpose, used_at=None).using_db(tx.conn).update(
            used_at=now())
    await OneTimeToken.create(using_db=tx.conn, purpose=purpose, token_hash=digest(secret), user=user,
                              created_by=created_by, expires_at=now() + TOKEN_LIFETIMES[purpose], pending=pending)
    return secret


async def consume_token(tx, secret: str, purpose: str) -> OneTimeToken:
    """Mark a single-use token used; the conditional update makes a second use fail."""
    names = {"verify": "verification", "reset": "password-reset", "invite": "invitation", "unlock": "sign-in"}
    token = await OneTimeToken.get_or_none(token_hash=digest(secret or ""), purpose=purpose).using_db(tx.conn)
    if token is None or token.used_at is not None or token.expires_at <= now():
        raise ValidationError(f"This {names[purpose]} link is invalid, used or expired; ask for a new one.")
    claimed = await OneTimeToken.filter(id=token.id, used_at=None).using_db(tx.conn).update(used_at=now())
    if not claimed:
        raise ValidationError(f"This {names[purpose]} link has already been used.")
    return token
