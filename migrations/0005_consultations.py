from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0003_booking'), ('caretrack', '0004_care')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ChatMessage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('appointment', fields.ForeignKeyField('caretrack.Appointment', source_field='appointment_id', db_constraint=True, to_field='id', related_name='chat_messages', on_delete=OnDelete.CASCADE)),
                ('sender', fields.ForeignKeyField('caretrack.User', source_field='sender_id', db_constraint=True, to_field='id', related_name='chat_messages', on_delete=OnDelete.CASCADE)),
                ('text', fields.TextField(unique=False)),
                ('sent_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consultation_chat', 'app': 'caretrack', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Consultation',
            fields=[
                ('appointment', fields.OneToOneField('caretrack.Appointment', source_field='appointment_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='consultation', on_delete=OnDelete.CASCADE)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('notes', fields.TextField(null=True, unique=False)),
                ('notes_updated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consultations', 'app': 'caretrack', 'pk_attr': 'appointment_id', 'table_description': "One appointment's call. Ended by the doctor: nobody joins an ended consultation."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GuestInvite',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('appointment', fields.ForeignKeyField('caretrack.Appointment', source_field='appointment_id', db_constraint=True, to_field='id', related_name='guest_invites', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('label', fields.CharField(max_length=100)),
                ('created_by', fields.ForeignKeyField('caretrack.User', source_field='created_by_id', db_constraint=True, to_field='id', related_name='guest_invites_made', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('guest', fields.ForeignKeyField('caretrack.User', source_field='guest_id', null=True, db_constraint=True, to_field='id', related_name='guest_seats', on_delete=OnDelete.CASCADE)),
                ('redeemed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consultation_guest_invites', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'A single-use link a doctor gives to a carer or interpreter, redeemed by a signed-in'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Recording',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('appointment', fields.ForeignKeyField('caretrack.Appointment', source_field='appointment_id', db_constraint=True, to_field='id', related_name='recordings', on_delete=OnDelete.CASCADE)),
                ('file_name', fields.CharField(unique=True, max_length=80)),
                ('key_version', fields.IntField()),
                ('size_bytes', fields.BigIntField()),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('stopped_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consultation_recordings', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': "A recording's file, encrypted with the newest PHI key, stored under a generated name."},
            bases=['Model'],
        ),
    ]
