"""The `caretrack` command: serve, media, worker, migrate, demo, createadmin, audit verify, makemigrations.

Operators see one clear line for a bad setting or an unreachable service, never a traceback.

Each command imports what it runs inside its handler, on purpose: `migrate`, `audit verify`
or `--help` should not load the web app, aiortc and PyAV (about a second, and a media library
an operator's migration job has no use for). These are the only function-local imports of
caretrack modules outside a documented cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

from caretrack.core import crypto, db
from caretrack.core.logs import configure as configure_logging
from caretrack.core.settings import PREFIX, Settings, SettingsError, base_url_is_set, local_base_url


class CommandError(Exception):
    """A command cannot go on; the message is printed as one line."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_format, settings.log_level)
        return args.handler(settings, args) or 0
    except (SettingsError, CommandError, db.DatabaseUnavailable) as exc:
        print(f"caretrack: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caretrack",
        description="CareTrack: telehealth and home-care agency platform. "
        "Configuration comes from CARETRACK_* environment variables (see the README).",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve the web app with hypercorn",
                           description="Serve CareTrack with hypercorn. The database must be migrated "
                           "(`caretrack migrate`); more than one worker needs CARETRACK_REDIS_URL.")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--migrate", action="store_true", help="apply pending migrations first")
    serve.set_defaults(handler=cmd_serve)

    media = sub.add_parser("media", help="run a media worker (CARETRACK_MEDIA_MODE=workers)",
                           description="Run one media worker: it hosts consultations (signalling, the relay, "
                           "recordings) for the web processes, which find it through CARETRACK_REDIS_URL. "
                           "Run one per core; stopping one sends its calls' clients to another.")
    media.add_argument("--host", default="127.0.0.1", help="address to bind for web processes (default 127.0.0.1)")
    media.add_argument("--port", type=int, default=8701, help="port to bind (default 8701)")
    media.add_argument("--advertise", help="the ws:// URL web processes use to reach this worker "
                       "(default ws://HOST:PORT/signal)")
    media.add_argument("--id", dest="worker_id", help="this worker's id in the directory (default hostname:port)")
    media.set_defaults(handler=cmd_media)

    worker = sub.add_parser("worker", help="run a job worker (CARETRACK_JOBS_MODE=workers)",
                            description="Run one job worker: it runs deferred work (email and SMS delivery, "
                            "reminders, checks) from the job table. Run any number; a job is run by one of "
                            "them at a time, and the jobs of a worker that dies are taken over by another.")
    worker.add_argument("--id", dest="worker_id", help="this worker's name in the job table (default hostname:pid)")
    worker.add_argument("--concurrency", type=int, default=8, help="jobs run at once (default 8)")
    worker.set_defaults(handler=cmd_worker)

    migrate = sub.add_parser("migrate", help="apply pending database migrations",
                             description="Apply every pending migration to CARETRACK_DATABASE_URL.")
    migrate.add_argument("--check", action="store_true", help="only report; exit 1 if any are pending")
    migrate.set_defaults(handler=cmd_migrate)

    demo = sub.add_parser("demo", help="create demo data (idempotent)",
                          description="Create one demo account per role and sample data. Running it "
                          "again changes nothing. Refused in production.")
    demo.set_defaults(handler=cmd_demo)

    createadmin = sub.add_parser("createadmin", help="create an admin account",
                                 description="Create an admin. The password is read from "
                                 "CARETRACK_ADMIN_PASSWORD or asked for on the terminal.")
    createadmin.add_argument("--email", required=True, help="the admin's email address")
    createadmin.add_argument("--name", default="Administrator", help="the admin's full name")
    createadmin.set_defaults(handler=cmd_createadmin)

    audit = sub.add_parser("audit", help="audit-log tools")
    audit_sub = audit.add_subparsers(title="audit commands", metavar="ACTION")
    verify = audit_sub.add_parser("verify", help="check the audit log's hash chain",
                                  description="Walk the audit log and report the first row whose "
                                  "hash chain breaks; exit 1 if one does.")
    verify.set_defaults(handler=cmd_audit_verify)

    makemigrations = sub.add_parser("makemigrations", help="(developers) write a migration for model changes")
    makemigrations.add_argument("--name", help="a short name for the migration")
    makemigrations.set_defaults(handler=cmd_makemigrations)
    return parser


def run_with_db(settings: Settings, work: Callable[[], Awaitable[int | None]], *, check_migrations: bool = True) -> int:
    async def runner() -> int | None:
        crypto.configure(settings.phi_keys)
        await db.start(settings)
        try:
            if check_migrations:
                status = await db.migration_status()
                if not status.current:
                    raise CommandError(status.message())
            return await work()
        finally:
            await db.stop()

    return asyncio.run(runner()) or 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise CommandError("--workers must be at least 1")
    if args.workers > 1 and not settings.redis_url:
        raise CommandError(
            f"--workers {args.workers} needs CARETRACK_REDIS_URL: live updates reach every worker "
            "through Redis; without it, run one worker."
        )
    if args.workers > 1 and settings.media_mode != "workers":
        raise CommandError(
            f"--workers {args.workers} needs CARETRACK_MEDIA_MODE=workers and `caretrack media` processes: "
            "both sides of a call must reach the same relay, and the embedded relay lives in one process."
        )
    if args.migrate:
        cmd_migrate(settings, argparse.Namespace(check=False))
    _preflight(settings)

    from caretrack.site import serving

    derived = not base_url_is_set()
    settings = _served_settings(settings, args.host, args.port)
    config = serving.hypercorn_config(args.host, args.port)
    listening = f"{f'[{args.host}]' if ':' in args.host else args.host}:{args.port}"
    print(f"CareTrack serving on {settings.base_url} (listening on {listening}; "
          f"{args.workers} worker{'s' if args.workers > 1 else ''}, "
          f"{'PostgreSQL' if not settings.is_sqlite else 'SQLite'}, "
          f"{'Redis bus' if settings.redis_url else 'in-process bus'})", flush=True)
    if derived and args.host in ("", "0.0.0.0", "::"):
        print(f"Opened from another machine? Set {PREFIX}BASE_URL to the URL it opens: forms sent from any "
              f"other origin than {settings.base_url} are refused.", flush=True)
    try:
        if args.workers == 1:
            serving.run(_web_app, config)
        else:
            serving.supervise(_web_app, config, args.workers)
    except serving.ServeError as exc:
        raise CommandError(str(exc)) from None
    return 0


def _served_settings(settings: Settings, host: str, port: int) -> Settings:
    """Without CARETRACK_BASE_URL, the public URL is where this server listens: sign-in forms
    are refused unless their Origin is the base URL's, so `serve --port 8790` must not keep
    the default's port 8000. A base URL set explicitly (a reverse proxy) is kept."""
    if base_url_is_set():
        return settings
    base_url = local_base_url(host, port)
    # Web workers (caretrack.site.asgi, also in spawned processes) read their settings from the environment.
    os.environ[f"{PREFIX}BASE_URL"] = base_url
    return settings.replace(base_url=base_url)


def _web_app():
    """The app a web worker serves, and its drain (a module-level function: workers import it)."""
    from functools import partial

    from caretrack.site.app import drain
    from caretrack.site.asgi import app

    return app, partial(drain, app)


def _preflight(settings: Settings) -> None:
    """The database is reachable and migrated, and Redis answers (when configured)."""

    async def check_redis() -> None:
        from caretrack.site.startup import connect_redis

        redis = await connect_redis(settings)
        if redis is not None:
            await redis.aclose()

    try:
        run_with_db(settings, check_redis)
    except Exception as exc:
        from caretrack.site.serving import StartupError

        if isinstance(exc, StartupError):
            raise CommandError(str(exc)) from None
        raise


def cmd_media(settings: Settings, args: argparse.Namespace) -> int:
    if settings.media_mode != "workers":
        raise CommandError("`caretrack media` serves CARETRACK_MEDIA_MODE=workers; set it (and CARETRACK_REDIS_URL) "
                           "for the web processes and the media workers alike.")
    if not 1 <= args.port <= 65535:
        raise CommandError(f"--port must be between 1 and 65535, got {args.port}")
    if args.advertise and not args.advertise.startswith(("ws://", "wss://")):
        raise CommandError(f"--advertise must be a ws:// or wss:// URL, got {args.advertise!r}")
    _preflight(settings)
    from caretrack.site import serving, worker

    try:
        return worker.run(settings, args.host, args.port, args.worker_id, args.advertise)
    except serving.ServeError as exc:
        raise CommandError(str(exc)) from None


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    if not 1 <= args.concurrency <= 100:
        raise CommandError(f"--concurrency must be between 1 and 100, got {args.concurrency}")
    _preflight(settings)
    if settings.jobs_mode != "workers":  # after the checks: a refusal stays one line
        print("note: CARETRACK_JOBS_MODE is not 'workers', so web processes run jobs too; "
              "set it for them when jobs should run only in workers.", file=sys.stderr, flush=True)
    from caretrack.site import jobworker, serving

    try:
        return jobworker.run(settings, args.worker_id, args.concurrency)
    except serving.StartupError as exc:
        raise CommandError(str(exc)) from None


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        await db.start(settings)
        try:
            status = await db.migration_status()
        finally:
            await db.stop()
        if args.check:
            print(status.message() if status.pending else "migrations are current")
            return 1 if status.pending else 0
        if not status.pending:
            print("migrations are current; nothing to apply")
            return 0

        def progress(event: str, app_label: str, name: str) -> None:
            if event == "apply_done":
                print(f"applied {name}", flush=True)

        try:
            await db.migrate(settings, progress=progress)
        finally:
            await db.stop()
        print(f"applied {len(status.pending)} migration(s); the database is current")
        return 0

    return asyncio.run(work())


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    if settings.production:
        raise CommandError("demo data is refused in production (CARETRACK_ENVIRONMENT=production)")
    from caretrack.site.demo import create_demo_data

    async def work() -> None:
        accounts = await create_demo_data(settings)
        print("Demo accounts (email / password / role):")
        for email, password, role in accounts:
            print(f"  {email:<28} {password:<22} {role}")

    return run_with_db(settings, work)


def cmd_createadmin(settings: Settings, args: argparse.Namespace) -> int:
    import getpass

    password = os.environ.get("CARETRACK_ADMIN_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            raise CommandError("set CARETRACK_ADMIN_PASSWORD, or run on a terminal to be asked")
        password = getpass.getpass("Password for the new admin: ")
        if password != getpass.getpass("Again: "):
            raise CommandError("the two passwords differ")

    from caretrack.accounts import service
    from caretrack.accounts.schemas import NewAdmin
    from caretrack.core.errors import CareTrackError
    from caretrack.core.validation import parse_command

    async def work() -> None:
        try:
            command = parse_command(NewAdmin, {"email": args.email, "full_name": args.name, "password": password})
            user = await service.do_create_admin(settings, command)
        except CareTrackError as exc:
            raise CommandError(exc.message) from None
        print(f"created admin {user.email}; they enrol two-factor authentication at first login")

    return run_with_db(settings, work)


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from caretrack.core.audit import verify_chain

    async def work() -> int:
        result = await verify_chain()
        print(result.message())
        return 0 if result.ok else 1

    return run_with_db(settings, work)


def cmd_makemigrations(settings: Settings, args: argparse.Namespace) -> int:
    from tortoise.context import TortoiseContext
    from tortoise.migrations.autodetector import MigrationAutodetector
    from tortoise.migrations.writer import format_migration_name

    config = db.tortoise_config(settings.replace(database_url="sqlite://:memory:"))

    async def work() -> None:
        async with TortoiseContext() as ctx:
            await ctx.init(config=config)
            writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
        if not writers:
            print("no model changes")
        for writer in writers:
            if args.name:
                writer.name = format_migration_name(int(writer.name.split("_", 1)[0]), args.name)
            print(f"wrote {writer.write()}")

    asyncio.run(work())
    return 0
