"""Competence: a care task may need a skill (a competency gate), and a multiple-choice question
scores all or nothing or with partial credit, as the admin chose (existing questions keep all
or nothing, which is how they were marked)."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from caretrack.assessments.models import Scoring


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0012_package_zone')]

    initial = False

    operations = [
        ops.AddField(
            model_name='CareTask',
            name='required_skill',
            field=fields.ForeignKeyField('caretrack.Skill', source_field='required_skill_id', null=True, db_constraint=True, to_field='id', related_name='tasks', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='Question',
            name='scoring',
            field=fields.CharEnumField(default=Scoring.ALL_OR_NOTHING, description='ALL_OR_NOTHING: all_or_nothing\nPARTIAL: partial', db_default=Scoring.ALL_OR_NOTHING, enum_type=Scoring, max_length=16),
        ),
    ]
