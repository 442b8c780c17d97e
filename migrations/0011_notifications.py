"""Notifications: text messages (stored on the embedded default, sent through a provider
otherwise) and each user's channel for each kind of notification.

It follows 0010_reminders (main's jobs, messaging and reminders migrations came first; the
brief's number 0010 was taken by then)."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0010_reminders')]

    initial = False

    operations = [
        ops.CreateModel(
            name='NotificationPreference',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('caretrack.User', source_field='user_id', db_constraint=True, to_field='id', related_name='notification_preferences', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=32)),
                ('channel', fields.CharField(max_length=8)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notification_preferences', 'app': 'caretrack', 'unique_together': (('user', 'kind'),), 'pk_attr': 'id', 'table_description': "A user's channel for one kind of notification (without a row: email, the default)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutboundSms',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('to_number', fields.TextField(unique=False)),
                ('to_hint', fields.CharField(max_length=16)),
                ('body', fields.TextField(unique=False)),
                ('status', fields.CharField(default='queued', max_length=16)),
                ('provider_sid', fields.CharField(null=True, unique=True, max_length=64)),
                ('attempts', fields.IntField(default=0)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('user', fields.ForeignKeyField('caretrack.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='text_messages', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'outbound_sms', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'Every text message the platform sends. On the embedded default it is stored, and'},
            bases=['Model'],
        ),
    ]
