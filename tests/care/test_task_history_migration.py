"""The task history's migration backfills the tasks there are: each from the package-local date it
was created at its current target, an ended one ended on the date it was last changed; on SQLite
and PostgreSQL."""

from __future__ import annotations

import importlib
import pkgutil
import secrets
from datetime import UTC, date, datetime

import caretrack.migrations
import pytest
from tortoise.migrations.api import migrate as tortoise_migrate

from caretrack.care.models import CarePackage, CareTask, CareTaskTarget, Period
from caretrack.core import crypto, db
from caretrack.core.roles import Role
from tests.conftest import POSTGRES_ADMIN_URL, _postgres_admin_execute, base_settings
from tests.helpers import make_user


def migration_before(model: str) -> str:
    """The migration that the one creating `model` follows (found by what it creates, so
    renumbering keeps the tests)."""
    for info in pkgutil.iter_modules(caretrack.migrations.__path__):
        module = importlib.import_module(f"caretrack.migrations.{info.name}")
        migration = getattr(module, "Migration", None)
        if migration and any(getattr(op, "name", None) == model for op in migration.operations):
            return f"caretrack.{migration.dependencies[0][1]}"
    raise AssertionError(f"no migration creates {model}")


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path}/history.sqlite3"
        return
    name = f"caretrack_history_{secrets.token_hex(4)}"
    await _postgres_admin_execute(f'CREATE DATABASE "{name}"')
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    await _postgres_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_existing_tasks_get_their_history(empty_url):
    settings = base_settings(database_url=empty_url)
    await tortoise_migrate(config=db.tortoise_config(settings), target=migration_before("CareTaskTarget"))
    await db.stop()
    crypto.configure(settings.phi_keys)
    await db.start(settings)
    try:
        admin = await make_user(Role.ADMIN, "boss@example.org")
        home = await CarePackage.create(client_name="x", starts_on=date(2026, 1, 1), time_zone="Europe/London")
        fields = {"package_id": home.id, "carer_id": admin.id, "period": Period.DAY}
        # 23:30 UTC on 30 June is 1 July in London
        running = await CareTask.create(title="Running", target=3, created_at=datetime(2026, 6, 30, 23, 30, tzinfo=UTC),
                                        **fields)
        ended = await CareTask.create(title="Ended", target=2, is_active=False,
                                      created_at=datetime(2026, 2, 1, 9, 0, tzinfo=UTC), **fields)
        await CareTask.filter(id=ended.id).update(updated_at=datetime(2026, 3, 29, 23, 30, tzinfo=UTC))
    finally:
        await db.stop()
    await db.migrate(settings)
    await db.stop()
    await db.start(settings)
    try:
        rows = await CareTaskTarget.all().order_by("id").values_list("task_id", "effective_on", "target", "period",
                                                                     "active")
    finally:
        await db.stop()
    assert [tuple(r) for r in rows] == [
        (running.id, date(2026, 7, 1), 3, "day", True),
        (ended.id, date(2026, 2, 1), 2, "day", True),
        (ended.id, date(2026, 3, 30), 2, "day", False),  # 00:30 BST on 30 March
    ]
