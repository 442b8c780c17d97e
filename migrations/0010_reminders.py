"""Reminders before consultations: the admin's policy (offsets before the start, grace)."""

import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from caretrack.booking.models import default_reminder_offsets
from caretrack.core.dbops import everywhere


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0009_messaging')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ReminderPolicy',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('offsets', fields.JSONField(default=default_reminder_offsets, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('grace_minutes', fields.IntField(default=15)),
                ('updated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_by', fields.ForeignKeyField('caretrack.User', source_field='updated_by_id', null=True, db_constraint=True, to_field='id', related_name='reminder_policy_changes', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'reminder_policy', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'When patients and doctors are reminded of a consultation (one row, set by admins):'},
            bases=['Model'],
        ),
        # The one policy row, with the defaults: bookings lock it (FOR SHARE) while they plan.
        everywhere(["INSERT INTO reminder_policy (id, offsets, grace_minutes) VALUES (1, '[1440,60]', 15);"],
                   reverse=["DELETE FROM reminder_policy;"]),
    ]
