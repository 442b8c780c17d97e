"""Personal access tokens for API clients."""

from __future__ import annotations

from datetime import timedelta

from caretrack.accounts.models import AccessToken, User
from caretrack.accounts.schemas import TokenCreate
from caretrack.accounts.sessions import digest, new_access_token_secret, now
from caretrack.core.audit.service import Actor
from caretrack.core.errors import NotFound
from caretrack.core.transaction import atomic


async def do_create_access_token(user: User, command: TokenCreate, client_address: str | None
                                 ) -> tuple[AccessToken, str]:
    secret = new_access_token_secret()
    days = command.days
    async with atomic() as tx:
        token = await AccessToken.create(using_db=tx.conn, user=user, name=command.name, token_hash=digest(secret),
                                         prefix=secret[:12],
                                         expires_at=now() + timedelta(days=days) if days else None)
        await tx.audit(Actor(user.id, client_address), "token.created", "access_token", token.id)
    return token, secret


async def list_access_tokens(user: User) -> list[AccessToken]:
    return await AccessToken.filter(user_id=user.id, revoked_at=None).order_by("-id")


async def do_revoke_access_token(user: User, token_id: int, client_address: str | None) -> None:
    async with atomic() as tx:
        revoked = await AccessToken.filter(id=token_id, user_id=user.id, revoked_at=None).using_db(tx.conn).update(
            revoked_at=now())
        if not revoked:
            raise NotFound(f"No active token with id {token_id}.")
        await tx.audit(Actor(user.id, client_address), "token.revoked", "access_token", token_id)

