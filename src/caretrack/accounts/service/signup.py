"""Signing up and confirming the address."""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError

from caretrack.accounts import passwords
from caretrack.accounts.links import consume_token, issue_token, link
from caretrack.accounts.models import AccessToken, OneTimeToken, User
from caretrack.accounts.ratelimit import LoginLimiter
from caretrack.accounts.schemas import EmailConfirmation, SignUp
from caretrack.accounts.sessions import now, revoke_user_sessions
from caretrack.core.audit.service import Actor
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import atomic
from caretrack.mail import service as mail


async def do_sign_up(settings: Settings, limiter: LoginLimiter, command: SignUp, *,
                     client_address: str | None) -> None:
    """Creates the account and emails a confirmation link; for an address that already has an
    account, emails its owner instead. Either way the caller learns nothing (no account
    discovery): same answer, no session; the new user signs in once the address is confirmed.

    Anyone can sign up with anyone's address, so an unconfirmed account's password may be a
    stranger's. Each confirmation link therefore carries the sign-up it was sent for (the
    password hash, name and role), and opening it sets those: the account ends up with the
    credentials of the person who reads the mailbox, never with those of an earlier sign-up."""
    email, full_name, role = command.email, command.full_name, command.role
    # Hashed whether or not the address is taken, so both answers take as long.
    pending = {"password_hash": passwords.hash_password(command.password), "full_name": full_name,
               "role": str(role)}
    existing = await User.get_or_none(email=email)
    if existing is None:
        try:
            async with atomic() as tx:
                user = await User.create(using_db=tx.conn, email=email, full_name=full_name, role=role,
                                         password_hash=pending["password_hash"])
                secret = await issue_token(tx, user, "verify", pending=pending)
                await tx.audit(Actor(user.id, client_address), "user.signed_up", "user", user.id, role=str(role))
                await mail.send(tx, email, "verify_email", {"name": full_name,
                                                       "link": link(settings, "/verify-email", secret)})
                await tx.emit("user.signed_up", actor_id=user.id, subject=("user", user.id),
                              data={"name": full_name, "role": str(role)}, roles=[Role.ADMIN])
            return
        except IntegrityError:  # a concurrent sign-up took the address first
            existing = await User.get(email=email)
    await _tell_owner_about_sign_up(settings, limiter, existing, pending, client_address)


async def _tell_owner_about_sign_up(settings: Settings, limiter: LoginLimiter, user: User, pending: dict[str, str],
                                    client_address: str | None) -> None:
    """An unconfirmed self-sign-up gets a confirmation link for this sign-up (its password,
    not the account's); anyone else a note saying how to sign in or reset. Limited per
    address, so sign-ups cannot flood a mailbox."""
    allowed = user.is_active and await limiter.email_allowed("signup", user.email)
    async with atomic() as tx:
        await tx.audit(Actor(None, client_address), "user.signup_repeated", "user", user.id, emailed=allowed)
        if not allowed:
            return
        if user.email_verified_at is None and user.password_hash is not None:
            secret = await issue_token(tx, user, "verify", pending=pending)
            await mail.send(tx, user.email, "verify_email", {"name": pending["full_name"],
                                                        "link": link(settings, "/verify-email", secret)})
        else:
            await mail.send(tx, user.email, "signup_existing", {
                "name": user.full_name, "login_link": f"{settings.base_url}/login",
                "reset_link": f"{settings.base_url}/password/forgot"})


async def do_verify_email(command: EmailConfirmation, client_address: str | None) -> User:
    """Confirms the address and gives the account the sign-up this link was sent for; every
    other confirmation link, session and access token of the account ends (they belonged to
    whichever sign-up came before). A link opened after the address is confirmed changes
    nothing but says it worked: the address is confirmed."""
    async with atomic() as tx:
        token = await consume_token(tx, command.token, "verify")
        user = await User.get(id=token.user_id).using_db(tx.conn)
        if user.email_verified_at is None:
            changes: dict[str, Any] = {"email_verified_at": now()}
            if token.pending:
                changes.update(password_hash=token.pending["password_hash"], full_name=token.pending["full_name"],
                               role=Role(token.pending["role"]))
            await User.filter(id=user.id).using_db(tx.conn).update(**changes)
            await OneTimeToken.filter(user_id=user.id, purpose="verify", used_at=None).using_db(tx.conn).update(
                used_at=now())
            await revoke_user_sessions(user.id, tx.conn)
            await AccessToken.filter(user_id=user.id, revoked_at=None).using_db(tx.conn).update(revoked_at=now())
            await tx.audit(Actor(user.id, client_address), "user.email_verified", "user", user.id)
    return user


async def do_resend_verification(settings: Settings, user: User) -> None:
    """A new confirmation link for the account's own sign-up; only called once its password
    has been given, so the link carries credentials the signer has proven."""
    if user.email_verified_at is not None:
        return
    pending = {"password_hash": user.password_hash, "full_name": user.full_name, "role": str(user.role)}
    async with atomic() as tx:
        secret = await issue_token(tx, user, "verify", pending=pending)
        await mail.send(tx, user.email, "verify_email",
                       {"name": user.full_name, "link": link(settings, "/verify-email", secret)})

