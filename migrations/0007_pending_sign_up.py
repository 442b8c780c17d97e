"""A confirmation link carries the sign-up it completes (password hash, name, role)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0006_admissions')]

    initial = False

    operations = [
        ops.AddField(
            model_name='OneTimeToken',
            name='pending',
            field=fields.JSONField(null=True),
        ),
    ]
