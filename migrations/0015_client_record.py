"""The client's record (access notes, allergies, next of kin, GP; sealed like the other client
details), archived packages, and tasks waiting for a carer after theirs left the package."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0012_package_zone')]

    initial = False

    operations = [
        ops.AddField(
            model_name='CarePackage',
            name='access_notes',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='CarePackage',
            name='allergies',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='CarePackage',
            name='next_of_kin_name',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='CarePackage',
            name='next_of_kin_relationship',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='CarePackage',
            name='next_of_kin_phone',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='CarePackage',
            name='gp_practice',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='CarePackage',
            name='gp_phone',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='CarePackage',
            name='archived_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='CareTask',
            name='needs_carer',
            field=fields.BooleanField(default=False),
        ),
    ]
