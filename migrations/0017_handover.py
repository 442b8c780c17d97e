"""Handover notes (for the office, for the next carer) and incidents on care packages."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from caretrack.care.notes_models import IncidentKind, IncidentStatus, Severity


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0016_logging')]

    initial = False

    operations = [
        ops.CreateModel(
            name='HandoverNote',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('package', fields.ForeignKeyField('caretrack.CarePackage', source_field='package_id', db_constraint=True, to_field='id', related_name='handover_notes', on_delete=OnDelete.CASCADE)),
                ('author', fields.ForeignKeyField('caretrack.User', source_field='author_id', db_constraint=True, to_field='id', related_name='handover_notes', on_delete=OnDelete.RESTRICT)),
                ('body', fields.TextField(null=True, unique=False)),
                ('completion', fields.OneToOneField('caretrack.TaskCompletion', source_field='completion_id', null=True, db_constraint=True, to_field='id', related_name='handover_note', on_delete=OnDelete.CASCADE)),
                ('for_office', fields.BooleanField(default=False)),
                ('for_next_carer', fields.BooleanField(default=False)),
                ('written_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'care_handover_notes', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': "A carer's handover note on a care package, for the office and or the next carer"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Incident',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('package', fields.ForeignKeyField('caretrack.CarePackage', source_field='package_id', db_constraint=True, to_field='id', related_name='incidents', on_delete=OnDelete.CASCADE)),
                ('raised_by', fields.ForeignKeyField('caretrack.User', source_field='raised_by_id', db_constraint=True, to_field='id', related_name='incidents_raised', on_delete=OnDelete.RESTRICT)),
                ('note', fields.ForeignKeyField('caretrack.HandoverNote', source_field='note_id', null=True, db_constraint=True, to_field='id', related_name='incidents', on_delete=OnDelete.SET_NULL)),
                ('kind', fields.CharEnumField(description='FALL: fall\nMEDICATION_ERROR: medication_error\nSAFEGUARDING: safeguarding\nINJURY: injury\nPROPERTY_DAMAGE: property_damage\nOTHER: other', enum_type=IncidentKind, max_length=20)),
                ('severity', fields.CharEnumField(description='LOW: low\nMEDIUM: medium\nHIGH: high', enum_type=Severity, max_length=8)),
                ('what_happened', fields.TextField(unique=False)),
                ('action_taken', fields.TextField(null=True, unique=False)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('raised_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(default=IncidentStatus.OPEN, description='OPEN: open\nACKNOWLEDGED: acknowledged\nCLOSED: closed', enum_type=IncidentStatus, max_length=12)),
                ('acknowledged_by', fields.ForeignKeyField('caretrack.User', source_field='acknowledged_by_id', null=True, db_constraint=True, to_field='id', related_name='incidents_acknowledged', on_delete=OnDelete.RESTRICT)),
                ('acknowledged_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_by', fields.ForeignKeyField('caretrack.User', source_field='closed_by_id', null=True, db_constraint=True, to_field='id', related_name='incidents_closed', on_delete=OnDelete.RESTRICT)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outcome', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'care_incidents', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'An incident on a care package, raised by a carer or an admin and followed up by the office'},
            bases=['Model'],
        ),
    ]
