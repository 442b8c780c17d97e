"""The outbox: one row per event, one delivery row per recipient with that recipient's
gap-free sequence, and one cursor row per recipient holding the last sequence issued."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Event(Model):
    """A typed payload written in the same transaction as the change it describes.
    `published_at` stays empty until the relay has woken every web process for it."""

    id = fields.BigIntField(primary_key=True)
    type = fields.CharField(max_length=64)
    kind = fields.CharField(max_length=32, db_index=True)  # the type's first segment: "booking"
    occurred_at = fields.DatetimeField(db_index=True)
    actor_id = fields.IntField(null=True)  # not a foreign key: events outlive what they name
    subject_kind = fields.CharField(max_length=32, null=True)
    subject_id = fields.CharField(max_length=64, null=True)
    data = fields.TextField(default="{}")  # JSON
    published_at = fields.DatetimeField(null=True, db_index=True)

    class Meta:
        table = "events"


class EventDelivery(Model):
    """Event `event_id` is number `seq` in `user_id`'s stream."""

    id = fields.BigIntField(primary_key=True)
    user_id = fields.IntField()
    seq = fields.BigIntField()
    event = fields.ForeignKeyField("caretrack.Event", related_name="deliveries", on_delete=fields.CASCADE,
                                   db_index=True)  # the relay and pruning look deliveries up by event

    class Meta:
        table = "event_deliveries"
        unique_together = (("user_id", "seq"),)


class EventCursor(Model):
    """The last sequence issued to a recipient. Writers bump it with
    `last_seq = last_seq + 1`, whose row lock (PostgreSQL) or write lock (SQLite) makes
    sequences commit in order: a reader never sees seq n+1 without seq n."""

    user_id = fields.IntField(primary_key=True, generated=False)
    last_seq = fields.BigIntField(default=0)

    class Meta:
        table = "event_cursors"
