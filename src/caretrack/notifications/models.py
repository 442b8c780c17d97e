"""Notifications: the text messages the platform sends, and each user's choice of channel
for each kind of notification."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from caretrack.accounts.models import User

# queued: waiting for the sms.deliver job · sending: the job is handing it to the provider ·
# sent: the provider took it · delivered / undelivered / failed: the provider's final word
# (or ours, when it refused the message) · stored: no provider configured, kept for admins.
SMS_STATUSES = ("queued", "sending", "sent", "delivered", "failed", "stored", "undelivered")


class OutboundSms(Model):
    """Every text message the platform sends. On the embedded default it is stored, and
    admins read it in the app as they read emails without SMTP."""

    id = fields.IntField(primary_key=True)
    # The E.164 number, sealed like the profile's phone (crypto.seal, "outbound_sms.to_number");
    # to_hint is its masked form ("+44 ••• 3456"), what the admins' list shows.
    to_number = fields.TextField()
    to_hint = fields.CharField(max_length=16)
    body = fields.TextField()
    status = fields.CharField(max_length=16, default="queued")
    provider_sid = fields.CharField(max_length=64, null=True, unique=True)
    attempts = fields.IntField(default=0)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="text_messages", null=True, on_delete=fields.SET_NULL)
    user_id: int | None

    class Meta:
        table = "outbound_sms"


class NotificationPreference(Model):
    """A user's channel for one kind of notification (without a row: email, the default)."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="notification_preferences", on_delete=fields.CASCADE)
    user_id: int
    kind = fields.CharField(max_length=32)
    channel = fields.CharField(max_length=8)  # email | sms | both | none
    updated_at = fields.DatetimeField()

    class Meta:
        table = "notification_preferences"
        unique_together = (("user", "kind"),)
