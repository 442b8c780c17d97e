"""Care packages, tasks and completions; skills, assessments, attempts and competencies."""

import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from caretrack.assessments.models import AttemptStatus, QuestionKind
from caretrack.care.models import CompletionStatus, Period


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0002_realtime')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CarePackage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('client_name', fields.TextField(unique=False)),
                ('address', fields.TextField(null=True, unique=False)),
                ('care_notes', fields.TextField(null=True, unique=False)),
                ('starts_on', fields.DateField()),
                ('ends_on', fields.DateField(null=True)),
                ('visit_times', fields.CharField(default='', max_length=200)),
                ('created_by', fields.ForeignKeyField('caretrack.User', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='created_packages', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'care_packages', 'app': 'caretrack', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CareTask',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('package', fields.ForeignKeyField('caretrack.CarePackage', source_field='package_id', db_constraint=True, to_field='id', related_name='tasks', on_delete=OnDelete.CASCADE)),
                ('carer', fields.ForeignKeyField('caretrack.User', source_field='carer_id', db_constraint=True, to_field='id', related_name='care_tasks', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(max_length=120)),
                ('target', fields.IntField()),
                ('period', fields.CharEnumField(description='DAY: day\nVISIT: visit\nWEEK: week', enum_type=Period, max_length=8)),
                ('window_start', fields.IntField(default=0)),
                ('window_end', fields.IntField(default=1440)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'care_tasks', 'app': 'caretrack', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MissedTask',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('task', fields.ForeignKeyField('caretrack.CareTask', source_field='task_id', db_constraint=True, to_field='id', related_name='misses', on_delete=OnDelete.CASCADE)),
                ('on_date', fields.DateField()),
                ('done', fields.IntField()),
                ('target', fields.IntField()),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'care_missed_tasks', 'app': 'caretrack', 'unique_together': (('task', 'on_date'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PackageCarer',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('package', fields.ForeignKeyField('caretrack.CarePackage', source_field='package_id', db_constraint=True, to_field='id', related_name='carers', on_delete=OnDelete.CASCADE)),
                ('carer', fields.ForeignKeyField('caretrack.User', source_field='carer_id', db_constraint=True, to_field='id', related_name='care_assignments', on_delete=OnDelete.CASCADE)),
                ('assigned_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'care_package_carers', 'app': 'caretrack', 'unique_together': (('package', 'carer'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Skill',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=100)),
            ],
            options={'table': 'skills', 'app': 'caretrack', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AssessmentTemplate',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('title', fields.CharField(max_length=150)),
                ('skill', fields.ForeignKeyField('caretrack.Skill', source_field='skill_id', db_constraint=True, to_field='id', related_name='templates', on_delete=OnDelete.RESTRICT)),
                ('pass_mark', fields.IntField()),
                ('validity_days', fields.IntField()),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'assessment_templates', 'app': 'caretrack', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AssessmentSection',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('template', fields.ForeignKeyField('caretrack.AssessmentTemplate', source_field='template_id', db_constraint=True, to_field='id', related_name='sections', on_delete=OnDelete.CASCADE)),
                ('title', fields.CharField(max_length=150)),
                ('position', fields.IntField()),
            ],
            options={'table': 'assessment_sections', 'app': 'caretrack', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Attempt',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('template', fields.ForeignKeyField('caretrack.AssessmentTemplate', source_field='template_id', db_constraint=True, to_field='id', related_name='attempts', on_delete=OnDelete.RESTRICT)),
                ('carer', fields.ForeignKeyField('caretrack.User', source_field='carer_id', db_constraint=True, to_field='id', related_name='assessment_attempts', on_delete=OnDelete.RESTRICT)),
                ('assigned_by', fields.ForeignKeyField('caretrack.User', source_field='assigned_by_id', null=True, db_constraint=True, to_field='id', related_name='assigned_attempts', on_delete=OnDelete.SET_NULL)),
                ('reason', fields.CharField(default='assigned', max_length=16)),
                ('status', fields.CharEnumField(default=AttemptStatus.ASSIGNED, description='ASSIGNED: assigned\nIN_PROGRESS: in_progress\nSUBMITTED: submitted\nMARKED: marked', enum_type=AttemptStatus, max_length=12)),
                ('answers', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('marks', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('score', fields.IntField(null=True)),
                ('passed', fields.BooleanField(null=True)),
                ('assigned_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('due_on', fields.DateField(null=True)),
                ('saved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('submitted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('marked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('marked_by', fields.ForeignKeyField('caretrack.User', source_field='marked_by_id', null=True, db_constraint=True, to_field='id', related_name='marked_attempts', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'assessment_attempts', 'app': 'caretrack', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Competency',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('carer', fields.ForeignKeyField('caretrack.User', source_field='carer_id', db_constraint=True, to_field='id', related_name='competencies', on_delete=OnDelete.CASCADE)),
                ('skill', fields.ForeignKeyField('caretrack.Skill', source_field='skill_id', db_constraint=True, to_field='id', related_name='competencies', on_delete=OnDelete.CASCADE)),
                ('level', fields.IntField()),
                ('achieved_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('attempt', fields.ForeignKeyField('caretrack.Attempt', source_field='attempt_id', null=True, db_constraint=True, to_field='id', related_name='certified', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'competencies', 'app': 'caretrack', 'unique_together': (('carer', 'skill'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Question',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('section', fields.ForeignKeyField('caretrack.AssessmentSection', source_field='section_id', db_constraint=True, to_field='id', related_name='questions', on_delete=OnDelete.CASCADE)),
                ('position', fields.IntField()),
                ('kind', fields.CharEnumField(description='SINGLE: single\nMULTIPLE: multiple\nTEXT: text\nPRACTICAL: practical', enum_type=QuestionKind, max_length=12)),
                ('prompt', fields.TextField(unique=False)),
                ('options', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('correct', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('points', fields.IntField(default=1)),
            ],
            options={'table': 'assessment_questions', 'app': 'caretrack', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TaskCompletion',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('task', fields.ForeignKeyField('caretrack.CareTask', source_field='task_id', db_constraint=True, to_field='id', related_name='completions', on_delete=OnDelete.CASCADE)),
                ('carer', fields.ForeignKeyField('caretrack.User', source_field='carer_id', db_constraint=True, to_field='id', related_name='task_completions', on_delete=OnDelete.RESTRICT)),
                ('idempotency_key', fields.CharField(unique=True, max_length=64)),
                ('status', fields.CharEnumField(description='DONE: done\nNOT_DONE: not_done', enum_type=CompletionStatus, max_length=8)),
                ('reason', fields.CharField(null=True, max_length=200)),
                ('note', fields.TextField(null=True, unique=False)),
                ('occurred_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('corrects', fields.ForeignKeyField('caretrack.TaskCompletion', source_field='corrects_id', null=True, db_constraint=True, to_field='id', related_name='corrections', on_delete=OnDelete.RESTRICT)),
                ('superseded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'task_completions', 'app': 'caretrack', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
