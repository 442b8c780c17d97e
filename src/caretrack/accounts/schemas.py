"""JSON shapes of the accounts API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from caretrack.core.roles import Role
from caretrack.core.validation import Count


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    def of(cls, user) -> UserOut:
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


class ProfileUpdate(Strict):
    full_name: str | None = Field(None, min_length=1, max_length=200)
    time_zone: str | None = Field(None, max_length=64)
    date_of_birth: str | None = Field(None, max_length=10, description="YYYY-MM-DD")
    phone: str | None = Field(None, max_length=20)
    address: str | None = Field(None, max_length=500)


class Invitation(Strict):
    email: str = Field(max_length=254)
    full_name: str = Field(min_length=1, max_length=200)
    role: Role


class UserChange(Strict):
    role: Role | None = None
    is_active: bool | None = None


class TokenCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    days: int | None = Field(None, ge=1, le=365)


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
