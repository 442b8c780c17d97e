"""Care packages keep the client's time zone; the packages there are stay on UTC, as they were read."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0011_notifications')]

    initial = False

    operations = [
        ops.AddField(
            model_name='CarePackage',
            name='time_zone',
            field=fields.CharField(default='UTC', max_length=64),
        ),
    ]
