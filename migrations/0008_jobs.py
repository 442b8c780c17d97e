"""The job queue: deferred work (caretrack.core.queue) and the recurring schedules."""

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from caretrack.core.dbops import per_dialect

QUEUED_EMAILS = """
UPDATE outbound_emails SET status = 'queued' WHERE status = 'sending';
INSERT INTO jobs (kind, payload, key, status, attempts, max_attempts, created_at)
SELECT 'mail.deliver', '{{"email_id": ' || id || '}}', 'mail:' || id, 'queued', 0, 15, {now}
FROM outbound_emails WHERE status = 'queued';
"""


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0007_pending_sign_up')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Job',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=64)),
                ('payload', fields.TextField(default='{}', unique=False)),
                ('key', fields.CharField(null=True, db_index=True, max_length=200)),
                ('status', fields.CharField(default='queued', max_length=16)),
                ('due_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('max_attempts', fields.IntField(default=10)),
                ('lease_token', fields.CharField(null=True, max_length=32)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('locked_by', fields.CharField(null=True, max_length=100)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'jobs', 'app': 'caretrack', 'indexes': [Index(fields=['status', 'due_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='JobSchedule',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('next_due', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'job_schedules', 'app': 'caretrack', 'pk_attr': 'name', 'table_description': 'When a recurring job next falls due.'},
            bases=['Model'],
        ),
        # Emails queued by the sender loop this replaces get their delivery job (one left
        # `sending` by a process that stopped mid-delivery too).
        per_dialect(postgres=[QUEUED_EMAILS.format(now="NOW()")],
                    sqlite=[QUEUED_EMAILS.format(now="strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')")]),
    ]
