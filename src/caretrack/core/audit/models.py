from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    """One audited act. `hash` = SHA-256 over the previous row's hash and this row's content,
    so editing or deleting any row breaks the chain from that row on. Database triggers
    (migration 0002) refuse UPDATE and DELETE."""

    id = fields.BigIntField(primary_key=True)
    seq = fields.BigIntField(unique=True)
    occurred_at = fields.DatetimeField()
    actor_id = fields.IntField(null=True)  # not a foreign key: the log outlives what it names
    action = fields.CharField(max_length=64)
    subject_type = fields.CharField(max_length=32, null=True)
    subject_id = fields.CharField(max_length=64, null=True)
    client_address = fields.CharField(max_length=64, null=True)
    detail = fields.TextField(default="{}")
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64)

    class Meta:
        table = "audit_log"


class AuditHead(Model):
    """A single row: where the chain ends. Appending updates it first, which serialises
    appends on PostgreSQL (row lock) and SQLite (write lock) alike."""

    id = fields.IntField(primary_key=True)
    seq = fields.BigIntField(default=0)
    hash = fields.CharField(max_length=64, default="0" * 64)

    class Meta:
        table = "audit_head"
