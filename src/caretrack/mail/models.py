from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class OutboundEmail(Model):
    """Every email the platform sends. With SMTP configured it is queued and delivered
    after commit; on the embedded default it is stored and admins read it in the app."""

    id = fields.IntField(primary_key=True)
    to_address = fields.CharField(max_length=254)
    subject = fields.CharField(max_length=200)
    text_body = fields.TextField()
    html_body = fields.TextField()
    # JSON list of {"filename", "content_type", "content_b64"}
    attachments = fields.TextField(default="[]")
    status = fields.CharField(max_length=16, default="queued")  # queued | sent | stored | failed
    attempts = fields.IntField(default=0)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbound_emails"
