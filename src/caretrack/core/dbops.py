"""Hand-written migration operations for what the autodetector cannot express:
extensions, exclusion constraints, triggers, seed rows. Each names the dialect it is for."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.migrations import operations as ops


def per_dialect(*, postgres: Sequence[str] = (), sqlite: Sequence[str] = (),
                reverse_postgres: Sequence[str] = (), reverse_sqlite: Sequence[str] = ()) -> ops.RunPython:
    def runner(statements: dict[str, Sequence[str]]):
        async def run(apps, schema_editor) -> None:
            for sql in statements.get(schema_editor.DIALECT, ()):
                await schema_editor.client.execute_script(sql)
        return run

    return ops.RunPython(
        runner({"postgres": postgres, "sqlite": sqlite}),
        runner({"postgres": reverse_postgres, "sqlite": reverse_sqlite}),
    )


def everywhere(statements: Sequence[str], reverse: Sequence[str] = ()) -> ops.RunPython:
    return per_dialect(postgres=statements, sqlite=statements,
                       reverse_postgres=reverse, reverse_sqlite=reverse)


def append_only(table: str) -> ops.RunPython:
    """Refuse UPDATE and DELETE on `table` in the database itself."""
    message = f"{table} is append-only"
    return per_dialect(
        postgres=[
            f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{message}'; END $$;",
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only();",
        ],
        sqlite=[
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} BEGIN SELECT RAISE(ABORT, '{message}'); END;",
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} BEGIN SELECT RAISE(ABORT, '{message}'); END;",
        ],
        reverse_postgres=[f"DROP TRIGGER {table}_no_update ON {table};", f"DROP FUNCTION {table}_append_only();"],
        reverse_sqlite=[f"DROP TRIGGER {table}_no_update;", f"DROP TRIGGER {table}_no_delete;"],
    )
