"""Passwords: the emailed reset, and a change by the signed-in user."""

from __future__ import annotations

from caretrack.accounts import passwords
from caretrack.accounts.links import consume_token, issue_token, link
from caretrack.accounts.models import Session, User
from caretrack.accounts.ratelimit import LoginLimiter
from caretrack.accounts.schemas import PasswordChange, PasswordReset, PasswordResetRequest
from caretrack.accounts.sessions import now, revoke_user_sessions
from caretrack.core.audit.service import Actor
from caretrack.core.errors import ValidationError
from caretrack.core.outbox import store as outbox
from caretrack.core.settings import Settings
from caretrack.core.transaction import atomic
from caretrack.mail import service as mail


async def do_request_password_reset(settings: Settings, limiter: LoginLimiter, command: PasswordResetRequest,
                                    client_address: str | None) -> None:
    """Sends a link if the account exists and its hourly budget allows; says nothing either
    way (no account discovery)."""
    email = command.email
    if email is None:
        return
    user = await User.get_or_none(email=email, is_active=True)
    if user is None:
        return
    if not await limiter.email_allowed("reset", email):
        async with atomic() as tx:
            await tx.audit(Actor(None, client_address), "password.reset_throttled", "user", user.id)
        return
    async with atomic() as tx:
        secret = await issue_token(tx, user, "reset")
        await tx.audit(Actor(None, client_address), "password.reset_requested", "user", user.id)
        await mail.send(tx, user.email, "password_reset", {"name": user.full_name,
                                                      "link": link(settings, "/password/reset", secret)})


async def do_reset_password(command: PasswordReset, client_address: str | None) -> User:
    """Sets the password and ends every session. It never signs the user in: they log in
    again, and doctors and admins still pass their second factor. The policy is checked here,
    against the account the link is for."""
    new_password = command.password
    async with atomic() as tx:
        token = await consume_token(tx, command.token, "reset")
        user = await User.get(id=token.user_id).using_db(tx.conn)
        passwords.check_password_policy(new_password, email=user.email, name=user.full_name)
        await User.filter(id=user.id).using_db(tx.conn).update(
            password_hash=passwords.hash_password(new_password), email_verified_at=user.email_verified_at or now())
        await revoke_user_sessions(user.id, tx.conn)
        await tx.audit(Actor(user.id, client_address), "password.reset", "user", user.id)
        tx.after_commit(lambda: outbox.notify_auth_changed(user.id))
    return user


async def do_change_password(user: User, command: PasswordChange, session: Session,
                             client_address: str | None) -> None:
    new_password = command.password
    if not passwords.verify_password(user.password_hash, command.current):
        raise ValidationError("The current password is wrong.")
    passwords.check_password_policy(new_password, email=user.email, name=user.full_name)
    async with atomic() as tx:
        await User.filter(id=user.id).using_db(tx.conn).update(password_hash=passwords.hash_password(new_password))
        await revoke_user_sessions(user.id, tx.conn, except_session=session.id)
        await tx.audit(Actor(user.id, client_address), "password.changed", "user", user.id)
        tx.after_commit(lambda: outbox.notify_auth_changed(user.id))

