"""Remembered admissions: who the doctor let into a call (they skip the waiting room on reconnect)."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0005_consultations')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Admission',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('appointment', fields.ForeignKeyField('caretrack.Appointment', source_field='appointment_id', db_constraint=True, to_field='id', related_name='admissions', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('caretrack.User', source_field='user_id', db_constraint=True, to_field='id', related_name='call_admissions', on_delete=OnDelete.CASCADE)),
                ('admitted_by', fields.ForeignKeyField('caretrack.User', source_field='admitted_by_id', db_constraint=True, to_field='id', related_name='call_admissions_granted', on_delete=OnDelete.CASCADE)),
                ('admitted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consultation_admissions', 'app': 'caretrack', 'unique_together': (('appointment', 'user'),), 'pk_attr': 'id', 'table_description': 'The doctor let this user into the call: when they reconnect, on any server, they skip'},
            bases=['Model'],
        ),
    ]
