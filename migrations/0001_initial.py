from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from caretrack.core.dbops import append_only, everywhere, per_dialect
from caretrack.core.roles import Role


class Migration(migrations.Migration):
    initial = True

    operations = [
        # Exclusion constraints on appointments (no overlapping bookings) need btree_gist.
        per_dialect(postgres=["CREATE EXTENSION IF NOT EXISTS btree_gist;"]),
        ops.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('seq', fields.BigIntField(unique=True)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor_id', fields.IntField(null=True)),
                ('action', fields.CharField(max_length=64)),
                ('subject_type', fields.CharField(null=True, max_length=32)),
                ('subject_id', fields.CharField(null=True, max_length=64)),
                ('client_address', fields.CharField(null=True, max_length=64)),
                ('detail', fields.TextField(default='{}', unique=False)),
                ('prev_hash', fields.CharField(max_length=64)),
                ('hash', fields.CharField(max_length=64)),
            ],
            options={'table': 'audit_log', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': "One audited act. `hash` = SHA-256 over the previous row's hash and this row's content,"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditHead',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('seq', fields.BigIntField(default=0)),
                ('hash', fields.CharField(default='0000000000000000000000000000000000000000000000000000000000000000', max_length=64)),
            ],
            options={'table': 'audit_head', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'A single row: where the chain ends. Appending updates it first, which serialises'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutboundEmail',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('to_address', fields.CharField(max_length=254)),
                ('subject', fields.CharField(max_length=200)),
                ('text_body', fields.TextField(unique=False)),
                ('html_body', fields.TextField(unique=False)),
                ('attachments', fields.TextField(default='[]', unique=False)),
                ('status', fields.CharField(default='queued', max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'outbound_emails', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'Every email the platform sends. With SMTP configured it is queued and delivered'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('email', fields.CharField(unique=True, max_length=254)),
                ('full_name', fields.CharField(max_length=200)),
                ('role', fields.CharEnumField(description='PATIENT: patient\nDOCTOR: doctor\nCARER: carer\nADMIN: admin', enum_type=Role, max_length=16)),
                ('password_hash', fields.CharField(null=True, max_length=200)),
                ('is_active', fields.BooleanField(default=True)),
                ('email_verified_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('time_zone', fields.CharField(default='UTC', max_length=64)),
                ('totp_secret', fields.TextField(null=True, unique=False)),
                ('totp_enrolled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('totp_last_step', fields.BigIntField(null=True)),
                ('date_of_birth', fields.TextField(null=True, unique=False)),
                ('phone', fields.TextField(null=True, unique=False)),
                ('address', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('last_login_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'users', 'app': 'caretrack', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AccessToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('caretrack.User', source_field='user_id', db_constraint=True, to_field='id', related_name='access_tokens', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=100)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('prefix', fields.CharField(max_length=12)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'access_tokens', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'A personal access token for API clients, stored only as its SHA-256.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OneTimeToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('purpose', fields.CharField(max_length=16)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('user', fields.ForeignKeyField('caretrack.User', source_field='user_id', db_constraint=True, to_field='id', related_name='one_time_tokens', on_delete=OnDelete.CASCADE)),
                ('created_by', fields.ForeignKeyField('caretrack.User', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='issued_tokens', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'one_time_tokens', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'Single-use, expiring links: email verification, password reset, invitations.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RecoveryCode',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('caretrack.User', source_field='user_id', db_constraint=True, to_field='id', related_name='recovery_codes', on_delete=OnDelete.CASCADE)),
                ('code_hash', fields.CharField(max_length=64)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'recovery_codes', 'app': 'caretrack', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Session',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('user', fields.ForeignKeyField('caretrack.User', source_field='user_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('csrf_token', fields.CharField(max_length=64)),
                ('mfa_verified', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('client_address', fields.CharField(null=True, max_length=64)),
                ('user_agent', fields.CharField(null=True, max_length=300)),
            ],
            options={'table': 'sessions', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'A server-side session. The cookie holds a random id, and only its SHA-256 is stored.'},
            bases=['Model'],
        ),
        append_only("audit_log"),
        everywhere(["INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '%s');" % ("0" * 64)],
                   reverse=["DELETE FROM audit_head;"]),
    ]
