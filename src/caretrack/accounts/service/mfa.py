"""The second factor: TOTP enrolment and codes, and single-use recovery codes."""

from __future__ import annotations

import hashlib
import re
import secrets

import pyotp
from tortoise.expressions import Q

from caretrack.accounts.models import RecoveryCode, Session, User
from caretrack.accounts.schemas import SecondFactor, TotpConfirmation
from caretrack.accounts.sessions import now
from caretrack.core import crypto
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, ValidationError
from caretrack.core.transaction import Tx, atomic

RECOVERY_CODE_COUNT = 10
TOTP_ISSUER = "CareTrack"


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


async def _accept_totp_code(tx: Tx, user: User, code: str) -> bool:
    """True when `code` is valid now and its time-step is later than the last one used."""
    code = re.sub(r"\s", "", code or "")
    if not re.fullmatch(r"\d{6}", code) or user.totp_secret is None:
        return False
    totp = totp_for(user)
    current = totp.timecode(now())
    for step in (current - 1, current, current + 1):
        if crypto.same_secret(code, totp.generate_otp(step)):
            step_is_new = Q(totp_last_step__isnull=True) | Q(totp_last_step__lt=step)
            claimed = await User.filter(id=user.id).filter(step_is_new).using_db(tx.conn).update(totp_last_step=step)
            return bool(claimed)
    return False


def _recovery_digest(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


async def do_confirm_totp(user: User, command: TotpConfirmation, session: Session,
                          client_address: str | None) -> list[str]:
    """Finish enrolment with a code from the app; returns recovery codes, shown once."""
    if user.totp_enrolled_at is not None:
        raise Conflict("Two-factor authentication is already set up.")
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODE_COUNT)]
    async with atomic() as tx:
        if not await _accept_totp_code(tx, user, command.code):
            raise ValidationError("That code is not right; enter the 6-digit code your app shows now.")
        await User.filter(id=user.id).using_db(tx.conn).update(totp_enrolled_at=now())
        await RecoveryCode.filter(user_id=user.id).using_db(tx.conn).delete()
        await RecoveryCode.bulk_create([RecoveryCode(user_id=user.id, code_hash=_recovery_digest(c)) for c in codes],
                                       using_db=tx.conn)
        await Session.filter(id=session.id).using_db(tx.conn).update(mfa_verified=True)
        await tx.audit(Actor(user.id, client_address), "mfa.enrolled", "user", user.id)
    return codes


async def do_verify_second_factor(user: User, command: SecondFactor, session: Session,
                                  client_address: str | None) -> None:
    """A TOTP code (each works once) or an unused recovery code upgrades the session."""
    async with atomic() as tx:
        method, code = "totp", command.code
        if not await _accept_totp_code(tx, user, code):
            method = "recovery_code"
            used = await RecoveryCode.filter(user_id=user.id, code_hash=_recovery_digest(code),
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

