"""Visits: a package's rota (weekly visits with a carer and a length) and the visits checked in
to. Each package's visit times become rota entries: every weekday, 30 minutes, with the
package's first carer (the earliest assigned), or nobody when it had none; they are not checked
for clashes (the data stays as it was planned). `visit_times` stays, derived from the rota."""

from datetime import UTC, datetime

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


async def rota_from_visit_times(apps, schema_editor) -> None:
    client = schema_editor.client
    postgres = schema_editor.DIALECT == "postgres"
    packages = await client.execute_query_dict("SELECT id, visit_times FROM care_packages WHERE visit_times <> ''")
    first: dict[int, int] = {}
    for row in await client.execute_query_dict("SELECT package_id, carer_id FROM care_package_carers ORDER BY id"):
        first.setdefault(row["package_id"], row["carer_id"])
    marks = ", ".join(f"${i}" if postgres else "?" for i in range(1, 9))
    insert = ("INSERT INTO care_rota (package_id, carer_id, weekdays, start, length, is_active, created_at, "
              f"updated_at) VALUES ({marks})")
    now = datetime.now(UTC)
    for package in packages:
        for hhmm in sorted({t.strip() for t in package["visit_times"].split(",") if t.strip()}):
            hours, minutes = hhmm.split(":")
            await client.execute_query(insert, [package["id"], first.get(package["id"]), "1234567",
                                                int(hours) * 60 + int(minutes), 30, True, now, now])


async def nothing(apps, schema_editor) -> None:
    """Going back drops the tables; visit_times was never changed."""


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0017_handover')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RotaEntry',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('package', fields.ForeignKeyField('caretrack.CarePackage', source_field='package_id', db_constraint=True, to_field='id', related_name='rota', on_delete=OnDelete.CASCADE)),
                ('carer', fields.ForeignKeyField('caretrack.User', source_field='carer_id', null=True, db_constraint=True, to_field='id', related_name='rota_entries', on_delete=OnDelete.SET_NULL)),
                ('weekdays', fields.CharField(max_length=7)),
                ('start', fields.IntField()),
                ('length', fields.IntField()),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'care_rota', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': "A visit on a package's rota: weekly on some weekdays at a start time on the package's clock, by one carer."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Visit',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('entry', fields.ForeignKeyField('caretrack.RotaEntry', source_field='entry_id', db_constraint=True, to_field='id', related_name='visits', on_delete=OnDelete.RESTRICT)),
                ('on_date', fields.DateField()),
                ('carer', fields.ForeignKeyField('caretrack.User', source_field='carer_id', db_constraint=True, to_field='id', related_name='visits', on_delete=OnDelete.RESTRICT)),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('length', fields.IntField()),
                ('checked_in_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('in_location', fields.TextField(null=True, unique=False)),
                ('in_accuracy', fields.FloatField(null=True)),
                ('checked_out_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('out_location', fields.TextField(null=True, unique=False)),
                ('out_accuracy', fields.FloatField(null=True)),
            ],
            options={'table': 'care_visits', 'app': 'caretrack', 'unique_together': (('entry', 'on_date'),), 'pk_attr': 'id', 'table_description': 'A visit checked in to: one row per rota entry and date, written at check-in, completed at check-out.'},
            bases=['Model'],
        ),
        ops.RunPython(rota_from_visit_times, nothing),
    ]
