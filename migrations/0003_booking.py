"""Telehealth booking and credits: doctor profiles, availability, appointments, ledger."""

import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from caretrack.booking.models import ApplicationStatus, AppointmentStatus
from caretrack.core.dbops import append_only, per_dialect


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0002_realtime')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Appointment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('doctor', fields.ForeignKeyField('caretrack.User', source_field='doctor_id', db_constraint=True, to_field='id', related_name='doctor_appointments', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('caretrack.User', source_field='patient_id', db_constraint=True, to_field='id', related_name='patient_appointments', on_delete=OnDelete.RESTRICT)),
                ('status', fields.CharEnumField(db_index=True, description='HELD: held\nBOOKED: booked\nCOMPLETED: completed\nNO_SHOW: no_show\nCANCELLED: cancelled\nEXPIRED: expired', enum_type=AppointmentStatus, max_length=16)),
                ('active', fields.BooleanField(default=True)),
                ('starts_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('blocked_from', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('blocked_until', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('time_zone', fields.CharField(max_length=64)),
                ('hold_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('fee_credits', fields.IntField(default=0)),
                ('cancel_cutoff_hours', fields.IntField(default=24)),
                ('late_cancel_refund_percent', fields.IntField(default=0)),
                ('idempotency_key', fields.CharField(null=True, max_length=80)),
                ('booked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancelled_by', fields.ForeignKeyField('caretrack.User', source_field='cancelled_by_id', null=True, db_constraint=True, to_field='id', related_name='cancelled_appointments', on_delete=OnDelete.SET_NULL)),
                ('cancel_reason', fields.CharField(null=True, max_length=300)),
                ('refunded_credits', fields.IntField(default=0)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reschedule_count', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'appointments', 'app': 'caretrack', 'unique_together': (('patient', 'idempotency_key'),), 'pk_attr': 'id', 'table_description': 'One consultation: starts_at/ends_at is the consultation, and blocked_from/'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Availability',
            fields=[
                ('doctor', fields.OneToOneField('caretrack.User', source_field='doctor_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='availability', on_delete=OnDelete.CASCADE)),
                ('time_zone', fields.CharField(max_length=64)),
                ('weekly', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('consultation_minutes', fields.IntField(default=30)),
                ('buffer_before_minutes', fields.IntField(default=0)),
                ('buffer_after_minutes', fields.IntField(default=0)),
                ('min_notice_minutes', fields.IntField(default=120)),
                ('horizon_days', fields.IntField(default=30)),
                ('cancel_cutoff_hours', fields.IntField(default=24)),
                ('late_cancel_refund_percent', fields.IntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'doctor_availability', 'app': 'caretrack', 'pk_attr': 'doctor_id', 'table_description': "An approved doctor's booking rules. Weekly hours are local times in time_zone:"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AvailabilityException',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('doctor', fields.ForeignKeyField('caretrack.User', source_field='doctor_id', db_constraint=True, to_field='id', related_name='availability_exceptions', on_delete=OnDelete.CASCADE)),
                ('on_date', fields.DateField()),
                ('kind', fields.CharField(max_length=8)),
                ('start', fields.CharField(null=True, max_length=5)),
                ('end', fields.CharField(null=True, max_length=5)),
            ],
            options={'table': 'doctor_availability_exceptions', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'A local date that differs from the weekly hours: off (whole day when no times, or'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CalendarFeed',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('caretrack.User', source_field='user_id', db_constraint=True, to_field='id', related_name='calendar_feeds', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('token_sealed', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'calendar_feeds', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'A private calendar URL. The token is stored as its SHA-256 (for lookup) and sealed'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Checkout',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('caretrack.User', source_field='user_id', db_constraint=True, to_field='id', related_name='checkouts', on_delete=OnDelete.RESTRICT)),
                ('provider', fields.CharField(max_length=16)),
                ('provider_session_id', fields.CharField(unique=True, max_length=120)),
                ('credits', fields.IntField()),
                ('amount_cents', fields.IntField()),
                ('currency', fields.CharField(max_length=3)),
                ('status', fields.CharField(default='open', max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('paid_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'checkouts', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'A purchase of credits started with a provider, completed once by its webhook.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CreditAccount',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('user', fields.ForeignKeyField('caretrack.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='credit_accounts', on_delete=OnDelete.RESTRICT)),
                ('balance', fields.BigIntField(default=0)),
                ('may_go_negative', fields.BooleanField(default=False)),
            ],
            options={'table': 'credit_accounts', 'app': 'caretrack', 'pk_attr': 'key', 'table_description': "Keys: credits:<user> (a patient's wallet), escrow:<doctor> (fees of booked"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DoctorLock',
            fields=[
                ('doctor_id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('version', fields.BigIntField(default=0)),
            ],
            options={'table': 'doctor_locks', 'app': 'caretrack', 'pk_attr': 'doctor_id', 'table_description': 'One row per doctor, updated first in every transaction that makes a booking active:'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DoctorProfile',
            fields=[
                ('user', fields.OneToOneField('caretrack.User', source_field='user_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='doctor_profile', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharEnumField(default=ApplicationStatus.PENDING, db_index=True, description='PENDING: pending\nAPPROVED: approved\nREJECTED: rejected', enum_type=ApplicationStatus, max_length=16)),
                ('licence_number', fields.CharField(max_length=64)),
                ('licence_body', fields.CharField(max_length=120)),
                ('licence_expires_on', fields.DateField()),
                ('specialty', fields.CharField(db_index=True, max_length=80)),
                ('languages', fields.CharField(max_length=200)),
                ('biography', fields.TextField(unique=False)),
                ('fee_credits', fields.IntField()),
                ('document_name', fields.CharField(null=True, max_length=80)),
                ('document_original_name', fields.CharField(null=True, max_length=200)),
                ('document_size', fields.IntField(null=True)),
                ('submitted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('reviewed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reviewed_by', fields.ForeignKeyField('caretrack.User', source_field='reviewed_by_id', null=True, db_constraint=True, to_field='id', related_name='reviewed_applications', on_delete=OnDelete.SET_NULL)),
                ('rejection_reason', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'doctor_profiles', 'app': 'caretrack', 'pk_attr': 'user_id', 'table_description': "A doctor's application and, once approved, their public profile (one per doctor)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LedgerEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('transfer_id', fields.CharField(db_index=True, max_length=32)),
                ('account', fields.ForeignKeyField('caretrack.CreditAccount', source_field='account_id', db_index=True, db_constraint=True, to_field='key', related_name='entries', on_delete=OnDelete.RESTRICT)),
                ('amount', fields.BigIntField()),
                ('kind', fields.CharField(max_length=24)),
                ('memo', fields.CharField(default='', max_length=300)),
                ('appointment_id', fields.IntField(null=True, db_index=True)),
                ('reference', fields.CharField(null=True, max_length=120)),
                ('created_by_id', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'ledger_entries', 'app': 'caretrack', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PaymentEvent',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('provider', fields.CharField(max_length=16)),
                ('provider_event_id', fields.CharField(unique=True, max_length=120)),
                ('type', fields.CharField(max_length=64)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'payment_events', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': "A provider webhook event applied (once: the provider's event id is unique). Written in"},
            bases=['Model'],
        ),
        # No two active appointments of one doctor overlap (buffers included): the database
        # enforces it on PostgreSQL; SQLite serialises through doctor_locks (service).
        per_dialect(
            postgres=[
                "ALTER TABLE appointments ADD CONSTRAINT appointments_no_overlap EXCLUDE USING gist "
                "(doctor_id WITH =, tstzrange(blocked_from, blocked_until, '[)') WITH &&) WHERE (active);",
                "ALTER TABLE appointments ADD CONSTRAINT appointments_interval CHECK "
                "(starts_at < ends_at AND blocked_from <= starts_at AND ends_at <= blocked_until);",
                "ALTER TABLE credit_accounts ADD CONSTRAINT credit_accounts_not_negative CHECK "
                "(may_go_negative OR balance >= 0);",
                "CREATE INDEX appointments_doctor_active ON appointments (doctor_id, blocked_from) WHERE active;",
            ],
            reverse_postgres=[
                "DROP INDEX appointments_doctor_active;",
                "ALTER TABLE credit_accounts DROP CONSTRAINT credit_accounts_not_negative;",
                "ALTER TABLE appointments DROP CONSTRAINT appointments_interval;",
                "ALTER TABLE appointments DROP CONSTRAINT appointments_no_overlap;",
            ],
            sqlite=["CREATE INDEX appointments_doctor_active ON appointments (doctor_id, blocked_from) WHERE active;"],
            reverse_sqlite=["DROP INDEX appointments_doctor_active;"],
        ),
        append_only("ledger_entries"),
    ]
