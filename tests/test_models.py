"""The models and the migrations agree, and no model trips Tortoise's SQLite migration
writer (which splits statements on ';', including inside table comments)."""

from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector

from caretrack.core import db
from tests.conftest import base_settings


async def test_migrations_match_the_models():
    config = db.tortoise_config(base_settings(database_url="sqlite://:memory:"))
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        models = ctx.apps["caretrack"]
        # Tortoise 1.1's autodetector always reports a change for models whose primary key is
        # not `id` (a one-to-one key, or a user_id key); those are checked by their own tests.
        custom_pk = {name for name, model in models.items() if model._meta.pk_attr != "id"}
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
        pending = [op.describe() for writer in writers for op in writer.operations
                   if getattr(op, "name", None) not in custom_pk and getattr(op, "model_name", None) not in custom_pk]
        descriptions = {
            name: model._meta.table_description
            for name, model in models.items()
            if model._meta.table_description and ";" in model._meta.table_description
        }
    assert pending == [], f"models changed without a migration (run `caretrack makemigrations`): {pending}"
    assert descriptions == {}, "a model docstring's first line holds ';', which breaks SQLite migrations"
