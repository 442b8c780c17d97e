"""Accounts' typed commands (one per action, parsed by the API and the pages alike; the
service receives them checked) and the JSON shapes of its API."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from caretrack.accounts import passwords
from caretrack.accounts.models import User
from caretrack.core.clock import zone_names
from caretrack.core.errors import ValidationError
from caretrack.core.roles import Role
from caretrack.core.validation import Count, refuse


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- commands: one per action, parsed by the API and the pages alike --------------------------
#
# Each rule is checked before pydantic's own constraints (validators in "before" mode), so a
# form and a JSON body hear the same sentence; the constraints stay for the OpenAPI schema.

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
PHONE_RE = re.compile(r"\+?[0-9 ()-]{3,40}")  # the characters; the number itself: core.phones, in the service
SELF_SERVICE_ROLES = (Role.PATIENT, Role.DOCTOR)


def normalise_email(email: str | None) -> str:
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise refuse("email", f"'{email[:80]}' is not a valid email address.")
    return email


def check_name(name: str | None) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 200:
        raise refuse("name", "The name must be between 1 and 200 characters.")
    return name


def _email(value: Any) -> Any:
    return normalise_email(value) if value is None or isinstance(value, str) else value


def _name(value: Any) -> Any:
    return check_name(value) if value is None or isinstance(value, str) else value


Email = Annotated[str, BeforeValidator(_email)]
Name = Annotated[str, BeforeValidator(_name)]


def _policy(password: str, email: str, name: str) -> None:
    try:
        passwords.check_password_policy(password, email=email, name=name)
    except ValidationError as exc:
        raise refuse("password_policy", exc.message) from None



class SignUp(Strict):
    """A patient or doctor signing up themselves (others are invited)."""

    role: Role = Role.PATIENT
    email: Email
    full_name: Name
    password: str

    @field_validator("role", mode="before")
    @classmethod
    def _self_service_role(cls, value: Any) -> Any:
        try:
            role = Role(value or Role.PATIENT)
        except ValueError:
            raise refuse("role", "Choose patient or doctor.") from None
        if role not in SELF_SERVICE_ROLES:
            raise refuse("role", "Only patients and doctors sign up themselves; others are invited.")
        return role


    @model_validator(mode="after")
    def _password_policy(self) -> SignUp:
        _policy(self.password, self.email, self.full_name)
        return self


class NewAdmin(Strict):
    """The first (or another) admin, made from the command line."""

    email: Email
    full_name: Name
    password: str


    @model_validator(mode="after")
    def _password_policy(self) -> NewAdmin:
        _policy(self.password, self.email, self.full_name)
        return self


class LogIn(Strict):
    """Any text: a wrong address is a wrong sign-in, refused (and counted) like a wrong password."""

    email: str
    password: str

    @field_validator("email", mode="before")
    @classmethod
    def _lowered(cls, value: Any) -> Any:
        return (value or "").strip().lower() if value is None or isinstance(value, str) else value


class LinkSignIn(Strict):
    token: str


class EmailConfirmation(Strict):
    token: str


class PasswordResetRequest(Strict):
    """`email` is None when the text is not an address: the answer is the same either way."""

    email: str | None

    @field_validator("email", mode="before")
    @classmethod
    def _address_or_none(cls, value: Any) -> Any:
        try:
            return normalise_email(value)
        except PydanticCustomError:
            return None


class _NewPassword(Strict):
    password: str
    password_again: str
    _differ: ClassVar[str] = "The two passwords differ."

    @model_validator(mode="after")
    def _same_twice(self) -> Self:
        if self.password != self.password_again:
            raise refuse("passwords_differ", self._differ)
        return self


class PasswordReset(_NewPassword):
    """The policy is checked against the account the link is for, in the service."""

    token: str


class InvitationAcceptance(_NewPassword):
    token: str


class PasswordChange(_NewPassword):
    current: str
    _differ: ClassVar[str] = "The two new passwords differ."


class TotpConfirmation(Strict):
    code: str


class SecondFactor(Strict):
    """A TOTP code or a recovery code."""

    code: str


# --- views and the API's bodies ---------------------------------------------------------------


class UserOut(BaseModel):
    id: int
    email: str
    full_name: str
    role: Role
    is_active: bool
    time_zone: str
    email_verified: bool
    mfa_enrolled: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, full_name=user.full_name, role=user.role,
                   is_active=user.is_active, time_zone=user.time_zone,
                   email_verified=user.email_verified_at is not None,
                   mfa_enrolled=user.totp_enrolled_at is not None,
                   created_at=user.created_at, last_login_at=user.last_login_at)


class UserList(BaseModel):
    users: list[UserOut]
    total: int


class UserQuery(Strict):
    q: str = Field("", max_length=100)
    role: Role | None = None
    active: bool | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: Count = 0


class ProfileOut(BaseModel):
    id: int
    email: str
    full_name: str
    role: Role
    time_zone: str
    date_of_birth: str | None
    phone: str | None
    address: str | None


# Only the fields given change; an empty PHI field is cleared. (Comments, not docstrings: a
# docstring would become the schema's description in the OpenAPI document.)
class ProfileUpdate(Strict):

    full_name: str | None = Field(None, min_length=1, max_length=200)
    time_zone: str | None = Field(None, max_length=64)
    date_of_birth: str | None = Field(None, max_length=10, description="YYYY-MM-DD")
    phone: str | None = Field(None, max_length=40, description="Stored as E.164; a national number is read in "
                              "the server's region (CARETRACK_PHONE_REGION)")
    address: str | None = Field(None, max_length=500)

    @field_validator("full_name", mode="before")
    @classmethod
    def _full_name(cls, value: Any) -> Any:
        return _name(value)

    @field_validator("time_zone", mode="before")
    @classmethod
    def _time_zone(cls, value: Any) -> Any:
        if (value is None or isinstance(value, str)) and value not in zone_names():
            raise refuse("time_zone", f"'{value}' is not a time zone (for example Europe/London).")
        return value

    @field_validator("date_of_birth", mode="before")
    @classmethod
    def _date_of_birth(cls, value: Any) -> Any:
        if isinstance(value, str) and value:
            try:
                born = datetime.strptime(value, "%Y-%m-%d").date()
            except ValueError:
                raise refuse("date", "The date of birth must be a date (YYYY-MM-DD).") from None
            if born > datetime.now(UTC).date() or born.year < 1900:
                raise refuse("date", "The date of birth must be in the past, after 1900.")
        return value

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: Any) -> Any:
        if isinstance(value, str) and value and not PHONE_RE.fullmatch(value):
            raise refuse("phone", "The phone number may hold digits, spaces, brackets and dashes.")
        return value

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > 500:
            raise refuse("address", "The address is longer than 500 characters.")
        return value


class Invitation(Strict):
    email: Email = Field(max_length=254)
    full_name: Name = Field(min_length=1, max_length=200)
    role: Role


# The role changes first, then whether the account is active.
class UserChange(Strict):

    role: Role | None = None
    is_active: bool | None = None


class TokenCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    days: int | None = Field(None, ge=1, le=365)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not 1 <= len(value.strip()) <= 100:
            raise refuse("name", "Give the token a name of 1 to 100 characters.")
        return value.strip()

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= 365:
            raise refuse("days", "A token lasts between 1 and 365 days.")
        return value


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="Shown once; send it as 'Authorization: Bearer <token>'.")


class TokenList(BaseModel):
    tokens: list[TokenOut]
