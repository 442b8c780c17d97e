"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from caretrack.core.errors import ValidationError

MIN_LENGTH = 8
MAX_LENGTH = 128

# argon2-cffi's defaults are RFC 9106's "low memory" argon2id profile.
_hasher = PasswordHasher()
# Verified when the email is unknown, so a wrong email costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("caretrack-dummy-password")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = files("caretrack.accounts").joinpath("common_passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def check_password_policy(password: str, *, email: str = "", name: str = "") -> None:
    if len(password) < MIN_LENGTH:
        raise ValidationError(f"The password is too short: use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise ValidationError(f"The password is too long: use at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    if lowered in common_passwords():
        raise ValidationError("That password is one of the most common passwords; choose another.")
    local_part = email.split("@")[0].lower()
    if (local_part and len(local_part) >= 4 and local_part in lowered) or (name and lowered == name.lower()):
        raise ValidationError("The password must not contain your email address or name.")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
