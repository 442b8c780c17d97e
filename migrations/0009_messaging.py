"""In-app messaging: threads (care: a patient and a doctor; office: a carer and every admin),
messages with sealed bodies and their read receipts, attachments."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from caretrack.messaging.models import ThreadKind


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0008_jobs')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Thread',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharEnumField(description='CARE: care\nOFFICE: office', enum_type=ThreadKind, max_length=16)),
                ('patient', fields.ForeignKeyField('caretrack.User', source_field='patient_id', null=True, db_constraint=True, to_field='id', related_name='patient_threads', on_delete=OnDelete.CASCADE)),
                ('doctor', fields.ForeignKeyField('caretrack.User', source_field='doctor_id', null=True, db_constraint=True, to_field='id', related_name='doctor_threads', on_delete=OnDelete.CASCADE)),
                ('carer', fields.OneToOneField('caretrack.User', source_field='carer_id', null=True, db_constraint=True, to_field='id', related_name='office_thread', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_message_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_by', fields.ForeignKeyField('caretrack.User', source_field='closed_by_id', null=True, db_constraint=True, to_field='id', related_name='threads_closed', on_delete=OnDelete.SET_NULL)),
                ('blocked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('blocked_by', fields.ForeignKeyField('caretrack.User', source_field='blocked_by_id', null=True, db_constraint=True, to_field='id', related_name='threads_blocked', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'message_threads', 'app': 'caretrack', 'unique_together': (('patient', 'doctor'),), 'pk_attr': 'id', 'table_description': 'One conversation. A care thread has its patient and doctor, an office thread its carer'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Message',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('thread', fields.ForeignKeyField('caretrack.Thread', source_field='thread_id', db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.CASCADE)),
                ('sender', fields.ForeignKeyField('caretrack.User', source_field='sender_id', db_constraint=True, to_field='id', related_name='messages_sent', on_delete=OnDelete.CASCADE)),
                ('recipient', fields.ForeignKeyField('caretrack.User', source_field='recipient_id', null=True, db_constraint=True, to_field='id', related_name='messages_received', on_delete=OnDelete.CASCADE)),
                ('body', fields.TextField(unique=False)),
                ('sent_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('read_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('read_by', fields.ForeignKeyField('caretrack.User', source_field='read_by_id', null=True, db_constraint=True, to_field='id', related_name='messages_read', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'messages', 'app': 'caretrack', 'indexes': [Index(fields=['recipient_id', 'read_at'])], 'pk_attr': 'id', 'table_description': 'A message to one user (`recipient`), or to the office when `recipient` is None. The'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Attachment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('message', fields.ForeignKeyField('caretrack.Message', source_field='message_id', db_constraint=True, to_field='id', related_name='attachments', on_delete=OnDelete.CASCADE)),
                ('file_name', fields.CharField(unique=True, max_length=80)),
                ('original_name', fields.TextField(unique=False)),
                ('content_type', fields.CharField(max_length=40)),
                ('size_bytes', fields.IntField()),
            ],
            options={'table': 'message_attachments', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'A file sent with a message (PDF, PNG or JPEG, checked by content), stored under a'},
            bases=['Model'],
        ),
    ]
