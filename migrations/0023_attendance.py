"""Who was in each appointment's call and when (consultation_attendance): one row per stay."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0022_intake')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Attendance',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('appointment', fields.ForeignKeyField('caretrack.Appointment', source_field='appointment_id', db_constraint=True, to_field='id', related_name='attendance', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('caretrack.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='call_attendance', on_delete=OnDelete.SET_NULL)),
                ('principal', fields.CharField(max_length=128)),
                ('role', fields.CharField(max_length=16)),
                ('joined_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('left_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('admitted', fields.BooleanField(default=True)),
            ],
            options={'table': 'consultation_attendance', 'app': 'caretrack', 'indexes': [Index(fields=['appointment_id', 'principal'])], 'pk_attr': 'id', 'table_description': "One participant's stay in an appointment's call, from being let in to leaving."},
            bases=['Model'],
        ),
    ]
