"""Intake: consultation types with their questionnaires and versioned consent documents, an
appointment's chosen type, and the patient's sealed answers and signatures."""

import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from caretrack.intake.models import QuestionKind


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0021_summary')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ConsultationType',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('doctor', fields.ForeignKeyField('caretrack.User', source_field='doctor_id', db_constraint=True, to_field='id', related_name='consultation_types', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=100)),
                ('description', fields.TextField(default='', unique=False)),
                ('archived', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consultation_types', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'A kind of consultation a doctor offers, chosen by patients booking that doctor.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ConsentDocument',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('consultation_type', fields.ForeignKeyField('caretrack.ConsultationType', source_field='consultation_type_id', db_constraint=True, to_field='id', related_name='consents', on_delete=OnDelete.CASCADE)),
                ('position', fields.IntField(default=0)),
                ('version', fields.IntField(default=1)),
                ('retired', fields.BooleanField(default=False)),
            ],
            options={'table': 'consent_documents', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'A consent document of a consultation type, worded by its versions.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ConsentVersion',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('document', fields.ForeignKeyField('caretrack.ConsentDocument', source_field='document_id', db_constraint=True, to_field='id', related_name='versions', on_delete=OnDelete.CASCADE)),
                ('version', fields.IntField()),
                ('title', fields.CharField(max_length=150)),
                ('text', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consent_versions', 'app': 'caretrack', 'unique_together': (('document', 'version'),), 'pk_attr': 'id', 'table_description': 'One wording of a consent document, never changed once written.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ConsentSignature',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('appointment', fields.ForeignKeyField('caretrack.Appointment', source_field='appointment_id', db_constraint=True, to_field='id', related_name='consent_signatures', on_delete=OnDelete.CASCADE)),
                ('consent_version', fields.ForeignKeyField('caretrack.ConsentVersion', source_field='consent_version_id', db_constraint=True, to_field='id', related_name='signatures', on_delete=OnDelete.RESTRICT)),
                ('signed_name', fields.TextField(unique=False)),
                ('signed_by', fields.ForeignKeyField('caretrack.User', source_field='signed_by_id', db_constraint=True, to_field='id', related_name='consent_signatures', on_delete=OnDelete.CASCADE)),
                ('signed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consent_signatures', 'app': 'caretrack', 'unique_together': (('appointment', 'consent_version'),), 'pk_attr': 'id', 'table_description': 'The patient signed one version of a consent document for one appointment.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='IntakeQuestion',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('consultation_type', fields.ForeignKeyField('caretrack.ConsultationType', source_field='consultation_type_id', db_constraint=True, to_field='id', related_name='questions', on_delete=OnDelete.CASCADE)),
                ('position', fields.IntField(default=0)),
                ('kind', fields.CharEnumField(description='SHORT_TEXT: short_text\nLONG_TEXT: long_text\nYES_NO: yes_no\nCHOICE: choice', enum_type=QuestionKind, max_length=16)),
                ('prompt', fields.CharField(max_length=300)),
                ('required', fields.BooleanField(default=True)),
                ('max_length', fields.IntField(null=True)),
                ('choices', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'intake_questions', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': "One question of a type's intake questionnaire, asked in `position` order."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='IntakeResponse',
            fields=[
                ('appointment', fields.OneToOneField('caretrack.Appointment', source_field='appointment_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='intake', on_delete=OnDelete.CASCADE)),
                ('consultation_type', fields.ForeignKeyField('caretrack.ConsultationType', source_field='consultation_type_id', db_constraint=True, to_field='id', related_name='responses', on_delete=OnDelete.RESTRICT)),
                ('answers', fields.TextField(unique=False)),
                ('submitted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'intake_responses', 'app': 'caretrack', 'pk_attr': 'appointment_id', 'table_description': "The patient's intake answers for one appointment, sealed."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Appointment',
            name='consultation_type',
            field=fields.ForeignKeyField('caretrack.ConsultationType', source_field='consultation_type_id', null=True, db_constraint=True, to_field='id', related_name='appointments', on_delete=OnDelete.RESTRICT),
        ),
    ]
