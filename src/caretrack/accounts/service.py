"""Accounts: sign-up, verification, login, second factor, password reset, invitations,
administration and profiles. Every action is one transaction with its audit rows, events
and emails; `check_…` functions validate and raise domain errors."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from caretrack.accounts import passwords
from caretrack.accounts.links import consume_token, issue_token, link
from caretrack.accounts.models import AccessToken, OneTimeToken, RecoveryCode, Session, User
from caretrack.accounts.ratelimit import LoginLimiter, SignInThrottled
from caretrack.accounts.sessions import digest, new_access_token_secret, revoke_session, revoke_user_sessions
from caretrack.core import crypto
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, Forbidden, NotAuthenticated, NotFound, ValidationError
from caretrack.core.outbox import store as outbox
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import atomic
from caretrack.mail import service as mail

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
RECOVERY_CODE_COUNT = 10
PHI_FIELDS = ("date_of_birth", "phone", "address")
TOTP_ISSUER = "CareTrack"


def now() -> datetime:
    return datetime.now(UTC)


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise ValidationError(f"'{email[:80]}' is not a valid email address.")
    return email


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 200:
        raise ValidationError("The name must be between 1 and 200 characters.")
    return name


# --- sign-up and verification -------------------------------------------------------------


async def do_sign_up(settings: Settings, limiter: LoginLimiter, *, email: str, full_name: str, password: str,
                     role: Role, client_address: str | None) -> None:
    """Creates the account and emails a confirmation link; for an address that already has an
    account, emails its owner instead. Either way the caller learns nothing (no account
    discovery): same answer, no session; the new user signs in once the address is confirmed.

    Anyone can sign up with anyone's address, so an unconfirmed account's password may be a
    stranger's. Each confirmation link therefore carries the sign-up it was sent for (the
    password hash, name and role), and opening it sets those: the account ends up with the
    credentials of the person who reads the mailbox, never with those of an earlier sign-up."""
    if role not in (Role.PATIENT, Role.DOCTOR):
        raise ValidationError("Only patients and doctors sign up themselves; others are invited.")
    email = normalise_email(email)
    full_name = check_name(full_name)
    passwords.check_password_policy(password, email=email, name=full_name)
    # Hashed whether or not the address is taken, so both answers take as long.
    pending = {"password_hash": passwords.hash_password(password), "full_name": full_name, "role": str(role)}
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


async def do_verify_email(secret: str, client_address: str | None) -> User:
    """Confirms the address and gives the account the sign-up this link was sent for; every
    other confirmation link, session and access token of the account ends (they belonged to
    whichever sign-up came before). A link opened after the address is confirmed changes
    nothing but says it worked: the address is confirmed."""
    async with atomic() as tx:
        token = await consume_token(tx, secret, "verify")
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


# --- login ---------------------------------------------------------------------------------


async def check_login(settings: Settings, limiter: LoginLimiter, *, email: str, password: str,
                      client_address: str | None) -> User:
    """The user whose password this is, or a domain error. Throttled per account and per
    address (a throttled try is refused unchecked; a throttled account is emailed a sign-in
    link); every outcome is audited."""
    email = (email or "").strip().lower()
    try:
        tries = await limiter.attempt(email, client_address)
    except SignInThrottled as exc:
        if exc.scope == "account":
            await _send_sign_in_link(settings, limiter, email, client_address)
        raise
    user = await User.get_or_none(email=email)
    ok = passwords.verify_password(user.password_hash if user else None, password or "")
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


async def do_sign_in_with_link(secret: str, client_address: str | None) -> User:
    """The user an emailed sign-in link is for; it works once. The second factor is still
    asked for afterwards, as after a password. It never confirms an address (see
    `_send_sign_in_link`)."""
    async with atomic() as tx:
        token = await consume_token(tx, secret, "unlock")
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


# --- second factor ---------------------------------------------------------------------------


def totp_for(user: User) -> pyotp.TOTP:
    return pyotp.TOTP(crypto.unseal(user.totp_secret, "users.totp_secret"))


async def start_totp_enrolment(user: User) -> tuple[str, str]:
    """(secret, otpauth URI) for a user who has not enrolled yet; the same pending secret is
    shown again until it is confirmed."""
    if user.totp_enrolled_at is not None:
        raise Conflict("Two-factor authentication is already set up.")
    if user.totp_secret is None:
        secret = pyotp.random_base32()
        await User.filter(id=user.id, totp_enrolled_at=None).update(
            totp_secret=crypto.seal(secret, "users.totp_secret"))
        user.totp_secret = crypto.seal(secret, "users.totp_secret")
    secret = crypto.unseal(user.totp_secret, "users.totp_secret")
    return secret, pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)


async def _accept_totp_code(tx, user: User, code: str) -> bool:
    """True when `code` is valid now and its time-step is later than the last one used."""
    code = re.sub(r"\s", "", code or "")
    if not re.fullmatch(r"\d{6}", code) or user.totp_secret is None:
        return False
    totp = totp_for(user)
    current = totp.timecode(now())
    for step in (current - 1, current, current + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            step_is_new = Q(totp_last_step__isnull=True) | Q(totp_last_step__lt=step)
            claimed = await User.filter(id=user.id).filter(step_is_new).using_db(tx.conn).update(totp_last_step=step)
            return bool(claimed)
    return False


def _recovery_digest(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


async def do_confirm_totp(user: User, code: str, session: Session, client_address: str | None) -> list[str]:
    """Finish enrolment with a code from the app; returns recovery codes, shown once."""
    if user.totp_enrolled_at is not None:
        raise Conflict("Two-factor authentication is already set up.")
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODE_COUNT)]
    async with atomic() as tx:
        if not await _accept_totp_code(tx, user, code):
            raise ValidationError("That code is not right; enter the 6-digit code your app shows now.")
        await User.filter(id=user.id).using_db(tx.conn).update(totp_enrolled_at=now())
        await RecoveryCode.filter(user_id=user.id).using_db(tx.conn).delete()
        await RecoveryCode.bulk_create([RecoveryCode(user_id=user.id, code_hash=_recovery_digest(c)) for c in codes],
                                       using_db=tx.conn)
        await Session.filter(id=session.id).using_db(tx.conn).update(mfa_verified=True)
        await tx.audit(Actor(user.id, client_address), "mfa.enrolled", "user", user.id)
    return codes


async def do_verify_second_factor(user: User, code: str, session: Session, client_address: str | None) -> None:
    """A TOTP code (each works once) or an unused recovery code upgrades the session."""
    async with atomic() as tx:
        method = "totp"
        if not await _accept_totp_code(tx, user, code):
            method = "recovery_code"
            used = await RecoveryCode.filter(user_id=user.id, code_hash=_recovery_digest(code or ""),
                                             used_at=None).using_db(tx.conn).update(used_at=now())
            if not used:
                method = ""
        if method:
            await Session.filter(id=session.id).using_db(tx.conn).update(mfa_verified=True)
            await tx.audit(Actor(user.id, client_address), "mfa.verified", "user", user.id, method=method)
        else:
            await tx.audit(Actor(user.id, client_address), "mfa.failed", "user", user.id)
    if not method:
        raise ValidationError("That code is not right, or it has been used already.")


# --- password reset --------------------------------------------------------------------------


async def do_request_password_reset(settings: Settings, limiter: LoginLimiter, email: str,
                                    client_address: str | None) -> None:
    """Sends a link if the account exists and its hourly budget allows; says nothing either
    way (no account discovery)."""
    try:
        email = normalise_email(email)
    except ValidationError:
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


async def do_reset_password(secret: str, new_password: str, client_address: str | None) -> User:
    """Sets the password and ends every session. It never signs the user in: they log in
    again, and doctors and admins still pass their second factor."""
    async with atomic() as tx:
        token = await consume_token(tx, secret, "reset")
        user = await User.get(id=token.user_id).using_db(tx.conn)
        passwords.check_password_policy(new_password, email=user.email, name=user.full_name)
        await User.filter(id=user.id).using_db(tx.conn).update(
            password_hash=passwords.hash_password(new_password), email_verified_at=user.email_verified_at or now())
        await revoke_user_sessions(user.id, tx.conn)
        await tx.audit(Actor(user.id, client_address), "password.reset", "user", user.id)
        tx.after_commit(lambda: outbox.notify_auth_changed(user.id))
    return user


async def do_change_password(user: User, current: str, new_password: str, session: Session,
                             client_address: str | None) -> None:
    if not passwords.verify_password(user.password_hash, current or ""):
        raise ValidationError("The current password is wrong.")
    passwords.check_password_policy(new_password, email=user.email, name=user.full_name)
    async with atomic() as tx:
        await User.filter(id=user.id).using_db(tx.conn).update(password_hash=passwords.hash_password(new_password))
        await revoke_user_sessions(user.id, tx.conn, except_session=session.id)
        await tx.audit(Actor(user.id, client_address), "password.changed", "user", user.id)
        tx.after_commit(lambda: outbox.notify_auth_changed(user.id))


# --- invitations and administration ----------------------------------------------------------


async def do_invite(settings: Settings, admin: User, *, email: str, full_name: str, role: Role,
                    client_address: str | None) -> User:
    email = normalise_email(email)
    full_name = check_name(full_name)
    if role not in (Role.CARER, Role.DOCTOR, Role.ADMIN, Role.PATIENT):
        raise ValidationError(f"'{role}' is not a role.")
    try:
        async with atomic() as tx:
            user = await User.create(using_db=tx.conn, email=email, full_name=full_name, role=role)
            secret = await issue_token(tx, user, "invite", created_by=admin)
            await tx.audit(Actor(admin.id, client_address), "user.invited", "user", user.id, role=str(role))
            await mail.send(tx, email, "invitation", {"name": full_name, "inviter": admin.full_name, "role": str(role),
                                                 "link": link(settings, "/invite/accept", secret),
                                                 "agency": settings.agency_name})
            await tx.emit("user.invited", actor_id=admin.id, subject=("user", user.id),
                          data={"name": full_name, "email": email, "role": str(role)}, roles=[Role.ADMIN])
    except IntegrityError:
        raise Conflict(f"An account with the email {email} already exists.") from None
    return user


async def do_accept_invitation(secret: str, password: str, client_address: str | None) -> User:
    async with atomic() as tx:
        token = await consume_token(tx, secret, "invite")
        user = await User.get(id=token.user_id).using_db(tx.conn)
        passwords.check_password_policy(password, email=user.email, name=user.full_name)
        await User.filter(id=user.id).using_db(tx.conn).update(
            password_hash=passwords.hash_password(password), email_verified_at=now())
        await tx.audit(Actor(user.id, client_address), "invitation.accepted", "user", user.id)
    return await User.get(id=user.id)


async def do_create_admin(settings: Settings, email: str, full_name: str, password: str) -> User:
    email = normalise_email(email)
    full_name = check_name(full_name)
    passwords.check_password_policy(password, email=email, name=full_name)
    try:
        async with atomic() as tx:
            user = await User.create(using_db=tx.conn, email=email, full_name=full_name, role=Role.ADMIN,
                                     password_hash=passwords.hash_password(password), email_verified_at=now())
            await tx.audit(Actor(None, "cli"), "user.created_admin", "user", user.id)
    except IntegrityError:
        raise Conflict(f"An account with the email {email} already exists.") from None
    return user


async def get_user_for_admin(user_id: int) -> User:
    user = await User.get_or_none(id=user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    return user


async def search_users(query: str = "", role: str | None = None, active: bool | None = None,
                       limit: int = 50, offset: int = 0) -> tuple[list[User], int]:
    qs = User.all()
    if query:
        qs = qs.filter(Q(email__icontains=query.strip()) | Q(full_name__icontains=query.strip()))
    if role:
        if role not in {r.value for r in Role}:
            raise ValidationError(f"'{role}' is not a role.")
        qs = qs.filter(role=role)
    if active is not None:
        qs = qs.filter(is_active=active)
    total = await qs.count()
    return await qs.order_by("full_name", "id").offset(offset).limit(limit), total


async def do_set_active(admin: User, user_id: int, active: bool, client_address: str | None) -> User:
    user = await get_user_for_admin(user_id)
    if user.id == admin.id and not active:
        raise ValidationError("You cannot deactivate your own account.")
    async with atomic() as tx:
        await User.filter(id=user.id).using_db(tx.conn).update(is_active=active)
        if not active:
            await revoke_user_sessions(user.id, tx.conn)
            await AccessToken.filter(user_id=user.id, revoked_at=None).using_db(tx.conn).update(revoked_at=now())
        await tx.audit(Actor(admin.id, client_address), "user.activated" if active else "user.deactivated",
                       "user", user.id)
        tx.after_commit(lambda: outbox.notify_auth_changed(user.id))
    user.is_active = active
    return user


async def do_change_role(admin: User, user_id: int, role: Role, client_address: str | None) -> User:
    user = await get_user_for_admin(user_id)
    if user.id == admin.id:
        raise ValidationError("You cannot change your own role; ask another admin.")
    if user.role == role:
        return user
    async with atomic() as tx:
        await User.filter(id=user.id).using_db(tx.conn).update(role=role)
        await revoke_user_sessions(user.id, tx.conn)
        await tx.audit(Actor(admin.id, client_address), "user.role_changed", "user", user.id,
                       old=str(user.role), new=str(role))
        tx.after_commit(lambda: outbox.notify_auth_changed(user.id))
    user.role = role
    return user


async def do_reset_mfa(admin: User, user_id: int, client_address: str | None) -> User:
    user = await get_user_for_admin(user_id)
    async with atomic() as tx:
        await User.filter(id=user.id).using_db(tx.conn).update(totp_secret=None, totp_enrolled_at=None,
                                                                totp_last_step=None)
        await RecoveryCode.filter(user_id=user.id).using_db(tx.conn).delete()
        await revoke_user_sessions(user.id, tx.conn)
        await tx.audit(Actor(admin.id, client_address), "mfa.reset", "user", user.id)
        tx.after_commit(lambda: outbox.notify_auth_changed(user.id))
    return await User.get(id=user.id)


# --- profiles (PHI) --------------------------------------------------------------------------


@dataclass
class Profile:
    id: int
    email: str
    full_name: str
    role: str
    time_zone: str
    date_of_birth: str | None
    phone: str | None
    address: str | None


async def can_view_profile(viewer: User, subject: User) -> bool:
    """Ownership: yourself, admins, and (once booking exists) a doctor with an appointment."""
    if viewer.id == subject.id or viewer.role == Role.ADMIN:
        return True
    if viewer.role == Role.DOCTOR and subject.role == Role.PATIENT:
        try:
            from caretrack.booking.service import doctor_has_patient
        except ImportError:
            return False
        return await doctor_has_patient(viewer.id, subject.id)
    return False


async def get_profile(viewer: User, user_id: int, client_address: str | None) -> Profile:
    """A profile with its PHI, if `viewer` may see it; otherwise 404 (not 403), so ids do not
    reveal who exists. The PHI read is audited."""
    subject = await User.get_or_none(id=user_id)
    if subject is None or not await can_view_profile(viewer, subject):
        raise NotFound(f"No profile with id {user_id}.")
    async with atomic() as tx:
        await tx.audit(Actor(viewer.id, client_address), "phi.read", "user", subject.id, fields=list(PHI_FIELDS))
    return Profile(subject.id, subject.email, subject.full_name, str(subject.role), subject.time_zone,
                   *(crypto.unseal(getattr(subject, f), f"users.{f}") for f in PHI_FIELDS))


async def do_update_profile(user: User, changes: dict[str, Any], client_address: str | None) -> None:
    updates: dict[str, Any] = {}
    if "full_name" in changes:
        updates["full_name"] = check_name(changes["full_name"])
    if "time_zone" in changes:
        from zoneinfo import available_timezones

        if changes["time_zone"] not in available_timezones():
            raise ValidationError(f"'{changes['time_zone']}' is not a time zone (for example Europe/London).")
        updates["time_zone"] = changes["time_zone"]
    if changes.get("date_of_birth"):
        try:
            born = datetime.strptime(changes["date_of_birth"], "%Y-%m-%d").date()
        except ValueError:
            raise ValidationError("The date of birth must be a date (YYYY-MM-DD).") from None
        if born > now().date() or born.year < 1900:
            raise ValidationError("The date of birth must be in the past, after 1900.")
    if "phone" in changes and changes["phone"] and not re.fullmatch(r"\+?[0-9 ()-]{6,20}", changes["phone"]):
        raise ValidationError("The phone number may hold digits, spaces, brackets and dashes.")
    if "address" in changes and changes["address"] and len(changes["address"]) > 500:
        raise ValidationError("The address is longer than 500 characters.")
    written = [f for f in PHI_FIELDS if f in changes]
    for field_name in written:
        updates[field_name] = crypto.seal(changes[field_name] or None, f"users.{field_name}")
    if not updates:
        return
    async with atomic() as tx:
        await User.filter(id=user.id).using_db(tx.conn).update(**updates)
        if written:
            await tx.audit(Actor(user.id, client_address), "phi.write", "user", user.id, fields=written)


# --- access tokens ---------------------------------------------------------------------------


async def do_create_access_token(
    user: User, name: str, days: int | None, client_address: str | None
) -> tuple[AccessToken, str]:
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise ValidationError("Give the token a name of 1 to 100 characters.")
    if days is not None and not 1 <= days <= 365:
        raise ValidationError("A token lasts between 1 and 365 days.")
    secret = new_access_token_secret()
    async with atomic() as tx:
        token = await AccessToken.create(using_db=tx.conn, user=user, name=name, token_hash=digest(secret),
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


def roles_from(values: Iterable[str]) -> list[Role]:
    return [Role(v) for v in values]
