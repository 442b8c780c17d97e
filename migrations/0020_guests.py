"""Guests by link, no account: a guest link names the guest's role, can be revoked, and once
opened holds the guest's display name, the hash of their browser's seat and their admission."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from caretrack.consultations.models import GuestRole


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0019_rota_plans')]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name='GuestInvite',
            options={'table': 'consultation_guest_invites', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'A single-use link a doctor gives to a guest without an account, whose seat in the call it then is.'},
        ),
        ops.AddField(
            model_name='GuestInvite',
            name='admitted_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='GuestInvite',
            name='display_name',
            field=fields.CharField(null=True, max_length=60),
        ),
        ops.AddField(
            model_name='GuestInvite',
            name='revoked_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='GuestInvite',
            name='role',
            field=fields.CharEnumField(default=GuestRole.INTERPRETER, description='INTERPRETER: interpreter\nFAMILY: family\nCARER: carer\nCLINICIAN: clinician', enum_type=GuestRole, max_length=16),
        ),
        ops.AddField(
            model_name='GuestInvite',
            name='seat_hash',
            field=fields.CharField(null=True, unique=True, max_length=64),
        ),
    ]
