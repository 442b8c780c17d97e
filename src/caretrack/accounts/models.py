"""Accounts: users, server-side sessions, second factor, tokens, invitations, emails."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from caretrack.core.roles import Role

# Roles that must enrol TOTP before they reach anything else.
MFA_ROLES = frozenset({Role.DOCTOR, Role.ADMIN})


class User(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)
    full_name = fields.CharField(max_length=200)
    role = fields.CharEnumField(Role, max_length=16)
    password_hash = fields.CharField(max_length=200, null=True)
    is_active = fields.BooleanField(default=True)
    email_verified_at = fields.DatetimeField(null=True)
    time_zone = fields.CharField(max_length=64, default="UTC")
    # Second factor. The secret is a credential, so it is encrypted like PHI.
    totp_secret = fields.TextField(null=True)
    totp_enrolled_at = fields.DatetimeField(null=True)
    totp_last_step = fields.BigIntField(null=True)  # a code works once: the last time-step used
    # PHI, ciphertext only (caretrack.core.crypto.seal / unseal).
    date_of_birth = fields.TextField(null=True)
    phone = fields.TextField(null=True)
    address = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "users"

    @property
    def needs_mfa(self) -> bool:
        return self.role in MFA_ROLES

    def __str__(self) -> str:
        return f"{self.role} {self.email}"


class Session(Model):
    """A server-side session. The cookie holds a random id, and only its SHA-256 is stored."""

    id = fields.CharField(max_length=64, primary_key=True)  # sha256 hex of the cookie value
    user = fields.ForeignKeyField("caretrack.User", related_name="sessions", on_delete=fields.CASCADE)
    csrf_token = fields.CharField(max_length=64)
    mfa_verified = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()  # the absolute limit
    revoked_at = fields.DatetimeField(null=True)
    client_address = fields.CharField(max_length=64, null=True)
    user_agent = fields.CharField(max_length=300, null=True)

    class Meta:
        table = "sessions"


class RecoveryCode(Model):
    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField("caretrack.User", related_name="recovery_codes", on_delete=fields.CASCADE)
    code_hash = fields.CharField(max_length=64)
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "recovery_codes"


class AccessToken(Model):
    """A personal access token for API clients, stored only as its SHA-256."""

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField("caretrack.User", related_name="access_tokens", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=100)
    token_hash = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=12)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "access_tokens"


class OneTimeToken(Model):
    """Single-use, expiring links: email verification, password reset, invitations."""

    id = fields.IntField(primary_key=True)
    purpose = fields.CharField(max_length=16)  # verify | reset | invite
    token_hash = fields.CharField(max_length=64, unique=True)
    user = fields.ForeignKeyField("caretrack.User", related_name="one_time_tokens", on_delete=fields.CASCADE)
    created_by = fields.ForeignKeyField(
        "caretrack.User", related_name="issued_tokens", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    # A confirmation link's sign-up (password hash, name, role): opening the link sets them,
    # so the account takes the credentials of whoever chose them and reads that mailbox.
    pending = fields.JSONField(null=True)

    class Meta:
        table = "one_time_tokens"
