"""Each task's target over time (care_task_targets), backfilled: a task there is has its current
target from the package-local date it was created, and an ended task ends on the date it was
last changed. Completions get a (task_id, occurred_at) index for counting by task over a period."""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from caretrack.care.models import Period

ROWS = ("SELECT t.id, t.target, t.period, t.is_active, t.created_at, t.updated_at, p.time_zone "
        "FROM care_tasks t JOIN care_packages p ON p.id = t.package_id ORDER BY t.id")


def _instant(value: Any) -> datetime:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def backfill(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    marks = "?, ?, ?, ?, ?, ?" if schema_editor.DIALECT == "sqlite" else "$1, $2, $3, $4, $5, $6"
    rows = []
    for task in await client.execute_query_dict(ROWS):
        zone = ZoneInfo(task["time_zone"] or "UTC")
        created, updated = _instant(task["created_at"]), _instant(task["updated_at"])
        period = Period(task["period"]).value
        rows.append([task["id"], created.astimezone(zone).date(), task["target"], period, True, created])
        if not task["is_active"]:
            rows.append([task["id"], updated.astimezone(zone).date(), task["target"], period, False, updated])
    if rows:
        await client.execute_many(f"INSERT INTO care_task_targets (task_id, effective_on, target, period, active, "
                                  f"recorded_at) VALUES ({marks})", rows)


async def forget(apps: Any, schema_editor: Any) -> None:
    return None  # the table is dropped with the model


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0014_client_record')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CareTaskTarget',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('task', fields.ForeignKeyField('caretrack.CareTask', source_field='task_id', db_constraint=True, to_field='id', related_name='targets', on_delete=OnDelete.CASCADE)),
                ('effective_on', fields.DateField()),
                ('target', fields.IntField()),
                ('period', fields.CharEnumField(description='DAY: day\nVISIT: visit\nWEEK: week', enum_type=Period, max_length=8)),
                ('active', fields.BooleanField()),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'care_task_targets', 'app': 'caretrack', 'indexes': [Index(fields=['task_id', 'effective_on'])], 'pk_attr': 'id', 'table_description': "A task's target and period from a package-local day on, as the admin set it (its history)."},
            bases=['Model'],
        ),
        ops.AddIndex(
            model_name='TaskCompletion',
            index=Index(fields=['task_id', 'occurred_at']),
        ),
        ops.RunPython(backfill, forget),
    ]
