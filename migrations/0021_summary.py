"""Visit summaries (consultation_summaries) and follow-up offers (booking_follow_up_offers)."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0020_guests')]

    initial = False

    operations = [
        ops.CreateModel(
            name='FollowUpOffer',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('appointment', fields.ForeignKeyField('caretrack.Appointment', source_field='appointment_id', db_constraint=True, to_field='id', related_name='follow_up_offers', on_delete=OnDelete.CASCADE)),
                ('doctor', fields.ForeignKeyField('caretrack.User', source_field='doctor_id', db_constraint=True, to_field='id', related_name='follow_up_offers_made', on_delete=OnDelete.CASCADE)),
                ('patient', fields.ForeignKeyField('caretrack.User', source_field='patient_id', db_constraint=True, to_field='id', related_name='follow_up_offers', on_delete=OnDelete.CASCADE)),
                ('starts_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('range_from', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('range_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('time_zone', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('booked', fields.ForeignKeyField('caretrack.Appointment', source_field='booked_id', null=True, db_constraint=True, to_field='id', related_name='follow_up_of', on_delete=OnDelete.SET_NULL)),
                ('booked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'booking_follow_up_offers', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': "A doctor's offer of a follow-up consultation to the patient."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='VisitSummary',
            fields=[
                ('appointment', fields.OneToOneField('caretrack.Appointment', source_field='appointment_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='visit_summary', on_delete=OnDelete.CASCADE)),
                ('draft', fields.TextField(unique=False)),
                ('draft_saved_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('text', fields.TextField(null=True, unique=False)),
                ('published_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('version', fields.IntField(default=0)),
            ],
            options={'table': 'consultation_summaries', 'app': 'caretrack', 'pk_attr': 'appointment_id', 'table_description': "A consultation's summary, written by the doctor for the patient."},
            bases=['Model'],
        ),
    ]
