"""The rota history's migration backfills the entries there are: each as it stands from its
package's first day, a removed one ended on the date it was last changed; on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tortoise.migrations.api import migrate as tortoise_migrate

from caretrack.care.models import CarePackage, RotaEntry, RotaPlan
from caretrack.core import crypto, db
from tests.care.test_task_history_migration import empty_url, migration_before  # noqa: F401  (the fixture)
from tests.conftest import base_settings


async def test_existing_rota_entries_get_their_history(empty_url):  # noqa: F811
    settings = base_settings(database_url=empty_url)
    await tortoise_migrate(config=db.tortoise_config(settings), target=migration_before("RotaPlan"))
    await db.stop()
    crypto.configure(settings.phi_keys)
    await db.start(settings)
    try:
        home = await CarePackage.create(client_name="x", starts_on=date(2026, 1, 1), time_zone="Europe/London")
        standing = await RotaEntry.create(package_id=home.id, weekdays="12345", start=9 * 60, length=30)
        removed = await RotaEntry.create(package_id=home.id, weekdays="67", start=18 * 60, length=30, is_active=False)
        await RotaEntry.filter(id=removed.id).update(updated_at=datetime(2026, 3, 29, 23, 30, tzinfo=UTC))
    finally:
        await db.stop()
    await db.migrate(settings)
    await db.stop()
    await db.start(settings)
    try:
        rows = await RotaPlan.all().order_by("id").values_list("entry_id", "effective_on", "weekdays")
    finally:
        await db.stop()
    assert [tuple(r) for r in rows] == [
        (standing.id, date(2026, 1, 1), "12345"),
        (removed.id, date(2026, 1, 1), "67"),
        (removed.id, date(2026, 3, 30), ""),  # 00:30 BST on 30 March
    ]
