"""Signing in (password or emailed link) and out."""

from __future__ import annotations

from caretrack.accounts import passwords
from caretrack.accounts.links import consume_token, issue_token, link
from caretrack.accounts.models import Session, User
from caretrack.accounts.ratelimit import LoginLimiter, SignInThrottled
from caretrack.accounts.schemas import LinkSignIn, LogIn
from caretrack.accounts.service.signup import do_resend_verification
from caretrack.accounts.sessions import now, revoke_session, revoke_user_sessions
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Forbidden, NotAuthenticated
from caretrack.core.outbox import store as outbox
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import atomic
from caretrack.mail import service as mail


async def check_login(settings: Settings, limiter: LoginLimiter, command: LogIn, *,
                      client_address: str | None) -> User:
    """The user whose password this is, or a domain error. Throttled per account and per
    address (a throttled try is refused unchecked; a throttled account is emailed a sign-in
    link); every outcome is audited."""
    email, password = command.email, command.password
    try:
        tries = await limiter.attempt(email, client_address)
    except SignInThrottled as exc:
        if exc.scope == "account":
            await _send_sign_in_link(settings, limiter, email, client_address)
        raise
    user = await User.get_or_none(email=email)
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        locked = limiter.starts_throttling(tries)
        async with atomic() as tx:
            await tx.audit(Actor(user.id if user else None, client_address), "login.failed", "user",
                           user.id if user else None, email=email,
                           reason="inactive" if ok and user is not None else "bad_credentials")
            if locked:
                await tx.audit(Actor(user.id if user else None, client_address), "account.locked", "user",
                               user.id if user else None, email=email)
                await tx.emit("security.account_locked", actor_id=None,
                              subject=("user", user.id) if user else None,
                              data={"email": email, "address": client_address}, roles=[Role.ADMIN])
        if ok and user is not None and not user.is_active:
            raise NotAuthenticated("This account has been deactivated; contact your administrator.")
        raise NotAuthenticated("The email or password is wrong.")
    await limiter.succeeded(email, client_address)
    if passwords.needs_rehash(user.password_hash):
        await User.filter(id=user.id).update(password_hash=passwords.hash_password(password))
    if user.email_verified_at is None:
        if await limiter.email_allowed("verify", email):
            await do_resend_verification(settings, user)
        raise Forbidden("Confirm your email address first: open the link we have emailed you, then sign in.",
                        code="email_unconfirmed")
    return user


async def _send_sign_in_link(settings: Settings, limiter: LoginLimiter, email: str,
                             client_address: str | None) -> None:
    """The owner of a throttled account can still get in: a one-time link by email (the
    attacker, who does not read that mailbox, gains nothing). A few per hour at most. Never
    for an unconfirmed account: its password may be a stranger's (anyone can sign up with any
    address), so a link would hand the owner's mailbox proof to that stranger's account; and
    an unconfirmed account cannot sign in anyway, so nobody is locked out of it."""
    user = await User.get_or_none(email=email, is_active=True)
    if (user is None or user.password_hash is None or user.email_verified_at is None
            or not await limiter.email_allowed("sign-in-link", email)):
        return
    async with atomic() as tx:
        secret = await issue_token(tx, user, "unlock")
        await tx.audit(Actor(None, client_address), "login.link_sent", "user", user.id)
        await mail.send(tx, user.email, "sign_in_link", {"name": user.full_name,
                                                    "link": link(settings, "/login/link", secret)})


async def do_sign_in_with_link(command: LinkSignIn, client_address: str | None) -> User:
    """The user an emailed sign-in link is for; it works once. The second factor is still
    asked for afterwards, as after a password. It never confirms an address (see
    `_send_sign_in_link`)."""
    async with atomic() as tx:
        token = await consume_token(tx, command.token, "unlock")
        user = await User.get(id=token.user_id).using_db(tx.conn)
        if not user.is_active:
            raise NotAuthenticated("This account has been deactivated; contact your administrator.")
        if user.email_verified_at is None:
            raise Forbidden("Confirm your email address first: sign up again with it, and open the "
                            "confirmation link we email you.", code="email_unconfirmed")
        await tx.audit(Actor(user.id, client_address), "login.link_used", "user", user.id)
    return user


async def do_record_login(user: User, session: Session, client_address: str | None, *, method: str) -> None:
    async with atomic() as tx:
        await User.filter(id=user.id).using_db(tx.conn).update(last_login_at=now())
        await tx.audit(Actor(user.id, client_address), "login.succeeded", "user", user.id, method=method,
                       mfa_pending=user.needs_mfa and not session.mfa_verified)


async def do_logout(session: Session, client_address: str | None) -> None:
    async with atomic() as tx:
        await revoke_session(session.id, tx.conn)
        await tx.audit(Actor(session.user_id, client_address), "logout", "user", session.user_id)
        tx.after_commit(lambda: outbox.notify_auth_changed(session.user_id))


async def do_logout_everywhere(user: User, client_address: str | None) -> int:
    async with atomic() as tx:
        count = await revoke_user_sessions(user.id, tx.conn)
        await tx.audit(Actor(user.id, client_address), "logout.everywhere", "user", user.id, sessions=count)
        tx.after_commit(lambda: outbox.notify_auth_changed(user.id))
    return count

