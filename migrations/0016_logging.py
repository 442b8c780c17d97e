"""Completions logged done before their window opened can be kept, marked early (never counted);
a missed task keeps the reason the carer gave for not doing it (none: nothing was logged)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0015_task_history')]

    initial = False

    operations = [
        ops.AddField(
            model_name='MissedTask',
            name='reason',
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.AddField(
            model_name='TaskCompletion',
            name='early',
            field=fields.BooleanField(default=False),
        ),
    ]
