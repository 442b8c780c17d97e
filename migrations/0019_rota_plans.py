"""Each rota entry's weekdays over time (care_rota_plans), for the per-visit figures. Backfilled:
an entry there is has stood as it is since its package started (as the figures read it until
now), and a removed one ends on the date it was last changed."""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

ROWS = ("SELECT r.id, r.weekdays, r.is_active, r.updated_at, p.starts_on, p.time_zone "
        "FROM care_rota r JOIN care_packages p ON p.id = r.package_id ORDER BY r.id")


def _instant(value: Any) -> datetime:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def backfill(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    marks = "?, ?, ?" if schema_editor.DIALECT == "sqlite" else "$1, $2, $3"
    rows = []
    for entry in await client.execute_query_dict(ROWS):
        starts_on = entry["starts_on"]
        starts_on = datetime.fromisoformat(starts_on).date() if isinstance(starts_on, str) else starts_on
        rows.append([entry["id"], starts_on, entry["weekdays"]])
        if not entry["is_active"]:
            ended = _instant(entry["updated_at"]).astimezone(ZoneInfo(entry["time_zone"] or "UTC")).date()
            rows.append([entry["id"], max(ended, starts_on), ""])
    if rows:
        await client.execute_many(f"INSERT INTO care_rota_plans (entry_id, effective_on, weekdays) VALUES ({marks})",
                                  rows)


async def forget(apps: Any, schema_editor: Any) -> None:
    return None  # the table is dropped with the model


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0018_visits')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RotaPlan',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('entry', fields.ForeignKeyField('caretrack.RotaEntry', source_field='entry_id', db_constraint=True, to_field='id', related_name='plans', on_delete=OnDelete.CASCADE)),
                ('effective_on', fields.DateField()),
                ('weekdays', fields.CharField(max_length=7)),
            ],
            options={'table': 'care_rota_plans', 'app': 'caretrack', 'indexes': [Index(fields=['entry_id', 'effective_on'])], 'pk_attr': 'id', 'table_description': 'The weekdays a rota entry runs on from a package-local day on (its history, for the figures).'},
            bases=['Model'],
        ),
        ops.RunPython(backfill, forget),
    ]
